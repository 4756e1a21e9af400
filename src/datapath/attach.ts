/**
 * The one attach routine: every program is attached to (and detached from) its hook here,
 * by role, device and program name, as the attach table (attachments.ts) says. The table
 * picks the primitive of src/bpf/ and the link pin (datapath/pins.ts):
 *
 *   tc      tcx link pinned at links/<dev>-<direction> (Linux 6.6+); before 6.6 a clsact
 *           qdisc with a cls_bpf filter (bpf/tc.ts), nothing pinned
 *   xdp     XDP link pinned at xdp/<dev>, driver mode else generic (bpf/xdp.ts)
 *   cgroup  cgroup link pinned at cgroup/<program> (bpf/cgroup.ts)
 *
 * Attaching again is idempotent: the program is swapped in on the pinned link (or the tc
 * filter replaced). An unknown role or program, or a program asked for on the wrong role,
 * is refused before anything is touched. `linked` tells what a pinned link attaches now, for
 * the checks that decide whether to attach again (the agent's reconcile, routing, the prefilter).
 */
import { attachCgroup, detachCgroup } from '../bpf/cgroup.js';
import { attachTc, detachTc, type TcMode } from '../bpf/tc.js';
import { pinnedLinkState } from '../bpf/link.js';
import { attachXdpLink, detachXdpLink, xdpLinkState, type XdpLinkMode } from '../bpf/xdp.js';
import { existsSync } from 'node:fs';
import type { Config } from '../config/config.js';
import { ifindexOf } from '../net/ifindex.js';
import { ATTACHMENTS, AttachTableError, findAttachment, hookName, tableProblems, type AttachRole, type Attachment, type DeviceRole } from './attachments.js';
import { openProgram } from './loader.js';
import { nodePins } from './pins.js';

/**
 * Where to attach: a device by name, with its ifindex when the caller knows it (0: the
 * device is gone, for detach), else looked up in this network namespace; for the cgroup
 * role, `name` is the cgroup's directory.
 */
export interface Target {
  name: string;
  ifindex?: number;
}

interface Common {
  program: string;
  role: AttachRole;
  device: string;
  hook: string;
  programId: number;
  /** A new link (or tc filter), the program swapped on the pinned link, or nothing to do. */
  action: 'attached' | 'replaced' | 'unchanged';
}

export type AttachResult =
  | (Common & { kind: 'tc'; ifindex: number; mode: TcMode; linkPin?: string })
  | (Common & { kind: 'xdp'; ifindex: number; mode: XdpLinkMode; linkPin: string; driverError?: string })
  | (Common & { kind: 'cgroup'; linkPin: string });

export type { XdpLinkMode };

/** What a pinned link attaches now. */
export type LinkedNow =
  | { kind: 'tc'; ifindex: number; programId: number; linkPin: string }
  | { kind: 'xdp'; ifindex: number; programId: number; mode: XdpLinkMode; linkPin: string }
  | { kind: 'cgroup'; programId: number; linkPin: string };

export interface Attacher {
  /** Attaches `program` to `target` in role `role`, or swaps the current build in. */
  attach(cfg: Pick<Config, 'pinRoot'>, role: AttachRole, target: Target | string, program: string): AttachResult;
  /** Detaches `program` from `target`, whichever way it was attached; true when something was removed. */
  detach(cfg: Pick<Config, 'pinRoot'>, role: AttachRole, target: Target | string, program: string): boolean;
  /** Where the link of `program` on `device` is pinned (tc: only with tcx). */
  linkPin(cfg: Pick<Config, 'pinRoot'>, role: AttachRole, device: string, program: string): string;
  /**
   * What the link of `program` on `device` (role cgroup: the cgroup) attaches now: undefined
   * when no link is pinned, when it was detached (`bpftool link detach` leaves the pin), and
   * for XDP when the device's hook runs another program. tc before tcx has no link: undefined.
   */
  linked(cfg: Pick<Config, 'pinRoot'>, role: AttachRole, device: string, program: string): LinkedNow | undefined;
}

/** How messages name a device of each role ("uplink device 'eth0' does not exist ..."). */
const DEVICE_NOUN: Record<DeviceRole, string> = { pod: 'pod veth', overlay: 'overlay', uplink: 'uplink' };

function pinOf(cfg: Pick<Config, 'pinRoot'>, a: Attachment, device: string): string {
  const pins = nodePins(cfg);
  switch (a.hook.kind) {
    case 'tc': return pins.link(device, a.hook.direction);
    case 'xdp': return pins.xdpLink(device);
    case 'cgroup': return pins.cgroupLink(a.program);
  }
}

function ifindexFor(role: DeviceRole, t: Target): number {
  const ifindex = t.ifindex ?? ifindexOf(t.name);
  if (!ifindex) throw new Error(`${DEVICE_NOUN[role]} device '${t.name}' does not exist in this network namespace`);
  return ifindex;
}

/** The routine over `table` (the datapath's own: ATTACHMENTS; tests pass tables of fixture programs). */
export function attacher(table: readonly Attachment[]): Attacher {
  const problems = tableProblems(table);
  if (problems.length) throw new AttachTableError(`bad attach table: ${problems.join('; ')}`);

  const attach: Attacher['attach'] = (cfg, role, target, program) => {
    const a = findAttachment(role, program, table);
    const t = typeof target === 'string' ? { name: target } : target;
    const linkPin = pinOf(cfg, a, t.name);
    const common = { program, role, device: t.name, hook: hookName(a.hook) };
    const ifindex = a.role === 'cgroup' ? 0 : ifindexFor(a.role, t);
    const prog = openProgram(cfg, program);
    try {
      switch (a.hook.kind) {
        case 'tc': {
          const r = attachTc(prog, ifindex, a.hook.direction, { linkPin });
          return { ...common, kind: 'tc', ifindex, mode: r.mode, programId: r.programId, action: r.action, ...(r.linkPin ? { linkPin: r.linkPin } : {}) };
        }
        case 'xdp': {
          const r = attachXdpLink(prog, ifindex, t.name, linkPin);
          return { ...common, kind: 'xdp', ...r };
        }
        case 'cgroup': {
          const r = attachCgroup(prog, t.name, a.hook.hook, linkPin);
          return { ...common, kind: 'cgroup', programId: r.programId, linkPin, action: r.action };
        }
      }
    } finally {
      prog.close();
    }
  };

  const detach: Attacher['detach'] = (cfg, role, target, program) => {
    const a = findAttachment(role, program, table);
    const t = typeof target === 'string' ? { name: target } : target;
    const linkPin = pinOf(cfg, a, t.name);
    switch (a.hook.kind) {
      case 'tc': return detachTc(t.ifindex ?? ifindexOf(t.name), a.hook.direction, { linkPin });
      case 'xdp': return detachXdpLink(linkPin);
      case 'cgroup': return detachCgroup(linkPin);
    }
  };

  const linkPin: Attacher['linkPin'] = (cfg, role, device, program) => pinOf(cfg, findAttachment(role, program, table), device);

  const linked: Attacher['linked'] = (cfg, role, device, program) => {
    const a = findAttachment(role, program, table);
    const pin = pinOf(cfg, a, device);
    if (!existsSync(pin)) return undefined;
    if (a.hook.kind === 'xdp') {
      const s = xdpLinkState(ifindexOf(device), pin);
      return s && { kind: 'xdp', ...s };
    }
    const s = pinnedLinkState(pin);
    // A detached device link reads ifindex 0; a detached cgroup link, cgroup id 0 in the same field.
    if (!s || s.ifindex === 0) return undefined;
    return a.hook.kind === 'tc' ? { kind: 'tc', ifindex: s.ifindex, programId: s.programId, linkPin: pin } : { kind: 'cgroup', programId: s.programId, linkPin: pin };
  };

  return { attach, detach, linkPin, linked };
}

/** The routine over the datapath's attach table. */
export const { attach, detach, linkPin, linked } = attacher(ATTACHMENTS);
