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
