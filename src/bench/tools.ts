/**
 * iperf3 and sockperf: running one measurement between two network namespaces, and
 * parsing what the tools print (the parsers are pure and unit-tested).
 */
import { describe, nsArgs, ProcessError, sleep, type Job, type Processes } from './proc.js';
import type { IperfSample, SockperfSample, Target } from './stats.js';

export class ToolOutputError extends Error {
  constructor(tool: string, problem: string) {
    super(`${tool}: ${problem}`);
    this.name = 'ToolOutputError';
  }
}

// ---------------------------------------------------------------------------------
// Parsing

interface Iperf3Json {
  error?: string;
  intervals?: { sum?: { bits_per_second?: number } }[];
  end?: {
    sum_sent?: { bits_per_second?: number; retransmits?: number; seconds?: number };
    sum_received?: { bits_per_second?: number; seconds?: number; bytes?: number };
    cpu_utilization_percent?: { host_total?: number; remote_total?: number };
  };
}

export type IperfFigures = Omit<IperfSample, 'repeat' | 'target'>;

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** The figures of `iperf3 -c ... -J` output; throws on iperf3's own error or a result without a rate. */
export function parseIperf3Json(text: string): IperfFigures {
  const start = text.indexOf('{');
  if (start < 0) throw new ToolOutputError('iperf3', `no JSON in the output: ${text.trim().slice(0, 200) || '(empty)'}`);
  let doc: Iperf3Json;
  try {
    doc = JSON.parse(text.slice(start)) as Iperf3Json;
  } catch (e) {
    throw new ToolOutputError('iperf3', `output is not valid JSON (${(e as Error).message})`);
  }
  if (doc.error) throw new ToolOutputError('iperf3', doc.error);
  const received = num(doc.end?.sum_received?.bits_per_second);
  const sent = num(doc.end?.sum_sent?.bits_per_second);
  if (received === null || received <= 0) throw new ToolOutputError('iperf3', 'the result has no receiver rate (end.sum_received.bits_per_second)');
  return {
    gbps: received / 1e9,
    sentGbps: (sent ?? received) / 1e9,
    receivedBytes: num(doc.end?.sum_received?.bytes),
    retransmits: num(doc.end?.sum_sent?.retransmits),
    seconds: num(doc.end?.sum_received?.seconds) ?? num(doc.end?.sum_sent?.seconds) ?? 0,
    cpuHostPct: num(doc.end?.cpu_utilization_percent?.host_total),
    cpuRemotePct: num(doc.end?.cpu_utilization_percent?.remote_total),
    intervalsGbps: (doc.intervals ?? []).map((i) => num(i.sum?.bits_per_second)).filter((x): x is number => x !== null).map((x) => x / 1e9),
  };
}

export type SockperfFigures = Omit<SockperfSample, 'repeat' | 'target'>;

// eslint-disable-next-line no-control-regex -- ESC starts the ANSI colour codes it matches
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;
const UNIT_US: Record<string, number> = { nsec: 1e-3, usec: 1, msec: 1e3, sec: 1e6 };

/** Percentile keys as printed ("99.000" → "99", "99.900" → "99.9"). */
function pctKey(p: string): string {
  return String(Number(p));
}

/**
 * The figures of `sockperf ping-pong` output. sockperf 3.x prints (after a colour
 * escape here and there):
 *   sockperf: ====> avg-rtt=36.855 (std-dev=154.358)
 *   sockperf: Summary: Round trip is 36.855 usec
 *   sockperf: Total 14884 observations; each percentile contains 148.84 observations
 *   sockperf: ---> <MAX> observation = 8106.157
 *   sockperf: ---> percentile 99.000 =  297.844
 *   sockperf: ---> percentile 50.000 =   20.638
 *   sockperf: ---> <MIN> observation =   15.488
 * Without --full-rtt the figures are one-way ("avg-lat", "Latency is"); they are
 * returned as printed. Times are converted to µs from the summary's unit.
 */
export function parseSockperf(text: string): SockperfFigures {
  const t = text.replace(ANSI, '');
  const summary = /Summary:\s*(?:Round trip|Latency)\s+is\s+([\d.]+)\s*([a-z]+)/i.exec(t);
  const unit = summary ? summary[2]!.toLowerCase() : 'usec';
  const scale = UNIT_US[unit];
  if (scale === undefined) throw new ToolOutputError('sockperf', `unknown time unit '${unit}'`);
  const percentiles: Record<string, number> = {};
  for (const m of t.matchAll(/percentile\s+([\d.]+)\s*=\s*([\d.]+)/g)) percentiles[pctKey(m[1]!)] = Number(m[2]) * scale;
  const p50 = percentiles['50'];
  const p99 = percentiles['99'];
  if (p50 === undefined || p99 === undefined) {
    const tail = t.trim().split('\n').slice(-6).join('\n');
    throw new ToolOutputError('sockperf', `no 50th/99th percentile in the output (did the run get any replies?): ${tail || '(empty)'}`);
  }
  const one = (re: RegExp): number | null => {
    const m = re.exec(t);
    return m ? Number(m[1]) : null;
  };
  const scaled = (x: number | null) => (x === null ? null : x * scale);
  return {
    p50Us: p50,
    p99Us: p99,
    avgUs: scaled(one(/avg-(?:rtt|lat)\s*=\s*([\d.]+)/)),
    minUs: scaled(one(/<MIN>\s+observation\s*=\s*([\d.]+)/)),
    maxUs: scaled(one(/<MAX>\s+observation\s*=\s*([\d.]+)/)),
    observations: one(/Total\s+(\d+)\s+observations/),
    validSeconds: one(/\[Valid Duration\]\s*RunTime\s*=\s*([\d.]+)/),
    percentiles,
  };
}

// ---------------------------------------------------------------------------------
// Running

/** Who talks to whom: the client in one namespace, the server (at serverIp) in the other. */
export interface Pair {
  /** A name for messages: the same-node suite's Target, or a dataplanes target. */
  target: Target | (string & {});
  clientNs: string;
  serverNs: string;
  serverIp: string;
}

export interface Cpus {
  iperfClient: number;
  iperfServer: number;
  sockperf: number;
}

export const IPERF_PORT = 5201;
export const SOCKPERF_PORT = 11111;

/** Waits until something listens on TCP `port` in `ns` (or the server died, or 10 s passed). */
export async function waitListening(procs: Processes, server: Job, ns: string, port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (server.exited) {
      const e = await server.done;
      throw new ProcessError(`${server.name} exited before listening (${describe(e)})`, e);
    }
    const [cmd, args] = nsArgs(ns, undefined, 'ss', ['-Htln', 'sport', '=', `:${port}`]);
    const r = await procs.run(`ss in ${ns}`, cmd, args, 5000, true);
    if (r.code === 0 && r.stdout.trim()) return;
    await sleep(50);
  }
  throw new ProcessError(`${server.name} is not listening on port ${port} after 10 s`);
}

/** What runIperf3 returns: the figures, and the CPU time `cpuClock` counted over the client's run. */
export type IperfResult = IperfFigures & { cpuBusyS: number | null };

/**
 * One iperf3 run: a one-off server in the server namespace, a client for `durationS` seconds;
 * `streams` parallel TCP streams (-P, default 1). With `cpuClock` (cumulative busy CPU
 * seconds, e.g. cpustat's busySeconds), the CPU time between the client's start and its
 * exit (server start-up and the listening check are outside it).
 */
export async function runIperf3(procs: Processes, p: Pair, durationS: number, cpus: Cpus, streams = 1, cpuClock?: () => number): Promise<IperfResult> {
  const [scmd, sargs] = nsArgs(p.serverNs, cpus.iperfServer, 'iperf3', ['-s', '-1', '-B', p.serverIp, '-p', String(IPERF_PORT)]);
  const server = procs.start(`iperf3 server (${p.target})`, scmd, sargs, 256 << 10);
  try {
    await waitListening(procs, server, p.serverNs, IPERF_PORT);
    const [ccmd, cargs] = nsArgs(p.clientNs, cpus.iperfClient, 'iperf3', [
      '-c', p.serverIp, '-p', String(IPERF_PORT), '-t', String(durationS), '-J', '--connect-timeout', '3000',
      ...(streams > 1 ? ['-P', String(streams)] : []),
    ]);
    const cpu0 = cpuClock?.();
    const r = await procs.run(`iperf3 client (${p.target})`, ccmd, cargs, (durationS + 30) * 1000, true);
    const cpuBusyS = cpu0 === undefined || !cpuClock ? null : cpuClock() - cpu0;
    if (r.code !== 0 || r.signal) {
      // iperf3 -J reports its error inside the JSON; prefer that message.
      try {
        parseIperf3Json(r.stdout);
      } catch (e) {
        throw new ProcessError(`iperf3 client (${p.target}) failed: ${(e as Error).message}`, r);
      }
      throw new ProcessError(`iperf3 client (${p.target}) failed (${describe(r)})`, r);
    }
    return { ...parseIperf3Json(r.stdout), cpuBusyS };
  } finally {
    await procs.stop(server, 2000);
  }
}

/** One sockperf TCP ping-pong run; both ends on the same CPU; round-trip times. */
export async function runSockperf(procs: Processes, p: Pair, durationS: number, cpus: Cpus): Promise<SockperfFigures> {
  const [scmd, sargs] = nsArgs(p.serverNs, cpus.sockperf, 'sockperf', ['server', '--tcp', '-i', p.serverIp, '-p', String(SOCKPERF_PORT)]);
  const server = procs.start(`sockperf server (${p.target})`, scmd, sargs, 256 << 10);
  try {
    await waitListening(procs, server, p.serverNs, SOCKPERF_PORT);
    const [ccmd, cargs] = nsArgs(p.clientNs, cpus.sockperf, 'sockperf', [
      'ping-pong', '--tcp', '-i', p.serverIp, '-p', String(SOCKPERF_PORT), '-t', String(durationS), '--full-rtt',
    ]);
    const r = await procs.run(`sockperf client (${p.target})`, ccmd, cargs, (durationS + 30) * 1000);
    return parseSockperf(`${r.stdout}\n${r.stderr}`);
  } finally {
    await procs.stop(server, 2000);
  }
}
