/** This node's place on the underlay: its uplink's first IPv4 address and that address's subnet. */
import type { Config } from '../config/config.js';
import { uplinkName } from '../endpoint/mtu.js';
import { addresses } from '../net/ip.js';
import { nodeKey } from '../store/keys.js';
import { RecordFields } from '../store/record.js';
import { formatCidr, parseCidr } from '../util/ipv4.js';

export interface Underlay {
  /** The uplink device ('' without one). */
  uplink: string;
  /** Its first IPv4 address ('' without one). */
  ip: string;
  /** The subnet of that address, e.g. 198.18.0.0/24 ('' without one). */
  subnet: string;
}

export function underlayOf(cfg: Config): Underlay {
  const uplink = uplinkName(cfg) ?? '';
  const addr = uplink ? addresses(uplink)[0] : undefined;
  if (!addr) return { uplink, ip: '', subnet: '' };
  return { uplink, ip: addr.split('/')[0]!, subnet: formatCidr(parseCidr(addr, true)) };
}

/** What a node publishes about itself in the store (store/keys.ts nodeKey, kept while the node exists). */
export interface NodeRecord {
  name: string;
  /** Its IPv4 pod block ('' until it has one). */
  podCIDR: string;
  /** Its IPv6 pod block, with dual stack (docs/architecture.md, "Address families"). */
  podCIDRv6?: string;
  /** Its underlay address ('' without one) and that address's subnet. */
  underlayIP: string;
  subnet: string;
  /**
   * Its uplink's MAC (records from before this field have none): peers on its L2 segment take
   * a packet routed directly from its pods only from this MAC (include/sluice/lib/nodes.h).
   */
  underlayMAC?: string;
  mode: string;
  updated: string;
}

/**
 * A node record read back from the store, every field checked (the store is a trust
 * boundary): its name must be the one its key names, its addresses of their family.
 */
export function parseNodeRecord(key: string, value: string): NodeRecord {
  const f: RecordFields = RecordFields.parse(key, value);
  const name = f.str('name');
  if (key !== nodeKey(name)) f.fail('name', `is '${name}', but the key is ${key}`);
  const podCIDRv6 = f.optCidr6('podCIDRv6');
  const underlayMAC = f.has('underlayMAC') ? f.unicastMac('underlayMAC') : undefined;
  return {
    name, podCIDR: f.cidr4('podCIDR', { empty: true }), ...(podCIDRv6 ? { podCIDRv6 } : {}),
    underlayIP: f.ipv4('underlayIP', { empty: true }), subnet: f.cidr4('subnet', { empty: true }), ...(underlayMAC ? { underlayMAC } : {}),
    mode: f.str('mode', { empty: true }), updated: f.str('updated', { empty: true }),
  };
}
