/**
 * How this node reaches every other node's pods, decided from the node records in the
 * store, the mode and the kernel's routing table. Pure: the agent reads the inputs and
 * applies the plan (src/agent/routing.ts).
 *
 *   vxlan   every peer through the overlay
 *   direct  every peer routed on the uplink to its underlay address; a peer outside this
 *           node's subnet cannot be reached that way (reported, not installed)
 *   hybrid  peers in this node's subnet direct, the others through the overlay
 *
 * Routes in the kernel's main table that a routing daemon (BIRD, FRR, …) installed for
 * prefixes inside the cluster pool, with a gateway, are taken as direct routes to that
 * gateway too, unless a node record in the store already covers the prefix.
 */
import type { Mode } from '../config/config.js';
import { IPCACHE_FLAGS, type IpcacheEntry } from '../maps/ipcache.js';
import { nodesEntryOf, type NodesEntry } from '../maps/nodes.js';
import { cidrContains, cidrOverlaps, cidrWithin, formatCidr, isIPv4, parseCidr, parseIPv4 } from '../util/ipv4.js';

/** The routing protocol number sluice marks its kernel routes with (`ip route … proto 210`). */
export const SLUICE_RT_PROTO = 210;

export interface NodeInfo {
  name: string;
  podCIDR: string;
  underlayIP: string;
  /** The underlay subnet of the node's uplink, e.g. 198.18.0.0/24. */
  subnet: string;
  /** Its uplink's MAC, when its record names it. */
  underlayMAC?: string;
}

export interface KernelRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
}

export type PeerPath = 'tunnel' | 'direct' | 'unreachable';

export interface Peer {
  name: string;
  podCIDR: string;
  underlayIP: string;
  path: PeerPath;
  /** "store" (a node record) or "kernel" (a route a routing daemon installed). */
  source: 'store' | 'kernel';
  reason?: string;
}

/** A route sluice keeps in the kernel for a remote pod block. */
export interface PlannedRoute {
  dst: string;
  path: 'tunnel' | 'direct';
  /** The peer node's underlay address (tunnel endpoint or next hop). */
  via: string;
}

export interface RoutePlan {
  peers: Peer[];
  ipcache: Map<string, IpcacheEntry>;
  /**
   * sl_nodes: every other node with an underlay address, by that address, whatever its path
   * (only these may send this node VXLAN), with its pod block when it has one that overlaps
   * none of this node's (the sources it may carry). A record claiming this node's own
   * address, or one another record claimed first (by name order), is left out and reported.
   */
  nodes: Map<string, NodesEntry>;
  routes: PlannedRoute[];
  problems: string[];
}

function inSubnet(subnet: string, ip: string): boolean {
  try {
    return cidrContains(parseCidr(subnet, true), parseIPv4(ip));
  } catch {
    return false;
  }
}

function pathFor(mode: Mode, sameSubnet: boolean): PeerPath {
  if (mode === 'vxlan') return 'tunnel';
  if (sameSubnet) return 'direct';
  return mode === 'hybrid' ? 'tunnel' : 'unreachable';
}

export function planRoutes(self: NodeInfo, mode: Mode, nodes: readonly NodeInfo[], kernel: readonly KernelRoute[], clusterCIDR: string): RoutePlan {
  const plan: RoutePlan = { peers: [], ipcache: new Map(), nodes: new Map(), routes: [], problems: [] };
  const pool = parseCidr(clusterCIDR);
  const own = self.podCIDR ? parseCidr(self.podCIDR) : undefined;
  const entry = (path: 'tunnel' | 'direct', via: string): IpcacheEntry =>
    ({ identity: 0, tunnel_endpoint: via, flags: path === 'tunnel' ? IPCACHE_FLAGS.tunnel : IPCACHE_FLAGS.direct });

  const claimed = new Map<string, string>();
  for (const n of [...nodes].sort((a, b) => a.name.localeCompare(b.name))) {
    if (n.name === self.name) continue;
    if (isIPv4(n.underlayIP)) {
      const by = n.underlayIP === self.underlayIP ? self.name : claimed.get(n.underlayIP);
      if (by) {
        plan.problems.push(`node ${n.name} claims the underlay address ${n.underlayIP} of node ${by}; left out`);
        continue;
      }
      claimed.set(n.underlayIP, n.name);
      plan.nodes.set(n.underlayIP, nodesEntryOf(undefined, n.underlayMAC));
    }
    if (!n.podCIDR || !isIPv4(n.underlayIP)) {
      plan.problems.push(`node ${n.name} has no ${n.podCIDR ? 'underlay address' : 'pod block'} in its record yet`);
      continue;
    }
    const cidr = parseCidr(n.podCIDR, true);
    const block = formatCidr(cidr);
    if (own && cidrOverlaps(cidr, own)) {
      plan.problems.push(`node ${n.name} claims ${block}, which overlaps this node's block ${self.podCIDR}`);
      continue;
    }
    plan.nodes.set(n.underlayIP, nodesEntryOf(cidr, n.underlayMAC));
    const same = inSubnet(self.subnet, n.underlayIP);
    const path = pathFor(mode, same);
    const peer: Peer = { name: n.name, podCIDR: block, underlayIP: n.underlayIP, path, source: 'store' };
    if (path === 'unreachable') {
      peer.reason = `direct mode needs the nodes on one L2 segment: ${n.underlayIP} is outside this node's subnet ${self.subnet} (use mode hybrid or vxlan)`;
      plan.problems.push(`node ${n.name}: ${peer.reason}`);
    } else {
      plan.ipcache.set(block, entry(path, n.underlayIP));
      plan.routes.push({ dst: block, path, via: n.underlayIP });
    }
    plan.peers.push(peer);
  }

  for (const r of kernel) {
    if (r.protocol === String(SLUICE_RT_PROTO) || r.dst === 'default' || !r.gateway || !isIPv4(r.gateway)) continue;
    let dst;
    try {
      dst = parseCidr(r.dst.includes('/') ? r.dst : `${r.dst}/32`, true);
    } catch {
      continue;
    }
    const cidr = formatCidr(dst);
    if (!cidrWithin(dst, pool) || (own && cidrOverlaps(dst, own)) || plan.ipcache.has(cidr)) continue;
    plan.ipcache.set(cidr, entry('direct', r.gateway));
    plan.peers.push({ name: `route ${cidr} via ${r.gateway}${r.protocol ? ` (proto ${r.protocol})` : ''}`, podCIDR: cidr, underlayIP: r.gateway, path: 'direct', source: 'kernel' });
  }
  return plan;
}
