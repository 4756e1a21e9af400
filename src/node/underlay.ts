/** This node's place on the underlay: its uplink's first IPv4 address and that address's subnet. */
import type { Config } from '../config/config.js';
import { uplinkName } from '../endpoint/mtu.js';
import { addresses } from '../net/ip.js';
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
  podCIDR: string;
  underlayIP: string;
  subnet: string;
  mode: string;
  updated: string;
}
