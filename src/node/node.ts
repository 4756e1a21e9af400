/**
 * `sluice node init` and `sluice node reset`: set up, or remove, everything sluice has
 * on the node, in the network namespace the command runs in. Both are idempotent.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { isBpffs, unpin } from '../sys/bpffs.js';
import type { Config } from '../config/config.js';
import { datapathSources, sourceHash } from '../datapath/build.js';
import { datapathGlobals } from '../datapath/globals.js';
import { loadDatapath, openProgram, type LoadedProgram } from '../datapath/loader.js';
import { nodePins } from '../datapath/pins.js';
import { podMtu, uplinkName } from '../endpoint/mtu.js';
import { HOST_IF_PATTERN } from '../endpoint/veth.js';
import { run } from '../net/exec.js';
import { deleteLink, getLink, listLinks } from '../net/ip.js';
import { deleteVxlan, VXLAN_DEV } from '../net/vxlan.js';
import { SLUICE_RT_PROTO } from '../routing/plan.js';
import { healthKey, nodeKey } from '../store/keys.js';
import { writeJsonAtomic } from '../util/fsatomic.js';
import { openNode, type NodeHandle } from './context.js';
import { mergeReports, migrateMaps, type MigrationReport } from '../maps/migrate.js';

export interface InitResult {
  node: string;
  podCIDR: string;
  mtu: number;
  uplink: string | null;
  programs: LoadedProgram[];
  /** True when the pinned programs were already the current build and were kept as they are. */
  adopted: boolean;
  reattached: number;
  /**
   * Old-layout maps copied into their successors (src/maps/migrate.ts); their pins stay
   * until the agent has attached everything (retireOldMaps).
   */
  migrated: MigrationReport[];
}

/** Mounts bpffs at /sys/fs/bpf when the pin root is not on one. */
export function ensureBpffs(pinRoot: string): void {
  let probe = pinRoot;
  while (!existsSync(probe)) probe = join(probe, '..');
  if (isBpffs(probe)) return;
  if (!isBpffs('/sys/fs/bpf')) {
    mkdirSync('/sys/fs/bpf', { recursive: true });
    run('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf']);
  }
  if (!isBpffs('/sys/fs/bpf')) throw new Error('cannot mount a BPF filesystem at /sys/fs/bpf');
}

interface NodeRecord {
  node: string;
  podCIDR: string;
  initialised: string;
  datapath?: { fingerprint: string; programs: LoadedProgram[] };
}

const nodeRecordPath = (cfg: Config) => join(cfg.stateDir, 'node.json');

function readNodeRecord(cfg: Config): NodeRecord | undefined {
  try {
    return JSON.parse(readFileSync(nodeRecordPath(cfg), 'utf8')) as NodeRecord;
  } catch {
    return undefined;
  }
}

/** What the datapath of `cfg` is made of: every source's hash and the node's globals. */
function datapathFingerprint(cfg: Config): string {
  return JSON.stringify({ sources: datapathSources().map((s) => `${s}:${sourceHash(s)}`), globals: datapathGlobals(cfg) });
}

/** The pinned programs, when they are exactly the ones recorded for `fingerprint`. */
function adoptablePrograms(cfg: Config, rec: NodeRecord | undefined, fingerprint: string): LoadedProgram[] | undefined {
  if (!rec?.datapath || rec.datapath.fingerprint !== fingerprint) return undefined;
  for (const p of rec.datapath.programs) {
    try {
      const prog = openProgram(cfg, p.name);
      try {
        if (prog.info().id !== p.id) return undefined;
      } finally {
        prog.close();
      }
    } catch {
      return undefined;
    }
  }
  return rec.datapath.programs.map((p) => ({ ...p, cached: true }));
}

/** Checks what must exist before a node can start, and makes its directories and bpffs. */
export function prepareNode(cfg: Config): void {
  if (cfg.uplink !== 'auto' && !getLink(cfg.uplink)) {
    throw new Error(`uplink device '${cfg.uplink}' does not exist in this network namespace`);
  }
  ensureBpffs(cfg.pinRoot);
  mkdirSync(cfg.stateDir, { recursive: true, mode: 0o755 });
  mkdirSync(cfg.runDir, { recursive: true, mode: 0o755 });
}

/**
 * Brings the node up: claims (or confirms) its pod block in the store, loads the
 * datapath unless the pinned one is already the current build (then it is adopted as it
 * is: no reload, no map flush), and re-attaches it to every endpoint. Idempotent.
 */
export async function initNode(node: NodeHandle, o: { cacheDir?: string; reload?: boolean } = {}): Promise<InitResult> {
  const { cfg, manager, pool } = node;
  prepareNode(cfg);
  const up = uplinkName(cfg);
  return manager.state.lockedAsync(async () => {
    const podCIDR = await pool.ensureBlock(cfg.podCIDR || undefined);
    const fingerprint = datapathFingerprint(cfg);
    const rec = readNodeRecord(cfg);
    const kept = o.reload ? undefined : adoptablePrograms(cfg, rec, fingerprint);
    const programs = kept ?? loadDatapath(cfg, { cacheDir: o.cacheDir });
    // Before the new programs see a packet, and again after: the old ones ran until then.
    const before = migrateMaps(cfg);
    const reattached = manager.attachAll();
    const migrated = mergeReports(before, migrateMaps(cfg));
    writeJsonAtomic(nodeRecordPath(cfg), {
      node: cfg.nodeName, podCIDR, initialised: rec?.initialised ?? new Date().toISOString(), datapath: { fingerprint, programs },
    } satisfies NodeRecord);
    return { node: cfg.nodeName, podCIDR, mtu: podMtu(cfg), uplink: up ?? null, programs, adopted: kept !== undefined, reattached, migrated };
  });
}

export interface ResetResult {
  endpoints: string[];
  devices: string[];
  pins: boolean;
  stateDir: boolean;
  runDir: boolean;
  /** What could not be undone (the rest was). */
  problems: string[];
}

/**
 * Removes every endpoint (releasing its address), every sluice device, the node's blocks
 * in the store, the pins and the state. Goes on past failures and reports them.
 */
export async function resetNode(cfg: Config): Promise<ResetResult> {
  const endpoints: string[] = [];
  const devices: string[] = [];
  const problems: string[] = [];
  const node = existsSync(cfg.stateDir) || cfg.store !== 'file' ? await openNode(cfg).catch((e: Error) => {
    problems.push(`store: ${e.message}`);
    return undefined;
  }) : undefined;
  const body = async () => {
    for (const ep of node?.manager.list() ?? []) {
      for (const p of await node!.manager.teardown(ep)) problems.push(`${ep.name}: ${p}`);
      endpoints.push(ep.name);
    }
    if (node) {
      try {
        await node.pool.releaseNode();
        await node.store.delete(nodeKey(cfg.nodeName));
        await node.store.delete(healthKey(cfg.nodeName));
      } catch (e) {
        problems.push(`releasing the node's blocks and records: ${(e as Error).message}`);
      }
    }
    // The overlay device and the routes to other nodes' pods.
    if (deleteVxlan()) devices.push(VXLAN_DEV);
    run('ip', ['route', 'flush', 'proto', String(SLUICE_RT_PROTO)], { allowFail: true });
    // Devices a crashed add may have left without a record.
    for (const l of listLinks()) {
      if (HOST_IF_PATTERN.test(l.name) && l.kind === 'veth' && deleteLink(l.name)) devices.push(l.name);
    }
  };
  try {
    if (node && existsSync(cfg.stateDir)) await node.manager.state.lockedAsync(body);
    else await body();
  } finally {
    await node?.close();
  }
  const pins = nodePins(cfg);
  const hadPins = existsSync(pins.root);
  unpin(pins.root);
  const hadState = existsSync(cfg.stateDir);
  rmSync(cfg.stateDir, { recursive: true, force: true });
  const hadRun = existsSync(cfg.runDir);
  rmSync(cfg.runDir, { recursive: true, force: true });
  return { endpoints, devices, pins: hadPins, stateDir: hadState, runDir: hadRun, problems };
}
