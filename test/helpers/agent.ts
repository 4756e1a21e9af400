/**
 * A sluice agent process for a test node: started inside the node's network namespace
 * (under `setpriv --pdeathsig KILL`, so it dies with the test process), killed by PID at
 * teardown, its log kept for failure messages. `kill('SIGKILL')` and `start()` again
 * simulate a crash and a restart.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentClient, AgentHttpError } from '../../src/api/client.js';
import { SLUICE_BIN, type TestNode, type Teardown } from './env.js';

export interface AgentProcess {
  readonly pid: number | undefined;
  readonly socket: string;
  readonly client: AgentClient;
  /** Starts the agent and waits until its status says ready. */
  start(): Promise<void>;
  /** Sends `signal` and waits for the process to exit; returns its exit code or signal. */
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` without waiting. */
  signal(signal: NodeJS.Signals): void;
  get<T>(path: string): Promise<T>;
  post<T>(path: string, body?: unknown): Promise<T>;
  log(lines?: number): string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function agentProcess(t: Teardown, node: TestNode, args: readonly string[] = ['--reconcile-interval', '0']): AgentProcess {
  const logPath = join(node.runDir, '..', 'agent.log');
  const socket = join(node.runDir, 'agent.sock');
  const client = new AgentClient(socket, { timeoutMs: 120_000 });
  let child: ChildProcess | undefined;
  let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> = Promise.resolve({ code: null, signal: null });
  const alive = () => child !== undefined && child.exitCode === null && child.signalCode === null;
  const log = (lines = 40) => {
    try {
      return readFileSync(logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  };
  const onExit = () => {
    if (alive() && child?.pid) process.kill(child.pid, 'SIGKILL');
  };
  process.on('exit', onExit);
  t.teardown(async () => {
    process.off('exit', onExit);
    if (alive()) {
      child!.kill('SIGKILL');
      await exited;
    }
  });

  const a: AgentProcess = {
    get pid() {
      return alive() ? child!.pid : undefined;
    },
    socket,
    client,
    async start() {
      if (alive()) throw new Error('agent already running');
      const fd = openSync(logPath, 'a');
      try {
        child = spawn('/usr/bin/setpriv', ['--pdeathsig', 'KILL', 'nsenter', `--net=/run/netns/${node.ns}`,
          process.execPath, SLUICE_BIN, '--config', node.config, 'agent', ...args], { stdio: ['ignore', fd, fd] });
      } finally {
        closeSync(fd);
      }
      const c = child;
      exited = new Promise((resolve) => c.once('exit', (code, signal) => resolve({ code, signal })));
      const deadline = Date.now() + 60_000;
      for (;;) {
        if (!alive()) throw new Error(`the agent exited during start:\n${log()}`);
        if (existsSync(socket)) {
          try {
            const s = (await new AgentClient(socket, { timeoutMs: 2000 }).get('/v1/status')) as { ready: boolean };
            if (s.ready) return;
          } catch { /* not yet */ }
        }
        if (Date.now() > deadline) throw new Error(`the agent did not become ready in 60 s:\n${log()}`);
        await sleep(50);
      }
    },
    async kill(signal = 'SIGTERM') {
      if (!alive()) return exited;
      child!.kill(signal);
      return exited;
    },
    signal(signal) {
      if (alive()) child!.kill(signal);
    },
    async get<T>(path: string) {
      return (await client.get(path)) as T;
    },
    async post<T>(path: string, body: unknown = {}) {
      return (await client.post(path, body)) as T;
    },
    log,
  };
  return a;
}

export { AgentHttpError };
