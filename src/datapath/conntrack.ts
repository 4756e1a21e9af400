/**
 * The conntrack map (sl_ct_v2, struct sl_ct_entry in include/sluice/types.h): the agent's
 * side of it. Field names are the C struct's; their layout comes from the map's BTF.
 */
import { existsSync } from 'node:fs';
import type { Config } from '../config/config.js';
import { openMap } from './loader.js';
import { nodePins } from './pins.js';

export const CT_MAP = 'sl_ct_v2';

export interface CtKey { saddr: string; daddr: string; sport: number; dport: number; protocol: number }
export interface CtEntry {
  expires: bigint;
  packets: bigint;
  bytes: bigint;
  policy: number;
  /** The endpoints of this node the flow was admitted between (0: not a pod of this node). */
  src_ep: number;
  dst_ep: number;
  nat: number;
  state: number;
}

/**
 * Removes the flows admitted for endpoint `id`, either end. Endpoint ids are reused, so a
 * deleted endpoint's flows must not outlive it: called after its sl_endpoints entry is
 * gone (no new flow can name it) and before its address is released. Returns how many.
 */
export function removeEndpointFlows(cfg: Pick<Config, 'pinRoot'>, id: number): number {
  if (!existsSync(nodePins(cfg).map(CT_MAP))) return 0;
  const m = openMap<CtKey, CtEntry>(cfg, CT_MAP);
  try {
    // Walk first, delete after: deleting the key just yielded restarts a hash map's walk.
    const mine = [...m.rawKeys()].filter((k) => {
      const raw = m.lookupRaw(k);
      if (!raw) return false;
      const v = m.value.decode(raw) as CtEntry;
      return v.src_ep === id || v.dst_ep === id;
    });
    let n = 0;
    for (const k of mine) if (m.deleteRaw(k)) n++;
    return n;
  } finally {
    m.close();
  }
}
