/**
 * sl_ct_v2: connection tracking (LRU hash; struct sl_ct_key → struct sl_ct_entry, layout 2 in
 * include/sluice/map-layouts.json), keyed by a flow's first packet. TypeScript names the
 * members it reads; every other member of the C struct (and where each one is) is BTF's, so
 * the entry can grow without a change here.
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
  /** The endpoints of this node the flow was admitted between (0: not a pod of this node). */
  src_ep: number;
  dst_ep: number;
  /** The translation the flow was admitted with (0: none; services and masquerade fill it). */
  nat: number;
  /** enum sl_ct_state. */
  state: number;
}

export const CT_MAP = new MapDef<CtKey, CtEntry>({
  name: 'sl_ct_v2',
  key: { name: 'sl_ct_key', fields: { saddr: true, daddr: true, sport: true, dport: true, protocol: true } },
  value: {
    name: 'sl_ct_entry',
    fields: { expires: true, packets: true, bytes: true, policy: true, src_ep: true, dst_ep: true, nat: true, state: true },
  },
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

/**
 * Removes the flows admitted for endpoint `id`, either end. Endpoint ids are reused, so a
 * deleted endpoint's flows must not outlive it: called after its sl_endpoints entry is
 * gone (no new flow can name it) and before its address is released. Returns how many.
 */
export function removeEndpointFlows(cfg: Pick<Config, 'pinRoot'>, id: number): number {
  if (!CT_MAP.pinned(cfg)) return 0;
  return CT_MAP.with(cfg, (m) => {
    // Walk first, delete after (as liveCt).
    const mine: CtKey[] = [];
    for (const [k, v] of m.entries()) if (v.src_ep === id || v.dst_ep === id) mine.push(k);
    let n = 0;
    for (const k of mine) if (m.delete(k)) n++;
    return n;
  });
}
