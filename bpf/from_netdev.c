// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc ingress of the node's uplink: packets arriving from the underlay.
 *   UDP to this node's address and overlay port from an address that is no node of the
 *     cluster (sl_nodes) -> dropped (drop_tunnel_source), whatever it carries: its VNI
 *     would be trusted as the source's identity
 *   VXLAN to this node's address and overlay port, carrying IPv4 for a pod on this node ->
 *     as the overlay device's from_overlay would take it: a VNI claiming the host identity
 *     dropped; an inner source the sending node does not own (neither its address nor in
 *     its pod block) dropped (drop_tunnel_inner_source); else unwrapped here (lib/vxlan.h), the pod's ingress
 *     policy (the source identity is the VNI), MACs rewritten, bpf_redirect_peer
 *   IPv4 to a pod on this node (routed here by a peer node in direct mode) -> from a peer's
 *     pod but not from that peer's MAC dropped (drop_node_mac); else its ingress policy
 *     (the source identity from the ipcache), MACs rewritten, bpf_redirect_peer
 *   IPv4 to the masquerade address with a mapping in sl_nat (a reply to a pod's masqueraded
 *     flow, or an ICMP error quoting one) -> translated back, TTL decremented, delivered into
 *     the pod: a reply through its conntrack and ingress policy, an ICMP error as related
 *     (lib/masq.h); without a mapping -> the stack (the node's own traffic)
 *   everything else (the node's own traffic, VXLAN that BPF leaves to the overlay device,
 *     frames not addressed to this host's MAC) -> the stack
 */
#include "sluice/lib/common.h"
#include "sluice/lib/metrics.h"
#include "sluice/lib/deliver.h"
#include "sluice/lib/remote.h"
#include "sluice/lib/vxlan.h"
#include "sluice/lib/nodes.h"
#include "sluice/lib/masq.h"

#ifndef PACKET_HOST
#define PACKET_HOST 0
#endif

/*
 * The local pod that the VXLAN packet in `ip` (from a node of the cluster) carries IPv4 for,
 * with the VNI in `*vni` and the inner IPv4 header in `*inner`; NULL for anything else (a
 * packet BPF leaves to the overlay device, a destination that is no pod here), which the
 * stack then takes.
 */
static __always_inline struct sl_endpoint *vxlan_to_local_pod(struct iphdr *ip, void *data_end, __u32 *vni, struct iphdr **inner)
{
	struct ethhdr *eth;
	__s64 id = sl_vxlan_parse(ip, data_end, &eth);

	if (id < 0 || eth->h_proto != bpf_htons(ETH_P_IP))
		return NULL;
	*inner = sl_ipv4_hdr(eth, data_end);
	if (!*inner)
		return NULL;
	*vni = (__u32)id;
	return sl_endpoint_by_ip((*inner)->daddr);
}

/* Unwraps VXLAN from `node` (at `addr`) for local pod `dst` and delivers the inner packet as from the overlay device. */
static __always_inline int from_vxlan(struct __sk_buff *skb, const struct sl_endpoint *dst, __u32 vni,
				      const struct sl_nodes_entry *node, __be32 addr, __be32 inner_src)
{
	void *data_end;
	struct ethhdr *eth;
	struct iphdr *ip;

	/* the host identity is the local node's alone: policy lets it in unchecked */
	if (vni == SL_IDENTITY_HOST)
		return sl_drop(skb, SL_REASON_DROP_TUNNEL_HOST, SL_DIR_INGRESS);
	if (!sl_node_owns(node, addr, inner_src))
		return sl_drop(skb, SL_REASON_DROP_TUNNEL_INNER_SOURCE, SL_DIR_INGRESS);
	if (sl_vxlan_decap(skb) < 0)
		return TC_ACT_OK;
	data_end = SL_DATA_END(skb);
	eth = SL_DATA(skb);
	if (!SL_IN_PACKET(eth, sizeof(*eth), data_end))
		return sl_drop(skb, SL_REASON_DROP_MALFORMED, SL_DIR_INGRESS);
	ip = sl_ipv4_hdr(eth, data_end);
	if (!ip)
		return sl_drop(skb, SL_REASON_DROP_MALFORMED, SL_DIR_INGRESS);
	return sl_deliver_to(skb, eth, ip, data_end, dst, vni, SL_REASON_FROM_OVERLAY);
}

/* An IPv4 packet that is not overlay traffic: for a local pod it is routed here by a peer (direct mode). */
static __always_inline int from_peer(struct __sk_buff *skb, struct ethhdr *eth, struct iphdr *ip, void *data_end)
{
	struct sl_endpoint *dst = sl_endpoint_by_ip(ip->daddr);
	struct sl_ipcache_entry *src;

	if (!dst)
		return TC_ACT_OK;
	src = sl_ipcache_lookup(ip->saddr);
	if (!sl_direct_mac_ok(src, eth->h_source))
		return sl_drop(skb, SL_REASON_DROP_NODE_MAC, SL_DIR_INGRESS);
	return sl_deliver_to(skb, eth, ip, data_end, dst, src ? src->identity : SL_IDENTITY_WORLD, SL_REASON_FROM_NETDEV);
}

SEC("tc")
int from_netdev(struct __sk_buff *skb)
{
	void *data_end = SL_DATA_END(skb);
	struct ethhdr *eth = SL_DATA(skb);
	struct sl_node_config *cfg;
	struct sl_masq_config *masq;
	struct sl_endpoint *dst;
	struct iphdr *ip, *inner;
	__u32 vni = 0;

	if (skb->pkt_type != PACKET_HOST || !SL_IN_PACKET(eth, sizeof(*eth), data_end) || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ip = sl_ipv4_hdr(eth, data_end);
	if (!ip)
		return TC_ACT_OK;
	cfg = sl_node_config();
	if (cfg && cfg->underlay_ip && ip->daddr == cfg->underlay_ip && sl_is_udp_to(ip, data_end, sl_vxlan_port)) {
		__be32 addr = ip->saddr;
		struct sl_nodes_entry *node = sl_node_lookup(addr);

		if (!node)
			return sl_drop(skb, SL_REASON_DROP_TUNNEL_SOURCE, SL_DIR_INGRESS);
		dst = vxlan_to_local_pod(ip, data_end, &vni, &inner);
		if (dst)
			return from_vxlan(skb, dst, vni, node, addr, inner->saddr);
		return TC_ACT_OK;
	}
	masq = sl_masq_on();
	if (masq && ip->daddr == masq->addr) {
		int verdict = TC_ACT_OK;

		if (sl_masq_ingress(skb, ip, data_end, masq, &verdict))
			return verdict;
	}
	return from_peer(skb, eth, ip, data_end);
}

char _license[] SEC("license") = "Dual BSD/GPL";
