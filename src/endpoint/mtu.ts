/**
 * The pod MTU: configured, or the uplink's (1500 when the node has no uplink), less the
 * VXLAN overhead when pods may be reached through the overlay (modes vxlan and hybrid),
 * so a full-size pod packet still fits the uplink once encapsulated.
 */
import type { Config } from '../config/config.js';
import { defaultRouteDevice, getLink } from '../net/ip.js';
import { VXLAN_OVERHEAD } from '../net/vxlan.js';

export function uplinkName(cfg: Config): string | undefined {
  return cfg.uplink === 'auto' ? defaultRouteDevice() : cfg.uplink;
}

/** The uplink's MTU (1500 without one). */
export function uplinkMtu(cfg: Config): number {
  const up = uplinkName(cfg);
  return (up ? getLink(up) : undefined)?.mtu ?? 1500;
}

export function podMtu(cfg: Config): number {
  if (cfg.mtu !== 'auto') return cfg.mtu;
  return uplinkMtu(cfg) - (cfg.mode === 'direct' ? 0 : VXLAN_OVERHEAD);
}
