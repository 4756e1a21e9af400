/**
 * The lab's long-running processes (agents, etcd): spawned detached with their output in
 * a log file, and stopped only when both the PID and the command line are the ones the
 * lab recorded (a PID reused by an unrelated process is left alone).
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ProcessRecord } from './state.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The command line of `pid`, or undefined when there is no such process (or it is a zombie). */
export function cmdlineOf(pid: number): string[] | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (raw === '') return undefined;
    return raw.replace(/\0$/, '').split('\0');
  } catch {
    return undefined;
  }
}

const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Whether `pid` runs what `rec` recorded (nsenter before its exec, or the command after it). */
export function matches(pid: number, rec: Pick<ProcessRecord, 'argv' | 'cmdline'>): boolean {
  const c = cmdlineOf(pid);
  return c !== undefined && (same(c, rec.cmdline) || same(c, rec.argv));
}

/** The running processes of `rec`: its PID when it matches, else (PID never recorded) any process with exactly its command line. */
export function pidsOf(rec: ProcessRecord): number[] {
  if (rec.pid !== undefined) return matches(rec.pid, rec) ? [rec.pid] : [];
  const found: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    if (matches(Number(d), rec)) found.push(Number(d));
  }
  return found;
}

export interface Spawned {
  pid: number;
  /** Resolves with the exit code or signal, if the process exits while this process runs. */
  exited: Promise<string>;
  /** Whether it has exited (as far as this process saw). */
  readonly gone: boolean;
}

/** Starts `argv` detached (own session, no terminal), stdout and stderr appended to `log`. */
export function spawnDetached(argv: readonly string[], log: string): Spawned {
  mkdirSync(dirname(log), { recursive: true });
  const fd = openSync(log, 'a');
  let child;
  try {
    child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  let gone = false;
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => {
      gone = true;
      resolve(signal ? `killed by ${signal}` : `exit ${code}`);
    });
    child.once('error', (e) => {
      gone = true;
      resolve(e.message);
    });
  });
  child.unref();
  if (child.pid === undefined) throw new Error(`cannot start ${argv.join(' ')}`);
  return {
    pid: child.pid,
    exited,
    get gone() {
      return gone;
    },
  };
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once none of `rec`'s processes runs. Returns the PIDs stopped. */
export async function stopProcess(rec: ProcessRecord, graceMs = 5000): Promise<number[]> {
  const pids = pidsOf(rec);
  for (const pid of pids) signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  let alive = pids;
  while ((alive = alive.filter((p) => matches(p, rec))).length && Date.now() < deadline) await sleep(50);
  for (const pid of alive) signal(pid, 'SIGKILL');
  const hard = Date.now() + 5000;
  while ((alive = alive.filter((p) => matches(p, rec))).length && Date.now() < hard) await sleep(50);
  if (alive.length) throw new Error(`${rec.role}${rec.node ? ` of node ${rec.node}` : ''} (pid ${alive.join(', ')}) did not exit after SIGKILL`);
  return pids;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone meanwhile */
  }
}

/** The last lines of a log file, for error messages. */
export function logTail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).map((l) => `  ${l}`).join('\n');
  } catch {
    return '  (no log)';
  }
}

/** The last non-empty line of a log file ('' without one). */
export function lastLine(path: string): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').pop()?.trim() ?? '';
  } catch {
    return '';
  }
}
