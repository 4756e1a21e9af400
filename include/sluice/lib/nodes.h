/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Who may speak for a pod address arriving from the underlay (docs/architecture.md, "Trust
 * boundaries"):
 *   VXLAN   only a node of the cluster (sl_nodes, from the node records) may send this node
 *           overlay packets, since their VNI is the source's security identity; and node X
 *           may carry only sources X owns: its own address and its pod block;
 *   direct  a packet routed from a peer's pod must come from that peer's uplink MAC when
 *           its record names it (the peers share an L2 segment in this mode).
 * Each costs one hash lookup (sl_nodes) per packet; the inner check is arithmetic on the
 * entry the outer check found (no ipcache lookup: the VNI already gives the identity).
 */
#ifndef SLUICE_LIB_NODES_H
#define SLUICE_LIB_NODES_H

#include "common.h"
#include "remote.h"
#include "eth.h"

static __always_inline struct sl_nodes_entry *sl_node_lookup(__be32 ip)
{
	struct sl_nodes_key key = { .ip = ip };

	return bpf_map_lookup_elem(&sl_nodes, &key);
}

/* Whether node `n` (at underlay address `addr`) may send a packet whose inner source is `inner`. */
static __always_inline int sl_node_owns(const struct sl_nodes_entry *n, __be32 addr, __be32 inner)
{
	if (inner == addr)
		return 1;
	return (n->flags & SL_NODES_F_BLOCK) && (inner & n->pod_mask) == n->pod_block;
}

/*
 * Whether the IPv4 packet in `ip` is a UDP datagram to `port` (a VXLAN packet to the overlay
 * port, or the first fragment of one); later fragments carry no port and are judged after
 * reassembly, by the overlay device's program.
 */
static __always_inline int sl_is_udp_to(const struct iphdr *ip, void *data_end, __u16 port)
{
	const struct udphdr *udp = (const void *)ip + ip->ihl * 4;

	if (!port || ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(SL_IP_OFFSET)))
		return 0;
	if (!SL_IN_PACKET(udp, sizeof(*udp), data_end))
		return 0;
	return udp->dest == bpf_htons(port);
}

/*
 * Whether a packet routed to a local pod from `src` (its ipcache entry) came from the right
 * MAC: a direct peer's pods send from that peer's uplink MAC when its record names one.
 * Addresses routed by something other than a node (a routing daemon's gateway) and nodes
 * whose record has no MAC are not checked.
 */
static __always_inline int sl_direct_mac_ok(const struct sl_ipcache_entry *src, const __u8 *h_source)
{
	struct sl_nodes_entry *n;

	if (!src || !(src->flags & SL_IPCACHE_F_DIRECT) || !src->tunnel_endpoint)
		return 1;
	n = sl_node_lookup(src->tunnel_endpoint);
	if (!n || !(n->flags & SL_NODES_F_MAC))
		return 1;
	return sl_mac_eq(n->mac, h_source);
}

#endif
