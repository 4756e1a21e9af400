/**
 * sl_policy_cidr: the CIDR identity of an address among the policies' CIDRs (LPM trie,
 * struct sl_ipcache_key → struct sl_policy_cidr_entry). The policy stage looks a peer's
 * address up here when the peer is a pod or a node, so an ipBlock matches their addresses
 * too (include/sluice/lib/policy.h). Holds the CIDR identities the policy feature puts in
 * sl_ipcache and the pods' /32s that named ports resolve against (policy/compile.ts,
 * addressIdentities), keyed by CIDR strings in TypeScript.
 */
import type { Config } from '../config/config.js';
import { applyMapDiff, type MapDiff } from './diff.js';
import { ipcacheKeyOf, type IpcacheKey } from './ipcache.js';
import { MapDef } from './map.js';

export interface PolicyCidrEntry { identity: number }

export const POLICY_CIDR_MAP = new MapDef<IpcacheKey, PolicyCidrEntry>({
  name: 'sl_policy_cidr',
  key: { name: 'sl_ipcache_key', fields: { prefixlen: true, ip: true } },
  value: { name: 'sl_policy_cidr_entry', fields: { identity: true } },
  watchFill: true,
});

/** Every entry: CIDR → identity. */
export function readPolicyCidrs(cfg: Pick<Config, 'pinRoot'>): Map<string, number> {
  return POLICY_CIDR_MAP.with(cfg, (m) => new Map([...m.entries()].map(([k, v]) => [`${k.ip}/${k.prefixlen}`, v.identity])));
}

/**
 * Makes sl_policy_cidr equal `want` (CIDR → identity): new and changed entries first, stale
 * ones last, so an address covered before and after is never without its CIDR in between.
 */
export function syncPolicyCidrs(cfg: Pick<Config, 'pinRoot'>, want: ReadonlyMap<string, number>): MapDiff<string> {
  const have = readPolicyCidrs(cfg);
  return POLICY_CIDR_MAP.with(cfg, (m) => applyMapDiff(have, want, (a, b) => a === b, {
    write: (cidr, identity) => m.update(ipcacheKeyOf(cidr), { identity }),
    remove: (cidr) => m.delete(ipcacheKeyOf(cidr)),
  }));
}
