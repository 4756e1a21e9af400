/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Delivering a packet that arrived from another node into a local pod. */
#ifndef SLUICE_LIB_DELIVER_H
#define SLUICE_LIB_DELIVER_H

#include "common.h"
#include "metrics.h"
#include "eth.h"
#include "ipv4.h"
#include "endpoint.h"
#include "l4.h"
#include "flow.h"

/* The identity behind a source address from outside this node: the ipcache's, else world. */
static __always_inline __u32 sl_source_identity(__be32 saddr)
{
	struct sl_ipcache_key key = { .prefixlen = 32, .ip = saddr };
	struct sl_ipcache_entry *e = bpf_map_lookup_elem(&sl_ipcache, &key);

	return e ? e->identity : SL_IDENTITY_WORLD;
}

/*
 * The pipeline (lib/flow.h) for a packet entering local pod `dst` from `identity`: known
 * flows pass; the node itself always may; a new flow needs dst's ingress policy. A reply
 * of the pod's flow to a service is translated back (lib/service.h). Returns 0 to go on
 * (packet pointers invalid: the caller loads them again), or the drop verdict.
 */
static __always_inline int sl_enforce_ingress(struct __sk_buff *skb, struct iphdr *ip, void *data_end,
					      const struct sl_endpoint *dst, __u32 identity)
{
	struct sl_peer from = { .ep = NULL, .identity = identity };
	struct sl_peer to = { .ep = dst, .identity = dst->identity };
	__u32 l4_off = ETH_HLEN + ip->ihl * 4;
	__u32 nat = SL_CT_NAT_NONE;
	struct sl_flow f;
	int verdict;

	if (sl_flow_parse(ip, data_end, &f) < 0)
		return sl_drop(skb, SL_REASON_DROP_MALFORMED, SL_DIR_INGRESS);
	verdict = sl_flow_admit(skb, &f, &from, &to, SL_DIR_INGRESS, &nat);
	if (!verdict && nat == SL_CT_NAT_SERVICE && sl_service_reverse(skb, &f, l4_off) < 0)
		return sl_drop(skb, SL_REASON_DROP_MALFORMED, SL_DIR_INGRESS);
	return verdict;
}

/*
 * The IPv4 packet in `eth` for `dst`, a pod of this node, from `identity`: ingress policy,
 * then MACs set as if the pod's gateway sent it and bpf_redirect_peer into the pod. The
 * sending node already decremented the TTL.
 */
static __always_inline int sl_deliver_to(struct __sk_buff *skb, struct ethhdr *eth, struct iphdr *ip, void *data_end,
					 const struct sl_endpoint *dst, __u32 identity, enum sl_reason reason)
{
	int verdict = sl_enforce_ingress(skb, ip, data_end, dst, identity);

	if (verdict)
		return verdict;
	data_end = SL_DATA_END(skb);
	eth = SL_DATA(skb);
	if (!SL_IN_PACKET(eth, sizeof(*eth), data_end))
		return sl_drop(skb, SL_REASON_DROP_MALFORMED, SL_DIR_INGRESS);
	sl_eth_rewrite(eth, dst->mac, dst->host_mac);
	/*
	 * The device the packet came in on classed it by the MAC it then had: from the overlay
	 * that is the sending node's gateway MAC, so PACKET_OTHERHOST. bpf_redirect_peer does
	 * not classify again, and kernels without "bpf: Scrub packet on bpf_redirect_peer"
	 * (6.8, backported to 6.1 but not to 5.10) keep the old class, which the pod's IP layer
	 * drops without a counter in sight.
	 */
	if (skb->pkt_type != PACKET_HOST)
		bpf_skb_change_type(skb, PACKET_HOST);
	sl_count(skb, reason, SL_DIR_INGRESS);
	return bpf_redirect_peer(dst->ifindex, 0);
}

/* sl_deliver_to the local pod the packet is addressed to; -1 when there is none (the caller decides). */
static __always_inline int sl_deliver_local(struct __sk_buff *skb, struct ethhdr *eth, struct iphdr *ip, void *data_end,
					    __u32 identity, enum sl_reason reason)
{
	struct sl_endpoint *dst = sl_endpoint_by_ip(ip->daddr);

	return dst ? sl_deliver_to(skb, eth, ip, data_end, dst, identity, reason) : -1;
}

#endif
