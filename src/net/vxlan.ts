/**
 * The node's overlay device: one collect_md ("external") VXLAN device on UDP 8472. It has
 * no remote of its own: every packet's remote comes from its tunnel key (set by
 * from_container, or by a kernel route's `encap ip dst`). ARP is off: pod traffic is
 * delivered by from_overlay, which sets the MACs itself.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { deleteLink, getLink, ipBatch, type Link } from './ip.js';

export const VXLAN_DEV = 'sl_vxlan';
export const VXLAN_PORT = 8472;
/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14). */
export const VXLAN_OVERHEAD = 50;

/** Creates the device if missing (or if it is not a collect_md VXLAN on our port), sets its MTU, brings it up. */
export function ensureVxlan(mtu: number): { link: Link; created: boolean } {
  let link = getLink(VXLAN_DEV);
  let created = false;
  if (link && link.kind !== 'vxlan') throw new Error(`device ${VXLAN_DEV} exists but is a ${link.kind ?? 'plain'} device, not VXLAN`);
  if (!link) {
    ipBatch([`link add ${VXLAN_DEV} mtu ${mtu} type vxlan external dstport ${VXLAN_PORT}`]);
    created = true;
  }
  // Every reconciliation calls this: a device already as it should be costs one lookup.
  if (link && link.mtu === mtu && link.up && link.noArp) return { link, created };
  const knob = `/proc/sys/net/ipv6/conf/${VXLAN_DEV}/disable_ipv6`;
  if (existsSync(knob)) writeFileSync(knob, '1');
  ipBatch([`link set ${VXLAN_DEV} mtu ${mtu} arp off up`]);
  link = getLink(VXLAN_DEV);
  if (!link) throw new Error(`${VXLAN_DEV} vanished right after it was configured`);
  return { link, created };
}

export function deleteVxlan(): boolean {
  return deleteLink(VXLAN_DEV);
}
