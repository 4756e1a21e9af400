/**
 * The processes the benchmark starts: every child is tracked by PID so that a failure,
 * Ctrl-C or SIGTERM ends exactly those (and nothing else). Tools that run inside a
 * namespace are started as `nsenter --net=... setpriv --pdeathsig KILL taskset -c CPU
 * TOOL`: nsenter, setpriv and taskset each exec the next, so the PID we hold is the
 * tool's, and the kernel kills it should this process die without cleaning up.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export class ProcessError extends Error {
  constructor(message: string, readonly exit?: ExitInfo) {
    super(message);
    this.name = 'ProcessError';
  }
}

export interface Job {
  name: string;
  pid: number;
  child: ChildProcess;
  /** Resolves when the process has exited (never rejects). */
  done: Promise<ExitInfo>;
  exited: boolean;
  /** What it printed so far (capped). */
  output(): { stdout: string; stderr: string };
}

/** Keeps at most `cap` characters: the head (where errors and JSON start) and the tail. */
function appendCapped(buf: string, chunk: string, cap: number): string {
  const s = buf + chunk;
  if (s.length <= cap) return s;
  const half = cap >> 1;
  return `${s.slice(0, half)}\n...[cut]...\n${s.slice(-half)}`;
}

export function nsArgs(ns: string, cpu: number | undefined, cmd: string, args: readonly string[]): [string, string[]] {
  const pinned = cpu === undefined ? [cmd, ...args] : ['taskset', '-c', String(cpu), cmd, ...args];
  return ['nsenter', [`--net=/run/netns/${ns}`, 'setpriv', '--pdeathsig', 'KILL', ...pinned]];
}

export function describe(e: ExitInfo): string {
  const how = e.signal ? `killed by ${e.signal}` : `exit ${e.code}`;
  const said = `${e.stderr}\n${e.stdout}`.trim().split('\n').slice(-8).join('\n');
  return `${how}${said ? `: ${said}` : ''}`;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Processes {
  private readonly live = new Map<number, Job>();

  /** Called with the live PIDs whenever they change (the caller records them for a later run's stale cleanup). */
  constructor(private readonly onChange: (pids: number[]) => void = () => {}) {}

  pids(): number[] {
    return [...this.live.keys()];
  }

  start(name: string, cmd: string, args: readonly string[], cap = 4 << 20): Job {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout = appendCapped(stdout, d, cap); });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr = appendCapped(stderr, d, cap); });
    const done = new Promise<ExitInfo>((resolve) => {
      let spawnError: Error | undefined;
      child.on('error', (e) => {
        spawnError = e;
        if (child.pid === undefined) resolve({ code: null, signal: null, stdout, stderr: `${cmd}: ${e.message}` });
      });
      child.on('close', (code, signal) => {
        job.exited = true;
        if (child.pid !== undefined) this.live.delete(child.pid);
        this.onChange(this.pids());
        resolve({ code, signal, stdout, stderr: spawnError ? `${stderr}${spawnError.message}` : stderr });
      });
    });
    const job: Job = { name, pid: child.pid ?? -1, child, done, exited: child.pid === undefined, output: () => ({ stdout, stderr }) };
    if (child.pid !== undefined) {
      this.live.set(child.pid, job);
      this.onChange(this.pids());
    }
    return job;
  }

  /** Runs to completion; throws (after killing it) when it takes longer than `timeoutMs` or fails. */
  async run(name: string, cmd: string, args: readonly string[], timeoutMs: number, allowFail = false): Promise<ExitInfo> {
    const job = this.start(name, cmd, args);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), timeoutMs); });
    const r = await Promise.race([job.done, timeout]);
    clearTimeout(timer);
    if (r === 'timeout') {
      const out = job.output();
      await this.stop(job, 1000);
      throw new ProcessError(`${name} did not finish within ${Math.round(timeoutMs / 1000)} s: ${describe({ code: null, signal: null, ...out })}`);
    }
    if (!allowFail && (r.code !== 0 || r.signal)) throw new ProcessError(`${name} failed (${describe(r)})`, r);
    return r;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  async stop(job: Job, graceMs = 2000): Promise<ExitInfo> {
    if (!job.exited) signal(job.pid, 'SIGTERM');
    const r = await Promise.race([job.done, sleep(graceMs).then(() => undefined)]);
    if (r) return r;
    signal(job.pid, 'SIGKILL');
    return job.done;
  }

  /** For cleanup and signal handlers: SIGKILL every live child, synchronously. */
  killAllSync(): number[] {
    const killed: number[] = [];
    for (const job of this.live.values()) {
      if (!job.exited && signal(job.pid, 'SIGKILL')) killed.push(job.pid);
    }
    return killed;
  }
}

function signal(pid: number, sig: NodeJS.Signals): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** The command name of a process (from /proc), or undefined when it is gone. */
export function commOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

export function cmdlineOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return undefined;
  }
}

/** A process that exists and has not exited (zombies count as gone). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export { sleep };

/** What a running benchmark records in its /run state file, for a later run to clean up after a killed one. */
export interface RunState {
  pid: number;
  tempDir?: string;
  children: number[];
}

/** The state file `file` (undefined when missing or not a benchmark's); children default to none. */
export function readRunState(file: string): RunState | undefined {
  try {
    const s = JSON.parse(readFileSync(file, 'utf8')) as RunState;
    return typeof s.pid === 'number' ? { ...s, children: Array.isArray(s.children) ? s.children : [] } : undefined;
  } catch {
    return undefined;
  }
}

/** The measurement tools' /proc comm names (slbench-crr: the dataplanes suite's connection-rate tool). */
const STALE_TOOLS: readonly string[] = ['iperf3', 'sockperf', 'slbench-crr'];

/**
 * Kills, by PID, the measurement tools a killed earlier run left running: only PIDs it
 * recorded that still run iperf3, sockperf or slbench-crr (a recycled PID is someone
 * else's). Returns what it killed.
 */
export function killStaleTools(pids: readonly number[]): string[] {
  const killed: string[] = [];
  for (const pid of pids) {
    const comm = commOf(pid);
    if (comm !== undefined && STALE_TOOLS.includes(comm) && isAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
        killed.push(`${comm} (pid ${pid})`);
      } catch {
        // already gone
      }
    }
  }
  return killed;
}

/** Throws (naming `what`) unless `ns` reaches `ip` with one of five pings. */
export async function checkReach(procs: Processes, ns: string, ip: string, what: string): Promise<void> {
  let last = '';
  for (let i = 0; i < 5; i++) {
    const r = await procs.run(`ping ${ip} from ${ns}`, 'nsenter', [`--net=/run/netns/${ns}`, 'ping', '-c', '1', '-W', '1', ip], 5000, true);
    if (r.code === 0) return;
    last = `${r.stdout}${r.stderr}`.trim().split('\n').slice(-2).join(' ');
  }
  throw new Error(`${what}: ${ns} cannot reach ${ip} (${last})`);
}
