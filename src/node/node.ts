/**
 * `sluice node init` and `sluice node reset`: set up, or remove, everything sluice has
 * on the node, in the network namespace the command runs in. Both are idempotent.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { isBpffs, unpin } from '../bpf/pin.js';
import type { Config } from '../config/config.js';
import { loadDatapath, type LoadedProgram } from '../datapath/loader.js';
import { nodePins } from '../datapath/pins.js';
import { EndpointManager } from '../endpoint/manager.js';
import { podMtu, uplinkName } from '../endpoint/mtu.js';
import { HOST_IF_PATTERN } from '../endpoint/veth.js';
import { run } from '../net/exec.js';
import { deleteLink, getLink, listLinks } from '../net/ip.js';
import { writeJsonAtomic } from '../util/fsatomic.js';

export interface InitResult {
  node: string;
  podCIDR: string;
  mtu: number;
  uplink: string | null;
  programs: LoadedProgram[];
  reattached: number;
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

export function initNode(cfg: Config, o: { cacheDir?: string } = {}): InitResult {
  const up = uplinkName(cfg);
  if (cfg.uplink !== 'auto' && !getLink(cfg.uplink)) {
    throw new Error(`uplink device '${cfg.uplink}' does not exist in this network namespace`);
  }
  ensureBpffs(cfg.pinRoot);
  mkdirSync(cfg.stateDir, { recursive: true, mode: 0o755 });
  mkdirSync(cfg.runDir, { recursive: true, mode: 0o755 });
  const manager = new EndpointManager(cfg);
  return manager.state.locked(() => {
    const programs = loadDatapath(cfg, { cacheDir: o.cacheDir });
    const reattached = manager.attachAll();
    const podCIDR = manager.state.podBlock();
    manager.state.saveIpam(manager.state.ipam());
    const result: InitResult = { node: cfg.nodeName, podCIDR, mtu: podMtu(cfg), uplink: up ?? null, programs, reattached };
    writeJsonAtomic(join(cfg.stateDir, 'node.json'), { node: cfg.nodeName, podCIDR, initialised: new Date().toISOString() });
    return result;
  });
}

export interface ResetResult {
  endpoints: string[];
  devices: string[];
  pins: boolean;
  stateDir: boolean;
  runDir: boolean;
}

/** Removes every endpoint, every sluice device, the pins and the state. */
export function resetNode(cfg: Config): ResetResult {
  const manager = new EndpointManager(cfg);
  const endpoints: string[] = [];
  const devices: string[] = [];
  const body = () => {
    for (const ep of manager.list()) {
      manager.teardown(ep);
      endpoints.push(ep.name);
    }
    // Devices a crashed add may have left without a record.
    for (const l of listLinks()) {
      if (HOST_IF_PATTERN.test(l.name) && l.kind === 'veth' && deleteLink(l.name)) devices.push(l.name);
    }
  };
  if (existsSync(cfg.stateDir)) manager.state.locked(body);
  else body();
  const pins = nodePins(cfg);
  const hadPins = existsSync(pins.root);
  unpin(pins.root);
  const hadState = existsSync(cfg.stateDir);
  rmSync(cfg.stateDir, { recursive: true, force: true });
  const hadRun = existsSync(cfg.runDir);
  rmSync(cfg.runDir, { recursive: true, force: true });
  return { endpoints, devices, pins: hadPins, stateDir: hadState, runDir: hadRun };
}
