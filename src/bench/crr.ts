/**
 * New TCP connections per second (TCP_CRR-like) with slbench-crr (src/bench/crr/crr.c):
 * compiling it with clang into a temp dir, one run between two network namespaces, and
 * parsing its output (pure, unit-tested). Debian ships netperf only in non-free; this
 * small tool is compiled at bench time instead.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { HOST_CFLAGS, hostCompileArgv } from '../toolchain/clang.js';
import { describe, nsArgs, ProcessError, type Processes } from './proc.js';
import { REPO_ROOT } from './same-node.js';
import { ToolOutputError, waitListening, type Cpus, type Pair } from './tools.js';

export const CRR_SOURCE = join(REPO_ROOT, 'src', 'bench', 'crr', 'crr.c');
/** The binary's name, also its /proc comm (killStaleTools looks for it). */
export const CRR_BIN_NAME = 'slbench-crr';
export const CRR_PORT = 12865;
/** Request and response sizes in bytes (netperf TCP_CRR's defaults). */
export const CRR_REQUEST = 1;
export const CRR_RESPONSE = 1;
/** A connect or read that takes longer counts as an error. */
export const CRR_TIMEOUT_MS = 1000;

export interface CrrFigures {
  /** Completed transactions: connect, request, response, close. */
  transactions: number;
  /** The client's measured run time, seconds. */
  seconds: number;
  /** Transactions that failed (refused, reset, timed out, cut short). */
  errors: number;
  /** The first failure, e.g. "connect: Connection refused"; null without errors. */
  firstError: string | null;
  /** transactions / seconds; null when no transaction completed (not 0: that is no figure). */
  connsPerS: number | null;
}

const whole = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/** The client's JSON line: {"transactions":N,"seconds":S,"errors":E,"first_error":…}. */
export function parseCrrJson(text: string): CrrFigures {
  const line = text.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('{')).at(-1);
  if (!line) throw new ToolOutputError(CRR_BIN_NAME, `no JSON in the output: ${text.trim().slice(0, 200) || '(empty)'}`);
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(line) as Record<string, unknown>;
  } catch (e) {
    throw new ToolOutputError(CRR_BIN_NAME, `output is not valid JSON (${(e as Error).message})`);
  }
  const { transactions, seconds, errors } = doc;
  const firstError = doc.first_error;
  if (!whole(transactions) || !whole(errors)) throw new ToolOutputError(CRR_BIN_NAME, `transactions and errors must be whole numbers: ${line}`);
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0) throw new ToolOutputError(CRR_BIN_NAME, `seconds must be positive: ${line}`);
  if (firstError !== null && firstError !== undefined && typeof firstError !== 'string') throw new ToolOutputError(CRR_BIN_NAME, `first_error must be a string or null: ${line}`);
  return {
    transactions, seconds, errors,
    firstError: typeof firstError === 'string' ? firstError : null,
    connsPerS: transactions > 0 ? transactions / seconds : null,
  };
}

/** Compiles crr.c (or `source`) with clang (HOST_CFLAGS) into `dir`; the binary's path. Throws with clang's messages. */
export async function buildCrr(procs: Processes, dir: string, source = CRR_SOURCE): Promise<string> {
  if (!existsSync(source)) throw new Error(`${source} is missing: the connection-rate tool is compiled from it`);
  const out = join(dir, CRR_BIN_NAME);
  const r = await procs.run(`clang ${source}`, 'clang', hostCompileArgv(source, out), 120_000, true);
  if (r.code !== 0 || r.signal) throw new Error(`could not compile ${source} with clang ${HOST_CFLAGS[0]} (${describe(r)})`);
  return out;
}

/**
 * One run: the server in the server namespace, the client for `durationS` seconds in the
 * client namespace, pinned to different CPUs as iperf3's ends. A run in which connections
 * failed is returned with its errors (and connsPerS null when none completed); only a
 * tool that does not run or prints no result throws.
 */
export async function runCrr(procs: Processes, bin: string, p: Pair, durationS: number, cpus: Cpus): Promise<CrrFigures> {
  const [scmd, sargs] = nsArgs(p.serverNs, cpus.iperfServer, bin, ['server', '-b', p.serverIp, '-p', String(CRR_PORT), '-q', String(CRR_REQUEST), '-r', String(CRR_RESPONSE)]);
  const server = procs.start(`${CRR_BIN_NAME} server (${p.target})`, scmd, sargs, 64 << 10);
  try {
    await waitListening(procs, server, p.serverNs, CRR_PORT);
    return await runCrrClient(procs, bin, p.clientNs, p.serverIp, CRR_PORT, durationS, cpus.iperfClient, p.target);
  } finally {
    await procs.stop(server, 2000);
  }
}

/** The client alone (also for checking how it reports a port nobody listens on). */
export async function runCrrClient(procs: Processes, bin: string, ns: string | undefined, ip: string, port: number, durationS: number, cpu: number | undefined, what: string): Promise<CrrFigures> {
  const args = ['client', '-c', ip, '-p', String(port), '-t', String(durationS), '-q', String(CRR_REQUEST), '-r', String(CRR_RESPONSE), '-w', String(CRR_TIMEOUT_MS)];
  const [ccmd, cargs] = ns === undefined
    ? (cpu === undefined ? [bin, args] : ['taskset', ['-c', String(cpu), bin, ...args]])
    : nsArgs(ns, cpu, bin, args);
  const r = await procs.run(`${CRR_BIN_NAME} client (${what})`, ccmd, cargs, (durationS + 30) * 1000, true);
  if (r.code !== 0 || r.signal) throw new ProcessError(`${CRR_BIN_NAME} client (${what}) failed (${describe(r)})`, r);
  return parseCrrJson(r.stdout);
}
