/**
 * sl_prefilter: the XDP prefilter's denied source CIDRs (LPM trie; struct sl_prefilter_key →
 * struct sl_prefilter_rule), keyed by CIDR strings in TypeScript. What it must hold is
 * decided in src/prefilter/ (cidr.ts diffRules, datapath.ts syncRules).
 */
import type { Config } from '../config/config.js';
import { MapDef } from './map.js';

export interface PrefilterKey { prefixlen: number; addr: string }
/** A rule as sl_prefilter holds it. */
export interface PrefilterRule {
  /** The rule's id in the store: the key of its counters (sl_prefilter_ct). */
  id: number;
  flags: number;
}

export const PREFILTER_MAP = new MapDef<PrefilterKey, PrefilterRule>({
  name: 'sl_prefilter',
  key: { name: 'sl_prefilter_key', fields: { prefixlen: true, addr: true } },
  value: { name: 'sl_prefilter_rule', fields: { id: true, flags: true } },
  watchFill: true,
});

const toCidr = (k: PrefilterKey) => `${k.addr}/${k.prefixlen}`;
function toKey(cidr: string): PrefilterKey {
  const [addr, len] = cidr.split('/');
  return { addr: addr!, prefixlen: Number(len) };
}

/** Every rule, by CIDR. */
export function readPrefilterRules(cfg: Pick<Config, 'pinRoot'>): Map<string, PrefilterRule> {
  return PREFILTER_MAP.with(cfg, (m) => new Map([...m.entries()].map(([k, v]) => [toCidr(k), { id: v.id, flags: v.flags }])));
}

/** Writes `put` (new and rewritten rules) first, then deletes `del`: a source covered by both a new and an old rule is never let through. */
export function writePrefilterRules(cfg: Pick<Config, 'pinRoot'>, put: Iterable<readonly [cidr: string, rule: PrefilterRule]>, del: Iterable<string>): void {
  PREFILTER_MAP.with(cfg, (m) => {
    for (const [cidr, r] of put) m.update(toKey(cidr), r);
    for (const cidr of del) m.delete(toKey(cidr));
  });
}
