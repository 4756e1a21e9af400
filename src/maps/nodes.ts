/**
 * sl_nodes: the cluster's other nodes by underlay address (hash, struct sl_nodes_key →
 * struct sl_nodes_entry), written by the routing feature from the node records. The
 * datapath takes VXLAN only from these addresses, and checks the source MAC of a packet
 * routed directly from a peer's pod against the MAC the peer published
 * (include/sluice/lib/nodes.h). Keyed by address strings in TypeScript.
 */
import type { Config } from '../config/config.js';
import { applyMapDiff, type MapDiff } from './diff.js';
import { MapDef } from './map.js';

/** enum sl_nodes_flags. */
export const NODES_FLAGS = { none: 0, mac: 1 } as const;

export interface NodesEntry { mac: string; flags: number }

export const NODES_MAP = new MapDef<{ ip: string }, NodesEntry>({
  name: 'sl_nodes',
  key: { name: 'sl_nodes_key', fields: { ip: true } },
  value: { name: 'sl_nodes_entry', fields: { mac: true, flags: true } },
  watchFill: true,
});

export const NO_MAC = '00:00:00:00:00:00';

/** The entry of a node with underlay MAC `mac` (undefined: its record names none, the MAC is not checked). */
export const nodesEntryOf = (mac: string | undefined): NodesEntry =>
  (mac ? { mac: mac.toLowerCase(), flags: NODES_FLAGS.mac } : { mac: NO_MAC, flags: NODES_FLAGS.none });

/** Every entry: underlay address → entry. */
export function readNodes(cfg: Pick<Config, 'pinRoot'>): Map<string, NodesEntry> {
  return NODES_MAP.with(cfg, (m) => new Map([...m.entries()].map(([k, v]) => [k.ip, v])));
}

/**
 * Makes sl_nodes equal `want`: new and changed nodes first, then the nodes that left, so a
 * node that stays is never missing in between (its VXLAN would be dropped).
 */
export function syncNodes(cfg: Pick<Config, 'pinRoot'>, want: ReadonlyMap<string, NodesEntry>): MapDiff<string> {
  const have = readNodes(cfg);
  return NODES_MAP.with(cfg, (m) => applyMapDiff(have, want, (a, b) => a.mac === b.mac && a.flags === b.flags, {
    write: (ip, v) => m.update({ ip }, v),
    remove: (ip) => m.delete({ ip }),
  }));
}
