/** The pod MTU: configured, or the uplink's (1500 when the node has no uplink). */
import type { Config } from '../config/config.js';
import { defaultRouteDevice, getLink } from '../net/ip.js';

export function uplinkName(cfg: Config): string | undefined {
  return cfg.uplink === 'auto' ? defaultRouteDevice() : cfg.uplink;
}

export function podMtu(cfg: Config): number {
  if (cfg.mtu !== 'auto') return cfg.mtu;
  const up = uplinkName(cfg);
  const link = up ? getLink(up) : undefined;
  return link?.mtu ?? 1500;
}
