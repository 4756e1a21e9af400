/**
 * One child process, run to completion without blocking the event loop: output collected,
 * input written, killed by PID (SIGKILL) after a deadline, optionally tracked in a set so a
 * teardown can kill whatever is still running.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface Collected {
  /** The exit code, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

export interface CollectOptions {
  env?: NodeJS.ProcessEnv;
  /** Written to stdin, which is then closed (default: no stdin). */
  input?: Uint8Array | string;
  timeoutMs?: number;
  track?: Set<ChildProcess>;
}

export function spawnCollect(cmd: string, args: readonly string[], o: CollectOptions = {}): Promise<Collected> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const p = spawn(cmd, args, { ...(o.env ? { env: o.env } : {}), stdio: [o.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    o.track?.add(p);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (p.pid !== undefined && p.exitCode === null) process.kill(p.pid, 'SIGKILL');
    }, o.timeoutMs ?? 15000);
    p.stdout!.on('data', (d: Buffer) => out.push(d));
    p.stderr!.on('data', (d: Buffer) => err.push(d));
    p.on('error', (e) => {
      clearTimeout(timer);
      o.track?.delete(p);
      reject(e);
    });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      o.track?.delete(p);
      resolve({
        code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), timedOut, ms: performance.now() - started,
      });
    });
    if (o.input !== undefined) {
      p.stdin!.on('error', () => { /* the child may exit before reading all input */ });
      p.stdin!.end(o.input);
    }
  });
}

/** The shell's view of an exit: the code, or 128 for a signal. */
export function exitStatus(c: Pick<Collected, 'code' | 'signal'>): number {
  return c.code ?? (c.signal ? 128 : -1);
}

/** A command left running in a network namespace: its output so far, and a stop that waits for its end. */
export interface Background {
  child: ChildProcess;
  out(): string;
  /** SIGINT (ping and tcpdump print their summaries), then waits for the exit. */
  stop(): Promise<void>;
}

/** Starts `argv` in network namespace `netns` (a path); killed at teardown by PID whatever happens. */
export function background(t: { teardown(fn: () => void): void }, netns: string, argv: readonly string[]): Background {
  const child = spawn('nsenter', [`--net=${netns}`, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const closed = new Promise<void>((r) => child.once('close', () => r()));
  const running = () => child.exitCode === null && child.signalCode === null;
  t.teardown(() => { if (running() && child.pid !== undefined) process.kill(child.pid, 'SIGKILL'); });
  return {
    child,
    out: () => out,
    stop: async () => {
      if (running() && child.pid !== undefined) process.kill(child.pid, 'SIGINT');
      await closed;
    },
  };
}

/** Waits until `b` printed something matching `ready` (tcpdump's "listening on"). */
export async function waitOutput(b: Background, ready: RegExp, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready.test(b.out())) {
    if (Date.now() > deadline) throw new Error(`${what} did not start: ${b.out()}`);
    if (b.child.exitCode !== null) throw new Error(`${what} ended (${b.child.exitCode}): ${b.out()}`);
    await new Promise<void>((r) => setTimeout(r, 50));
  }
}
