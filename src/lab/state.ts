/**
 * The lab's record of what it made (<labdir>/lab.json), written before each thing is
 * created, so `lab down` removes exactly that: after a clean `up`, a failed one, a killed
 * agent or a killed `lab up`.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '../util/fsatomic.js';
import type { Plan } from './plan.js';

export interface ProcessRecord {
  role: 'etcd' | 'agent';
  node?: string;
  /** Absent until the process is spawned. */
  pid?: number;
  /** What was spawned (nsenter …). */
  argv: string[];
  /** The command line of the process once nsenter has entered the namespace and exec'd. */
  cmdline: string[];
  log: string;
}

export interface PodRecord {
  ref: string;
  node: string;
  netns: string;
  ip?: string;
  mac?: string;
  hostIfname?: string;
}

export interface LabState {
  version: 1;
  name: string;
  dir: string;
  phase: 'creating' | 'up' | 'failed';
  error?: string;
  created: string;
  /** Network namespace names, in creation order. */
  netns: string[];
  /** bpffs directories (removed recursively). */
  pinRoots: string[];
  /** Directories (removed recursively), the lab's own directory last. */
  dirs: string[];
  processes: ProcessRecord[];
  /** Pod blocks the agents reported. */
  podCIDRs: Record<string, string>;
  pods: PodRecord[];
  plan: Plan;
}

export function labRoot(): string {
  return process.env.SLUICE_LAB_ROOT || '/var/lib/sluice-lab';
}

export function stateFileOf(root: string, lab: string): string {
  return join(root, lab, 'lab.json');
}

export function readState(root: string, lab: string): LabState | undefined {
  const f = stateFileOf(root, lab);
  if (!existsSync(f)) return undefined;
  let s: LabState;
  try {
    s = JSON.parse(readFileSync(f, 'utf8')) as LabState;
  } catch (e) {
    throw new Error(`the lab's state ${f} cannot be read: ${(e as Error).message}`);
  }
  if (s.version !== 1 || !Array.isArray(s.netns)) throw new Error(`the lab's state ${f} is not a sluice lab state (version ${String(s.version)})`);
  // A lab made before outside hosts existed has none.
  if (s.plan && !Array.isArray(s.plan.external)) s.plan.external = [];
  return s;
}

export function writeState(s: LabState): void {
  writeJsonAtomic(join(s.dir, 'lab.json'), s);
}

/** The labs under `root` (directories with a lab.json). */
export function listLabs(root: string): string[] {
  try {
    return readdirSync(root).filter((d) => existsSync(join(root, d, 'lab.json'))).sort();
  } catch {
    return [];
  }
}
