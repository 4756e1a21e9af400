/** The pod's veth pair: created with the pod side already in the pod's namespace. */
import { createHash } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { deleteLink, getLink, ipBatch, type Link } from '../net/ip.js';
import { withNetns } from '../net/netns.js';

/** Host-side device names: "sl" + 11 hex digits. */
export const HOST_IF_PATTERN = /^sl[0-9a-f]{11}$/;

/** A stable host-side name for a pod interface (at most 15 characters, as the kernel requires). */
export function hostIfname(key: string): string {
  return `sl${createHash('sha256').update(key).digest('hex').slice(0, 11)}`;
}

export interface VethSpec {
  hostIf: string;
  podIf: string;
  netns: string;
  ip: string;
  mtu: number;
  gateway: string;
}

export interface Veth {
  host: Link;
  pod: Link;
}

/** Creates the pair and configures the pod side: /32 address, MTU, gateway route, default route. */
export function createVeth(s: VethSpec): Veth {
  ipBatch([`link add ${s.hostIf} mtu ${s.mtu} type veth peer name ${s.podIf} mtu ${s.mtu} netns ${s.netns}`]);
  ipBatch([
    'link set lo up',
    `addr add ${s.ip}/32 dev ${s.podIf}`,
    `link set ${s.podIf} up`,
    `route add ${s.gateway} dev ${s.podIf} scope link`,
    `route add default via ${s.gateway} dev ${s.podIf}`,
  ], s.netns);
  const host = getLink(s.hostIf);
  const pod = getLink(s.podIf, s.netns);
  if (!host || !pod) throw new Error(`veth ${s.hostIf}/${s.podIf} vanished right after creation`);
  // The pair carries only IPv4: no IPv6 autoconfiguration, router solicitations or MLD
  // reports, which the datapath would only count as drops.
  disableIpv6(s.hostIf);
  withNetns(s.netns, () => disableIpv6(s.podIf));
  return { host, pod };
}

/** Turns IPv6 off on a device of the current network namespace (/proc/sys/net is per namespace). */
function disableIpv6(dev: string): void {
  const knob = `/proc/sys/net/ipv6/conf/${dev}/disable_ipv6`;
  if (existsSync(knob)) writeFileSync(knob, '1');
}

/** Brings the host side up with the pod's /32 route and a permanent neighbour entry. */
export function activateHostSide(hostIf: string, ip: string, podMac: string): void {
  ipBatch([
    `link set ${hostIf} up`,
    `route replace ${ip}/32 dev ${hostIf} scope link`,
    `neigh replace ${ip} lladdr ${podMac} dev ${hostIf} nud permanent`,
  ]);
}

/** Deletes the pair (removing the host side removes the pod side, its routes and neighbours). */
export function deleteVeth(hostIf: string): boolean {
  return deleteLink(hostIf);
}
