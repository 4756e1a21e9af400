/**
 * The prefilter's program on the uplink: xdp_prefilter attached through the attach routine
 * (datapath/attach.ts) as an XDP bpf_link (Linux 5.9+) pinned at <pinRoot>/xdp/<device>.
 * The link outlives the agent, cannot be replaced by accident (`ip link set dev X xdp off`
 * is refused while the link holds the hook), a new build is swapped in atomically with
 * bpf_link_update, and removing the pin (`sluice node reset` removes the whole pin root)
 * detaches it. Driver (native) mode is tried first, then generic (skb).
 */
import { existsSync, readdirSync } from 'node:fs';
import type { Config } from '../config/config.js';
import { attach, detach, linked, linkPin, type XdpLinkMode } from '../datapath/attach.js';
import { nodePins } from '../datapath/pins.js';

export const PREFILTER_PROGRAM = 'xdp_prefilter';

export type XdpAttachMode = XdpLinkMode;

export interface XdpAttachment {
  device: string;
  ifindex: number;
  mode: XdpAttachMode;
  programId: number;
  linkPin: string;
}

export interface AttachResult extends XdpAttachment {
  /** What was done: nothing (already attached), the program swapped on the link, or a new link. */
  action: 'unchanged' | 'replaced' | 'attached';
  /** Why driver mode was not used, when it was not. */
  driverError?: string;
}

/** Where the XDP link of `device` is pinned. */
export function xdpLinkPin(cfg: Pick<Config, 'pinRoot'>, device: string): string {
  return linkPin(cfg, 'uplink', device, PREFILTER_PROGRAM);
}

/** The prefilter's attachment to `device` as the kernel has it, or undefined when it is not attached. */
export function xdpAttachment(cfg: Pick<Config, 'pinRoot'>, device: string): XdpAttachment | undefined {
  const s = linked(cfg, 'uplink', device, PREFILTER_PROGRAM);
  return s?.kind === 'xdp' ? { device, ifindex: s.ifindex, mode: s.mode, programId: s.programId, linkPin: s.linkPin } : undefined;
}

/**
 * Attaches the pinned xdp_prefilter to `device` (driver mode if the driver takes it,
 * else generic), or swaps in the current program on an existing link. Refuses to touch
 * an XDP program on the device that is not sluice's.
 */
export function attachPrefilter(cfg: Pick<Config, 'pinRoot'>, device: string): AttachResult {
  const r = attach(cfg, 'uplink', device, PREFILTER_PROGRAM);
  if (r.kind !== 'xdp') throw new Error(`${PREFILTER_PROGRAM} is attached with ${r.kind}, not XDP: the attach table is wrong`);
  const { ifindex, mode, programId, linkPin: pin, action, driverError } = r;
  return { device, ifindex, mode, programId, linkPin: pin, action, ...(driverError ? { driverError } : {}) };
}

/** Detaches the prefilter from `device` and removes its link pin. True when something was removed. */
export function detachPrefilter(cfg: Pick<Config, 'pinRoot'>, device: string): boolean {
  return detach(cfg, 'uplink', device, PREFILTER_PROGRAM);
}

/** Devices that have a prefilter link pin. */
export function pinnedDevices(cfg: Pick<Config, 'pinRoot'>): string[] {
  const dir = nodePins(cfg).xdpLinks;
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => !f.endsWith('__new')).map((f) => f.replace(/:/g, '.')).sort();
}
