/**
 * `lab down`: removes what the lab's state says it made (processes whose PID and command
 * line match, network namespaces, pin directories, directories), in reverse order.
 * Idempotent; a lab whose removal was incomplete keeps its state, so down can run again.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { unpin } from '../sys/bpffs.js';
import { run } from '../net/exec.js';
import { tryLockFile } from '../util/lock.js';
import { stopProcess } from './procs.js';
import { labRoot, readState, writeState, type LabState } from './state.js';

export interface DownReport {
  lab: string;
  /** False when there was nothing to remove. */
  existed: boolean;
  stopped: string[];
  netns: string[];
  pins: string[];
  dirs: string[];
}

/** Removes everything `state` records; throws (after doing all it can) when something stays. */
export async function teardown(state: LabState, log: (line: string) => void = () => {}): Promise<DownReport> {
  const report: DownReport = { lab: state.name, existed: true, stopped: [], netns: [], pins: [], dirs: [] };
  const problems: string[] = [];
  // Agents first (newest first), etcd last: an agent never sees its store vanish under it.
  for (const rec of [...state.processes].reverse()) {
    const what = rec.role === 'agent' ? `agent of node ${rec.node}` : rec.role;
    try {
      const pids = await stopProcess(rec);
      if (pids.length) {
        report.stopped.push(`${what} (pid ${pids.join(', ')})`);
        log(`stopped the ${what} (pid ${pids.join(', ')})`);
      }
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  for (const ns of [...state.netns].reverse()) {
    if (!existsSync(`/run/netns/${ns}`)) continue;
    const r = run('ip', ['netns', 'del', ns], { allowFail: true });
    if (r.status === 0) report.netns.push(ns);
    else problems.push(`network namespace ${ns}: ${r.stderr.trim()}`);
  }
  if (report.netns.length) log(`removed network namespaces ${report.netns.join(', ')}`);
  for (const p of state.pinRoots) {
    try {
      if (unpin(p)) report.pins.push(p);
    } catch (e) {
      problems.push(`pins ${p}: ${(e as Error).message}`);
    }
  }
  if (report.pins.length) log(`removed pins ${report.pins.join(', ')}`);
  if (problems.length) {
    writeState(state);
    throw new Error(`lab ${state.name}: removal incomplete (run \`sluice lab down --name ${state.name}\` again):\n  ${problems.join('\n  ')}`);
  }
  for (const d of [...state.dirs].reverse()) {
    if (!existsSync(d)) continue;
    rmSync(d, { recursive: true, force: true });
    report.dirs.push(d);
  }
  if (report.dirs.length) log(`removed ${report.dirs.join(', ')}`);
  return report;
}

/** `lab down --name LAB`. */
export async function labDown(lab: string, log: (line: string) => void = () => {}, root = labRoot()): Promise<DownReport> {
  const dir = join(root, lab);
  if (!existsSync(dir)) return { lab, existed: false, stopped: [], netns: [], pins: [], dirs: [] };
  const lock = tryLockFile(join(dir, 'lab.lock'));
  if (!lock) throw new Error(`lab ${lab} is being changed by another \`sluice lab\` command (an \`up\` in progress?): interrupt it (it cleans up after itself) or wait`);
  try {
    const state = readState(root, lab);
    if (!state) {
      // A directory without state: an up that died before writing anything else.
      rmSync(dir, { recursive: true, force: true });
      return { lab, existed: true, stopped: [], netns: [], pins: [], dirs: [dir] };
    }
    return await teardown(state, log);
  } finally {
    lock.release();
  }
}
