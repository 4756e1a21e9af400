/**
 * sl_ipcache (where non-local addresses live) and sl_node (this node's devices), as the
 * agent writes them. Entries are keyed by CIDR strings in TypeScript.
 */
import type { Config } from '../config/config.js';
import { formatCidr, parseCidr } from '../util/ipv4.js';
import { openMap } from './loader.js';
import { applyMapDiff, type MapDiff } from './map-diff.js';

export const IPCACHE_FLAGS = { none: 0, tunnel: 1, direct: 2 } as const;

export interface IpcacheKey { prefixlen: number; ip: string }
export interface IpcacheEntry { identity: number; tunnel_endpoint: string; flags: number }
export interface NodeConfigValue { vxlan_ifindex: number; uplink_ifindex: number; underlay_ip: string; flags: number }

const keyOf = (cidr: string): IpcacheKey => {
  const c = parseCidr(cidr);
  return { prefixlen: c.prefix, ip: formatCidr(c).split('/')[0]! };
};

export function readIpcache(cfg: Pick<Config, 'pinRoot'>): Map<string, IpcacheEntry> {
  const m = openMap<IpcacheKey, IpcacheEntry>(cfg, 'sl_ipcache');
  try {
    return new Map([...m.entries()].map(([k, v]) => [`${k.ip}/${k.prefixlen}`, v]));
  } finally {
    m.close();
  }
}

export type IpcacheChange = MapDiff<string>;

/**
 * Makes sl_ipcache equal `want`: new and changed entries first, stale ones last, so a
 * prefix that moves between entries is never missing in between.
 */
export function syncIpcache(cfg: Pick<Config, 'pinRoot'>, want: ReadonlyMap<string, IpcacheEntry>): IpcacheChange {
  const have = readIpcache(cfg);
  const m = openMap<IpcacheKey, IpcacheEntry>(cfg, 'sl_ipcache');
  try {
    return applyMapDiff(have, want, (a, b) => a.identity === b.identity && a.tunnel_endpoint === b.tunnel_endpoint && a.flags === b.flags, {
      write: (cidr, v) => m.update(keyOf(cidr), v),
      remove: (cidr) => m.delete(keyOf(cidr)),
    });
  } finally {
    m.close();
  }
}

export function readNodeConfig(cfg: Pick<Config, 'pinRoot'>): NodeConfigValue | undefined {
  const m = openMap<number, NodeConfigValue>(cfg, 'sl_node');
  try {
    return m.lookup(0);
  } finally {
    m.close();
  }
}

export function writeNodeConfig(cfg: Pick<Config, 'pinRoot'>, v: NodeConfigValue): void {
  const m = openMap<number, NodeConfigValue>(cfg, 'sl_node');
  try {
    m.update(0, v);
  } finally {
    m.close();
  }
}
