// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc ingress of the node's collect_md VXLAN device: packets other nodes' pods sent
 * through the overlay that from_netdev left to the kernel to decapsulate (counted as
 * overlay_device, then as below).
 *   no tunnel key -> dropped (cannot happen on a collect_md device)
 *   from an address that is no node of the cluster (sl_nodes) -> dropped (the VNI would be
 *     trusted as the source's identity)
 *   a VNI claiming the host identity -> dropped (nodes never send it; policy trusts it)
 *   IPv4 from a source the sending node does not own (its address, its pod block) -> dropped
 *   IPv4 to a pod on this node -> its ingress policy (the source identity is the VNI),
 *     MACs rewritten, bpf_redirect_peer into the pod
 *   IPv4 to anything else -> dropped (the overlay carries pod traffic only)
 *   not IPv4 -> dropped
 */
#include "sluice/lib/common.h"
#include "sluice/lib/metrics.h"
#include "sluice/lib/deliver.h"
#include "sluice/lib/nodes.h"

SEC("tc")
int from_overlay(struct __sk_buff *skb)
{
	void *data_end = SL_DATA_END(skb);
	struct ethhdr *eth = SL_DATA(skb);
	struct bpf_tunnel_key key = {};
	struct iphdr *ip;
	struct sl_nodes_entry *node;
	__be32 addr;
	int ret;

	if (bpf_skb_get_tunnel_key(skb, &key, SL_TUNNEL_KEY_SIZE, 0) < 0)
		return sl_drop(skb, SL_REASON_DROP_TUNNEL_KEY, SL_DIR_INGRESS);
	sl_count_only(skb, SL_REASON_OVERLAY_DEVICE, SL_DIR_INGRESS);
	addr = bpf_htonl(key.remote_ipv4);
	node = sl_node_lookup(addr);
	if (!node)
		return sl_drop(skb, SL_REASON_DROP_TUNNEL_SOURCE, SL_DIR_INGRESS);
	/* the host identity is the local node's alone: policy lets it in unchecked */
	if (key.tunnel_id == SL_IDENTITY_HOST)
		return sl_drop(skb, SL_REASON_DROP_TUNNEL_HOST, SL_DIR_INGRESS);
	if (!SL_IN_PACKET(eth, sizeof(*eth), data_end))
		return sl_drop(skb, SL_REASON_DROP_MALFORMED, SL_DIR_INGRESS);
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return sl_drop(skb, SL_REASON_DROP_UNSUPPORTED_L3, SL_DIR_INGRESS);
	ip = sl_ipv4_hdr(eth, data_end);
	if (!ip)
		return sl_drop(skb, SL_REASON_DROP_MALFORMED, SL_DIR_INGRESS);
	if (!sl_node_owns(node, addr, ip->saddr))
		return sl_drop(skb, SL_REASON_DROP_TUNNEL_INNER_SOURCE, SL_DIR_INGRESS);
	ret = sl_deliver_local(skb, eth, ip, data_end, (__u32)key.tunnel_id, SL_REASON_FROM_OVERLAY);
	if (ret < 0)
		return sl_drop(skb, SL_REASON_DROP_NO_ENDPOINT, SL_DIR_INGRESS);
	return ret;
}

char _license[] SEC("license") = "Dual BSD/GPL";
