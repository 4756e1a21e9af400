/**
 * The prefilter in the kernel: what its maps sl_prefilter (denied CIDRs, LPM trie) and
 * sl_prefilter_ct (per-CPU packets/bytes per rule) must hold (their accessors are
 * src/maps/prefilter.ts and prefilter-counters.ts), and the XDP program xdp_prefilter on
 * the uplink.
 *
 * The program is attached with an XDP bpf_link (Linux 5.9+) pinned at
 * <pinRoot>/xdp/<device>: it outlives the agent, cannot be replaced by accident (`ip link
 * set dev X xdp off` is refused while the link holds the hook), a new build is swapped in
 * atomically with bpf_link_update, and removing the pin (`sluice node reset` removes the
 * whole pin root) detaches it. Driver (native) mode is tried first, then generic (skb).
 */
import { constants } from 'node:os';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { LINK_TYPE, linkState } from '../bpf/link.js';
import { BpfError } from '../bpf/errors.js';
import { closeFd, objGet } from '../bpf/fd.js';
import { pinAtomically, unpin } from '../bpf/pin.js';
import { Program } from '../bpf/program.js';
import { c, libbpf } from '../bpf/native.js';
import type { Config } from '../config/config.js';
import { nodePins } from '../datapath/pins.js';
import { PREFILTER_MAP, readPrefilterRules, writePrefilterRules } from '../maps/prefilter.js';
import { PREFILTER_COUNTERS_MAP, deletePrefilterCounters, readPrefilterCounterIds } from '../maps/prefilter-counters.js';
import { diffRules, type PrefilterEntry, type RuleDiff } from './cidr.js';

/** errno values from Node's own table, not copied by hand. */
const { ENOENT, EBUSY, EEXIST, ENOLINK, EINVAL } = constants.errno;

export const PREFILTER_PROGRAM = 'xdp_prefilter';

/** Whether this node's prefilter maps are pinned (the datapath was loaded). */
export function prefilterMapsPinned(cfg: Pick<Config, 'pinRoot'>): boolean {
  return PREFILTER_MAP.pinned(cfg) && PREFILTER_COUNTERS_MAP.pinned(cfg);
}

/**
 * Makes sl_prefilter hold exactly `entries` (adds, rewrites, deletes) and drops the
 * counters of rules that are gone (rule ids are never reused, so a new rule starts from
 * zero). Returns what was done.
 */
export function syncRules(cfg: Pick<Config, 'pinRoot'>, entries: readonly PrefilterEntry[]): RuleDiff {
  const d = diffRules(entries, readPrefilterRules(cfg), readPrefilterCounterIds(cfg));
  // Insert before delete: a source covered by both a new and an old rule is never let through.
  writePrefilterRules(cfg, [...d.add, ...d.update], d.del);
  deletePrefilterCounters(cfg, d.staleCounters);
  return d;
}

// ---------------------------------------------------------------------------
// XDP attachment

export type XdpAttachMode = 'driver' | 'generic';

export interface XdpAttachment {
  device: string;
  ifindex: number;
  mode: XdpAttachMode;
  programId: number;
  linkPin: string;
}

const BPF_XDP = 37;
const XDP_FLAGS = { SKB_MODE: 2, DRV_MODE: 4 } as const;
/** struct bpf_link_create_opts of libbpf 1.1 (sz, flags, ...); zero past `flags`. */
const LINK_CREATE_OPTS_SIZE = 64;

/** Where the XDP link of `device` is pinned. */
export function xdpLinkPin(cfg: Pick<Config, 'pinRoot'>, device: string): string {
  return join(cfg.pinRoot, 'xdp', device.replace(/\./g, ':')); // bpffs names cannot contain '.'
}

export function ifindexOf(device: string): number {
  return c().if_nametoindex(device) as number;
}

function linkCreateOpts(flags: number): Buffer {
  const b = Buffer.alloc(LINK_CREATE_OPTS_SIZE);
  b.writeBigUInt64LE(BigInt(LINK_CREATE_OPTS_SIZE), 0);
  b.writeUInt32LE(flags, 8);
  return b;
}


/** The id of the XDP program attached to `ifindex` in `mode` (any mode when undefined), or 0. */
function xdpProgId(ifindex: number, mode?: XdpAttachMode): number {
  const flags = mode === 'driver' ? XDP_FLAGS.DRV_MODE : mode === 'generic' ? XDP_FLAGS.SKB_MODE : 0;
  const id = [0];
  const ret = libbpf().bpf_xdp_query_id(ifindex, flags, id) as number;
  if (ret < 0) throw new BpfError(`query the XDP program of ifindex ${ifindex}`, -ret);
  return id[0]!;
}

function modeOf(ifindex: number, programId: number): XdpAttachMode {
  return xdpProgId(ifindex, 'driver') === programId ? 'driver' : 'generic';
}

function programName(id: number): string {
  try {
    const p = Program.fromId(id);
    try {
      return p.info().name;
    } finally {
      p.close();
    }
  } catch {
    return '?';
  }
}

/** The prefilter's attachment to `device` as the kernel has it, or undefined when it is not attached. */
export function xdpAttachment(cfg: Pick<Config, 'pinRoot'>, device: string): XdpAttachment | undefined {
  const linkPin = xdpLinkPin(cfg, device);
  const ifindex = ifindexOf(device);
  if (!ifindex || !existsSync(linkPin)) return undefined;
  const fd = objGet(linkPin, 'XDP link');
  try {
    const s = linkState(fd);
    if (s.type !== LINK_TYPE.xdp || s.ifindex !== ifindex || xdpProgId(ifindex) !== s.programId) return undefined;
    return { device, ifindex, mode: modeOf(ifindex, s.programId), programId: s.programId, linkPin };
  } finally {
    closeFd(fd);
  }
}

export interface AttachResult extends XdpAttachment {
  /** What was done: nothing (already attached), the program swapped on the link, or a new link. */
  action: 'unchanged' | 'replaced' | 'attached';
  /** Why driver mode was not used, when it was not. */
  driverError?: string;
}

/**
 * Attaches the pinned xdp_prefilter to `device` (driver mode if the driver takes it,
 * else generic), or swaps in the current program on an existing link. Refuses to touch
 * an XDP program on the device that is not sluice's.
 */
export function attachPrefilter(cfg: Pick<Config, 'pinRoot'>, device: string): AttachResult {
  const ifindex = ifindexOf(device);
  if (!ifindex) throw new Error(`uplink device '${device}' does not exist in this network namespace`);
  const linkPin = xdpLinkPin(cfg, device);
  const prog = Program.openPinned(nodePins(cfg).program(PREFILTER_PROGRAM));
  try {
    const programId = prog.info().id;
    const lib = libbpf();
    if (existsSync(linkPin)) {
      const fd = objGet(linkPin, 'XDP link');
      try {
        const s = linkState(fd);
        if (s.type === LINK_TYPE.xdp && s.ifindex === ifindex && xdpProgId(ifindex) === s.programId) {
          if (s.programId === programId) return { device, ifindex, mode: modeOf(ifindex, programId), programId, linkPin, action: 'unchanged' };
          const ret = lib.bpf_link_update(fd, prog.fd, null) as number;
          if (ret === 0) return { device, ifindex, mode: modeOf(ifindex, programId), programId, linkPin, action: 'replaced' };
          if (-ret !== ENOLINK && -ret !== ENOENT && -ret !== EINVAL) throw new BpfError(`replace the program on XDP link ${linkPin}`, -ret);
        }
      } finally {
        closeFd(fd);
      }
      unpin(linkPin); // a link whose device is gone (or was detached): make a new one
    }
    const other = xdpProgId(ifindex);
    if (other) {
      const name = programName(other);
      if (name !== PREFILTER_PROGRAM) {
        throw new Error(`${device} already has an XDP program (id ${other}, '${name}') that is not sluice's: not replacing it`);
      }
      // An xdp_prefilter attached without a link (by hand, or a link pin lost): take the hook over.
      lib.bpf_xdp_detach(ifindex, 0, null);
    }
    let driverError: string | undefined;
    let mode: XdpAttachMode = 'driver';
    let fd = lib.bpf_link_create(prog.fd, ifindex, BPF_XDP, linkCreateOpts(XDP_FLAGS.DRV_MODE)) as number;
    if (fd < 0) {
      if (-fd === EBUSY || -fd === EEXIST) throw new BpfError(`attach ${PREFILTER_PROGRAM} to ${device}: another XDP program holds the hook`, -fd);
      driverError = new BpfError(`driver mode on ${device}`, -fd).message;
      mode = 'generic';
      fd = lib.bpf_link_create(prog.fd, ifindex, BPF_XDP, linkCreateOpts(XDP_FLAGS.SKB_MODE)) as number;
      if (fd < 0) throw new BpfError(`attach ${PREFILTER_PROGRAM} to ${device} (driver mode failed: ${driverError}; generic mode)`, -fd);
    }
    try {
      pinAtomically(fd, linkPin, `XDP link of ${PREFILTER_PROGRAM} on ${device}`);
    } catch (e) {
      lib.bpf_link_detach(fd);
      throw e;
    } finally {
      closeFd(fd);
    }
    return { device, ifindex, mode, programId, linkPin, action: 'attached', ...(driverError ? { driverError } : {}) };
  } finally {
    prog.close();
  }
}

/** Detaches the prefilter from `device` and removes its link pin. True when something was removed. */
export function detachPrefilter(cfg: Pick<Config, 'pinRoot'>, device: string): boolean {
  const linkPin = xdpLinkPin(cfg, device);
  if (!existsSync(linkPin)) return false;
  let removed = false;
  try {
    const fd = objGet(linkPin, 'XDP link');
    try {
      removed = (libbpf().bpf_link_detach(fd) as number) === 0;
    } finally {
      closeFd(fd);
    }
  } finally {
    unpin(linkPin);
  }
  return removed;
}

/** Devices that have a prefilter link pin. */
export function pinnedDevices(cfg: Pick<Config, 'pinRoot'>): string[] {
  const dir = join(cfg.pinRoot, 'xdp');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => !f.endsWith('__new')).map((f) => f.replace(/:/g, '.')).sort();
}
