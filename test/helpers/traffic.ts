/**
 * Traffic for end-to-end tests: tiny TCP/UDP servers and clients written in Node and run
 * inside a network namespace with nsenter (no nc/iperf output to parse). Servers print one
 * JSON line per event on stdout; clients exit 0 on success and print a JSON summary.
 * Every process is started with spawn, tracked by PID and killed at teardown.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { RunResult, Teardown } from './env.js';
import { exitStatus, spawnCollect } from './spawn.js';

const NODE = process.execPath;

function nsArgs(ns: string, cmd: string, args: readonly string[]): string[] {
  return [`--net=/run/netns/${ns}`, cmd, ...args];
}

export function sha256(b: Uint8Array | string): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Runs `cmd` in namespace `ns` asynchronously; kills it (by PID) after `timeoutMs`. */
export async function runIn(ns: string, cmd: string, args: readonly string[], o: { input?: Uint8Array | string; timeoutMs?: number } = {}): Promise<RunResult & { timedOut: boolean }> {
  const c = await spawnCollect('nsenter', nsArgs(ns, cmd, args), { input: o.input ?? '', timeoutMs: o.timeoutMs ?? 15000 });
  return { status: exitStatus(c), stdout: c.stdout, stderr: c.stderr, timedOut: c.timedOut };
}

/** A long-running process in a namespace whose stdout is parsed as JSON lines. */
export class Server {
  readonly events: Record<string, unknown>[] = [];
  stderr = '';
  private waiters: (() => void)[] = [];
  private exited = false;

  constructor(readonly proc: ChildProcess) {
    let buf = '';
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (!line) continue;
        try {
          this.events.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          this.events.push({ event: 'garbage', line });
        }
      }
      this.wake();
    });
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (d: string) => {
      this.stderr += d;
    });
    proc.on('exit', () => {
      this.exited = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Events of one kind seen so far. */
  seen(event: string): Record<string, unknown>[] {
    return this.events.filter((e) => e.event === event);
  }

  /** Resolves once `pred` holds (checked on every event) or rejects after `timeoutMs`. */
  async waitFor(pred: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (this.exited) throw new Error(`server exited while waiting for ${what}: ${this.stderr.trim()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((res) => {
        const timer = setTimeout(res, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          res();
        });
      });
    }
  }

  stop(): void {
    const pid = this.proc.pid;
    if (pid !== undefined && this.proc.exitCode === null && this.proc.signalCode === null) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
}

/** Prepended to every server: exit when stdin closes, i.e. when the test process is gone, so a crashed test leaves no server behind. */
const EXIT_WITH_PARENT = `process.stdin.on('end', () => process.exit(0)); process.stdin.on('error', () => process.exit(0)); process.stdin.resume();`;

/**
 * A Node script of the test's own run as a server in `ns` (killed at teardown, or when the
 * test process goes): it must print {"event":"ready"} once it listens.
 */
export async function startServer(t: Teardown, ns: string, script: string, args: string[]): Promise<Server> {
  const proc = spawn('nsenter', nsArgs(ns, NODE, ['-e', EXIT_WITH_PARENT + script, ...args]), { stdio: ['pipe', 'pipe', 'pipe'] });
  const s = new Server(proc);
  t.teardown(() => s.stop());
  // A fresh node process: on a 2-CPU CI machine busy with 100 CNI plugin processes its
  // start-up alone has taken over 5 s. This waits for the test's own tool, not for sluice.
  await s.waitFor(() => s.seen('ready').length > 0, 30_000, `server in ${ns} to listen`);
  return s;
}

const TCP_SINK = `
const net = require('node:net'), crypto = require('node:crypto');
const [host, port] = process.argv.slice(1);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const srv = net.createServer((s) => {
  const h = crypto.createHash('sha256'); let n = 0;
  const remote = s.remoteAddress;
  s.on('data', (d) => { h.update(d); n += d.length; });
  s.on('end', () => { out({ event: 'conn', remote, bytes: n, sha256: h.digest('hex') }); s.end(); });
  s.on('error', (e) => out({ event: 'error', remote, message: e.message }));
});
srv.on('error', (e) => { process.stderr.write(e.message + '\\n'); process.exit(1); });
srv.listen(Number(port), host, () => out({ event: 'ready' }));
`;

const TCP_SEND = `
const net = require('node:net'), crypto = require('node:crypto');
const [host, port, localAddress, timeout] = process.argv.slice(1);
const chunks = [];
process.stdin.on('data', (d) => chunks.push(d));
process.stdin.on('end', () => {
  const data = Buffer.concat(chunks);
  const opts = { host, port: Number(port) };
  if (localAddress) opts.localAddress = localAddress;
  const timer = setTimeout(() => { process.stderr.write('timeout\\n'); process.exit(2); }, Number(timeout));
  const s = net.connect(opts, () => { s.end(data); });
  s.on('error', (e) => { process.stderr.write(e.message + '\\n'); process.exit(1); });
  s.resume();
  s.on('close', (hadError) => {
    clearTimeout(timer);
    if (hadError) process.exit(1);
    process.stdout.write(JSON.stringify({ bytes: data.length, sha256: crypto.createHash('sha256').update(data).digest('hex') }) + '\\n');
    process.exit(0);
  });
});
`;

const UDP_SINK = `
const dgram = require('node:dgram');
const [host, port] = process.argv.slice(1);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const s = dgram.createSocket('udp4');
s.on('message', (m, r) => out({ event: 'msg', from: r.address, data: m.toString('utf8') }));
s.on('error', (e) => { process.stderr.write(e.message + '\\n'); process.exit(1); });
s.bind(Number(port), host, () => out({ event: 'ready' }));
`;

const UDP_SEND = `
const dgram = require('node:dgram');
const [host, port, localAddress, messagesJson] = process.argv.slice(1);
const messages = JSON.parse(messagesJson);
const s = dgram.createSocket('udp4');
s.on('error', (e) => { process.stderr.write(e.message + '\\n'); process.exit(1); });
s.bind({ address: localAddress || undefined, port: 0 }, async () => {
  for (const m of messages) {
    await new Promise((res, rej) => s.send(Buffer.from(m, 'utf8'), Number(port), host, (e) => (e ? rej(e) : res())));
    await new Promise((res) => setTimeout(res, 5));
  }
  s.close();
  process.stdout.write(JSON.stringify({ sent: messages.length }) + '\\n');
});
`;

/** A TCP server in `ns` on host:port that reports, per connection, the bytes and SHA-256 it received. */
export function tcpSink(t: Teardown, ns: string, host: string, port: number): Promise<Server> {
  return startServer(t, ns, TCP_SINK, [host, String(port)]);
}

/** A UDP server in `ns` on host:port that reports every datagram. */
export function udpSink(t: Teardown, ns: string, host: string, port: number): Promise<Server> {
  return startServer(t, ns, UDP_SINK, [host, String(port)]);
}

/** Sends `data` over one TCP connection from `ns` (optionally from `localAddress`); status 0 when the server acknowledged the whole stream. */
export function tcpSend(ns: string, host: string, port: number, data: Uint8Array, o: { localAddress?: string; timeoutMs?: number } = {}) {
  const timeout = o.timeoutMs ?? 10000;
  return runIn(ns, NODE, ['-e', TCP_SEND, host, String(port), o.localAddress ?? '', String(timeout)], { input: data, timeoutMs: timeout + 5000 });
}

/** Sends each message as one UDP datagram from `ns` (optionally from `localAddress`). */
export function udpSend(ns: string, host: string, port: number, messages: readonly string[], o: { localAddress?: string } = {}) {
  return runIn(ns, NODE, ['-e', UDP_SEND, host, String(port), o.localAddress ?? '', JSON.stringify(messages)], { timeoutMs: 10000 });
}

/** `ping` from `ns`: count packets 0.2 s apart, each waited for at most waitS seconds. */
export function ping(ns: string, dst: string, o: { count?: number; source?: string; waitS?: number } = {}) {
  const args = ['-n', '-c', String(o.count ?? 3), '-i', '0.2', '-W', String(o.waitS ?? 2)];
  if (o.source) args.push('-I', o.source);
  args.push(dst);
  return runIn(ns, 'ping', args, { timeoutMs: 20000 });
}
