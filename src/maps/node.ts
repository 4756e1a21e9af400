/** sl_node: this node's runtime settings, its devices (one entry, key 0: __u32 → struct sl_node_config), written by the agent. */
import type { Config } from '../config/config.js';
import { MapDef } from './map.js';

export interface NodeConfigValue { vxlan_ifindex: number; uplink_ifindex: number; underlay_ip: string; flags: number }

export const NODE_MAP = new MapDef<number, NodeConfigValue>({
  name: 'sl_node',
  key: { name: '__u32' },
  value: { name: 'sl_node_config', fields: { vxlan_ifindex: true, uplink_ifindex: true, underlay_ip: true, flags: true } },
});

export function readNodeConfig(cfg: Pick<Config, 'pinRoot'>): NodeConfigValue | undefined {
  return NODE_MAP.with(cfg, (m) => m.lookup(0));
}

export function writeNodeConfig(cfg: Pick<Config, 'pinRoot'>, v: NodeConfigValue): void {
  NODE_MAP.with(cfg, (m) => m.update(0, v));
}
