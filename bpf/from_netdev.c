// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc ingress of the node's uplink: packets arriving from the underlay.
 *   IPv4 to a pod on this node (routed here by a peer node in direct mode) -> its ingress
 *     policy (the source identity from the ipcache), MACs rewritten, bpf_redirect_peer
 *   everything else (the node's own traffic, VXLAN packets for the overlay device, frames
 *     not addressed to this host's MAC) -> the stack
 */
#include "sluice/lib/common.h"
#include "sluice/lib/metrics.h"
#include "sluice/lib/deliver.h"

#ifndef PACKET_HOST
#define PACKET_HOST 0
#endif

SEC("tc")
int from_netdev(struct __sk_buff *skb)
{
	void *data_end = SL_DATA_END(skb);
	struct ethhdr *eth = SL_DATA(skb);
	struct iphdr *ip;
	int ret;

	if (skb->pkt_type != PACKET_HOST || !SL_IN_PACKET(eth, sizeof(*eth), data_end) || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ip = sl_ipv4_hdr(eth, data_end);
	if (!ip)
		return TC_ACT_OK;
	ret = sl_deliver_local(skb, eth, ip, data_end, sl_source_identity(ip->saddr), SL_REASON_FROM_NETDEV);
	return ret < 0 ? TC_ACT_OK : ret;
}

char _license[] SEC("license") = "Dual BSD/GPL";
