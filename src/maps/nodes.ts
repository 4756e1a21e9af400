/**
 * sl_nodes: the cluster's other nodes by underlay address (hash, struct sl_nodes_key →
 * struct sl_nodes_entry), written by the routing feature from the node records. The
 * datapath takes VXLAN only from these addresses, carrying only sources in the sender's pod
 * block or the sender's own address, and checks the source MAC of a packet
 * routed directly from a peer's pod against the MAC the peer published
 * (include/sluice/lib/nodes.h). Keyed by address strings in TypeScript.
 */
import type { Config } from '../config/config.js';
import { formatIPv4, ipv4FromUint32, maskOf, type Cidr } from '../util/ipv4.js';
import { applyMapDiff, type MapDiff } from './diff.js';
import { MapDef } from './map.js';

/** enum sl_nodes_flags. */
export const NODES_FLAGS = { none: 0, mac: 1, block: 2 } as const;

export interface NodesEntry { pod_block: string; pod_mask: string; mac: string; flags: number }

export const NODES_MAP = new MapDef<{ ip: string }, NodesEntry>({
  name: 'sl_nodes',
  key: { name: 'sl_nodes_key', fields: { ip: true } },
  value: { name: 'sl_nodes_entry', fields: { pod_block: true, pod_mask: true, mac: true, flags: true } },
  watchFill: true,
});

export const NO_MAC = '00:00:00:00:00:00';

/**
 * The entry of a node with pod block `block` (undefined: it has none, or one this node does
 * not accept: no pod source from it is taken) and uplink MAC `mac` (undefined: its record
 * names none, the MAC is not checked).
 */
export function nodesEntryOf(block: Cidr | undefined, mac: string | undefined): NodesEntry {
  return {
    pod_block: block ? formatIPv4(block.base) : '0.0.0.0', pod_mask: block ? formatIPv4(ipv4FromUint32(maskOf(block.prefix))) : '0.0.0.0',
    mac: mac ? mac.toLowerCase() : NO_MAC, flags: (block ? NODES_FLAGS.block : 0) | (mac ? NODES_FLAGS.mac : 0),
  };
}

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
  return NODES_MAP.with(cfg, (m) => applyMapDiff(have, want, (a, b) => a.pod_block === b.pod_block && a.pod_mask === b.pod_mask && a.mac === b.mac && a.flags === b.flags, {
    write: (ip, v) => m.update({ ip }, v),
    remove: (ip) => m.delete({ ip }),
  }));
}
