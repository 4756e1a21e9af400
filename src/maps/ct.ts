/**
 * sl_ct: connection tracking (LRU hash; struct sl_ct_key → struct sl_ct_entry), keyed by a
 * flow's first packet. TypeScript names the members it reads; every other member of the C
 * struct (and where each one is) is BTF's, so the entry can grow without a change here.
 */
import type { Config } from '../config/config.js';
import { MapDef } from './map.js';

export interface CtKey { saddr: string; daddr: string; sport: number; dport: number; protocol: number }
export interface CtEntry {
  /** bpf_ktime_get_ns() after which the entry is dead. */
  expires: bigint;
  packets: bigint;
  bytes: bigint;
  /** The policy that allowed the flow (0: none needed). */
  policy: number;
  /** enum sl_ct_state. */
  state: number;
}

export const CT_MAP = new MapDef<CtKey, CtEntry>({
  name: 'sl_ct',
  key: { name: 'sl_ct_key', fields: { saddr: true, daddr: true, sport: true, dport: true, protocol: true } },
  value: { name: 'sl_ct_entry', fields: { expires: true, packets: true, bytes: true, policy: true, state: true } },
  watchFill: true,
});

/** Every entry. */
export function readCt(cfg: Pick<Config, 'pinRoot'>): [CtKey, CtEntry][] {
  return CT_MAP.with(cfg, (m) => [...m.entries()]);
}

/**
 * Counts the entries alive at `now` (the clock of bpf_ktime_get_ns); with `collect`, deletes
 * the dead ones.
 */
export function liveCt(cfg: Pick<Config, 'pinRoot'>, o: { collect?: boolean; now?: bigint } = {}): { live: number; deleted: number } {
  const now = o.now ?? process.hrtime.bigint();
  return CT_MAP.with(cfg, (m) => {
    let live = 0;
    let deleted = 0;
    // Walk first, delete after: bpf_map_get_next_key from a key just deleted starts over
    // at the first key, which made this quadratic (tens of seconds at a few thousand flows).
    const dead: CtKey[] = [];
    for (const [k, v] of m.entries()) {
      if (v.expires > now) live++;
      else if (o.collect) dead.push(k);
    }
    for (const k of dead) if (m.delete(k)) deleted++;
    return { live, deleted };
  });
}
