/**
 * Driving a lab through the CLI as a user does: `sluice lab …` runs, a lab taken down at
 * teardown whatever happens, its status as JSON, commands inside its namespaces.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { Test } from 'tap';
import type { LabStatus } from '../../src/lab/status.js';
import { SLUICE_BIN, sh } from './env.js';

export interface Run { status: number; stdout: string; stderr: string; ms: number }

export function sluice(args: readonly string[], env: Record<string, string> = {}): Run {
  const started = Date.now();
  const r = spawnSync(process.execPath, [SLUICE_BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 300_000, maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - started };
}

export function must(args: readonly string[], env: Record<string, string> = {}): Run {
  const r = sluice(args, env);
  if (r.status !== 0) throw new Error(`sluice ${args.join(' ')} failed (${r.status}):\n${r.stderr}${r.stdout}`);
  return r;
}

/** `lab down` at teardown, whatever happens in the test (it is idempotent). */
export function downAtTeardown(tt: Test, lab: string): void {
  tt.teardown(() => {
    const r = sluice(['lab', 'down', '--name', lab]);
    if (r.status !== 0) process.stderr.write(`# lab down --name ${lab} failed: ${r.stderr}\n`);
  });
}

export function labUp(tt: Test, lab: string, args: readonly string[], env: Record<string, string> = {}): { status: LabStatus; ms: number } {
  downAtTeardown(tt, lab);
  const r = must(['lab', 'up', '--name', lab, '-o', 'json', ...args], env);
  return { status: JSON.parse(r.stdout) as LabStatus, ms: r.ms };
}

export function labStatus(lab: string): LabStatus {
  return JSON.parse(must(['lab', 'status', '--name', lab, '-o', 'json']).stdout) as LabStatus;
}

export const inNs = (netnsPath: string, cmd: string, args: readonly string[]) => sh('nsenter', [`--net=${netnsPath}`, cmd, ...args]);


type LabNode = LabStatus['nodes'][number];

/** `sluice … -o json` as the node's own CLI (inside its namespace, with its config), parsed. */
export function nodeCli<T>(n: LabNode, args: readonly string[]): T {
  const r = inNs(n.netns, process.execPath, [SLUICE_BIN, '--config', n.config, ...args, '-o', 'json']);
  if (r.status !== 0) throw new Error(`sluice ${args.join(' ')} on ${n.name} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** Packets the node's datapath counted under `reason` (both directions, summed over CPUs). */
export function reasonPackets(n: LabNode, reason: string): number {
  return nodeCli<{ reason: string; packets: number }[]>(n, ['bpf', 'metrics']).filter((r) => r.reason === reason).reduce((a, r) => a + r.packets, 0);
}

/** An event as `sluice monitor -o json` prints it (the fields the tests read). */
export interface MonitorEvent {
  type: string; reason?: string; policy?: string; protocol: string;
  src: { pod?: string; ip?: string; port?: number; labels?: string }; dst: { pod?: string; ip?: string; port?: number };
}

/**
 * Runs `sluice monitor -o json ARGS` on node `n` (it must end by itself: give -n or
 * --timeout), calls `during` once it is listening, and returns the events it printed.
 */
export async function monitor(n: LabNode, args: readonly string[], during: () => void | Promise<void>): Promise<MonitorEvent[]> {
  const p = spawn('nsenter', [`--net=${n.netns}`, process.execPath, SLUICE_BIN, '--config', n.config, 'monitor', '-o', 'json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
  const deadline = Date.now() + 20_000;
  while (!err.includes('monitoring node') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (!err.includes('monitoring node')) {
    p.kill('SIGKILL');
    throw new Error(`sluice monitor did not start: ${err}`);
  }
  await during();
  const code = await exited;
  if (code !== 0) throw new Error(`sluice monitor exited ${code}: ${err}`);
  return out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as MonitorEvent);
}
