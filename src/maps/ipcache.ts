/**
 * sl_ipcache: where addresses that are not local pods live (LPM trie, longest prefix wins;
 * struct sl_ipcache_key → struct sl_ipcache_entry), as the agent writes it. Entries are keyed
 * by CIDR strings in TypeScript.
 */
import type { Config } from '../config/config.js';
import { formatCidr, parseCidr } from '../util/ipv4.js';
import { applyMapDiff, type MapDiff } from './diff.js';
import { MapDef } from './map.js';

/** enum sl_ipcache_flags. */
export const IPCACHE_FLAGS = { none: 0, tunnel: 1, direct: 2 } as const;

export interface IpcacheKey { prefixlen: number; ip: string }
export interface IpcacheEntry { identity: number; tunnel_endpoint: string; flags: number }

export const IPCACHE_MAP = new MapDef<IpcacheKey, IpcacheEntry>({
  name: 'sl_ipcache',
  key: { name: 'sl_ipcache_key', fields: { prefixlen: true, ip: true } },
  value: { name: 'sl_ipcache_entry', fields: { identity: true, tunnel_endpoint: true, flags: true } },
  watchFill: true,
});

/** The LPM key of a CIDR ("10.244.1.0/24"), for sl_ipcache and the maps keyed like it. */
export const ipcacheKeyOf = (cidr: string): IpcacheKey => {
  const c = parseCidr(cidr);
  return { prefixlen: c.prefix, ip: formatCidr(c).split('/')[0]! };
};

/** Every entry, by CIDR. */
export function readIpcache(cfg: Pick<Config, 'pinRoot'>): Map<string, IpcacheEntry> {
  return IPCACHE_MAP.with(cfg, (m) => new Map([...m.entries()].map(([k, v]) => [`${k.ip}/${k.prefixlen}`, v])));
}

export type IpcacheChange = MapDiff<string>;

/**
 * Makes sl_ipcache equal `want`: new and changed entries first, stale ones last, so a
 * prefix that moves between entries is never missing in between.
 */
export function syncIpcache(cfg: Pick<Config, 'pinRoot'>, want: ReadonlyMap<string, IpcacheEntry>): IpcacheChange {
  const have = readIpcache(cfg);
  return IPCACHE_MAP.with(cfg, (m) => applyMapDiff(have, want, (a, b) => a.identity === b.identity && a.tunnel_endpoint === b.tunnel_endpoint && a.flags === b.flags, {
    write: (cidr, v) => m.update(ipcacheKeyOf(cidr), v),
    remove: (cidr) => m.delete(ipcacheKeyOf(cidr)),
  }));
}
