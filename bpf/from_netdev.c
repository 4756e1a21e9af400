// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc ingress of the node's uplink: packets arriving from the underlay.
 *   VXLAN to this node's address and overlay port, carrying IPv4 for a pod on this node ->
 *     as the overlay device's from_overlay would take it: a VNI claiming the host identity
 *     dropped; else unwrapped here (lib/vxlan.h), the pod's ingress policy (the source
 *     identity is the VNI), MACs rewritten, bpf_redirect_peer
 *   IPv4 to a pod on this node (routed here by a peer node in direct mode) -> its ingress
 *     policy (the source identity from the ipcache), MACs rewritten, bpf_redirect_peer
 *   everything else (the node's own traffic, VXLAN that BPF leaves to the overlay device,
 *     frames not addressed to this host's MAC) -> the stack
 */
#include "sluice/lib/common.h"
#include "sluice/lib/metrics.h"
#include "sluice/lib/deliver.h"
#include "sluice/lib/remote.h"
#include "sluice/lib/vxlan.h"

#ifndef PACKET_HOST
#define PACKET_HOST 0
#endif

/*
 * The local pod that the VXLAN packet in `ip` carries IPv4 for, with the VNI in `*vni`; NULL
 * for anything else (not VXLAN for this node, a packet BPF leaves to the overlay device, a
 * destination that is no pod here), which the stack then takes.
 */
static __always_inline struct sl_endpoint *vxlan_to_local_pod(struct iphdr *ip, void *data_end, __u32 *vni)
{
	struct sl_node_config *cfg;
	struct ethhdr *eth;
	struct iphdr *inner;
	__s64 id = sl_vxlan_parse(ip, data_end, &eth);

	if (id < 0)
		return NULL;
	cfg = sl_node_config();
	if (!cfg || !cfg->underlay_ip || ip->daddr != cfg->underlay_ip || eth->h_proto != bpf_htons(ETH_P_IP))
		return NULL;
	inner = sl_ipv4_hdr(eth, data_end);
	if (!inner)
		return NULL;
	*vni = (__u32)id;
	return sl_endpoint_by_ip(inner->daddr);
}

/* Unwraps VXLAN for local pod `dst` and delivers the inner packet as from the overlay device. */
static __always_inline int from_vxlan(struct __sk_buff *skb, const struct sl_endpoint *dst, __u32 vni)
{
	void *data_end;
	struct ethhdr *eth;
	struct iphdr *ip;

	/* the host identity is the local node's alone: policy lets it in unchecked */
	if (vni == SL_IDENTITY_HOST)
		return sl_drop(skb, SL_REASON_DROP_TUNNEL_HOST, SL_DIR_INGRESS);
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

SEC("tc")
int from_netdev(struct __sk_buff *skb)
{
	void *data_end = SL_DATA_END(skb);
	struct ethhdr *eth = SL_DATA(skb);
	struct sl_endpoint *dst;
	struct iphdr *ip;
	__u32 vni = 0;
	int ret;

	if (skb->pkt_type != PACKET_HOST || !SL_IN_PACKET(eth, sizeof(*eth), data_end) || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ip = sl_ipv4_hdr(eth, data_end);
	if (!ip)
		return TC_ACT_OK;
	dst = vxlan_to_local_pod(ip, data_end, &vni);
	if (dst)
		return from_vxlan(skb, dst, vni);
	ret = sl_deliver_local(skb, eth, ip, data_end, sl_source_identity(ip->saddr), SL_REASON_FROM_NETDEV);
	return ret < 0 ? TC_ACT_OK : ret;
}

char _license[] SEC("license") = "Dual BSD/GPL";
