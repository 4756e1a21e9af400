// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc egress of a pod's host-side veth: what the host stack sends to a pod (traffic from
 * other pods on this node arrives by bpf_redirect_peer and never passes here).
 *   IPv4 to the pod behind this veth -> its ingress policy (the node itself always may:
 *     the source identity comes from the ipcache, where the node's addresses are "host"),
 *     destination MAC set to the pod's, delivered
 *   IPv4 to an address that is not this veth's pod -> dropped
 *   anything else (ARP, IPv6 neighbour discovery) -> delivered untouched
 */
#include "sluice/lib/common.h"
#include "sluice/lib/metrics.h"
#include "sluice/lib/eth.h"
#include "sluice/lib/ipv4.h"
#include "sluice/lib/endpoint.h"
#include "sluice/lib/deliver.h"

SEC("tc")
int to_container(struct __sk_buff *skb)
{
	void *data_end = SL_DATA_END(skb);
	struct ethhdr *eth = SL_DATA(skb);
	struct sl_endpoint *ep;
	struct iphdr *ip;
	int verdict;

	if (!SL_IN_PACKET(eth, sizeof(*eth), data_end))
		return sl_drop(skb, SL_REASON_DROP_MALFORMED, SL_DIR_INGRESS);
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;

	ip = sl_ipv4_hdr(eth, data_end);
	if (!ip)
		return sl_drop(skb, SL_REASON_DROP_MALFORMED, SL_DIR_INGRESS);
	ep = sl_endpoint_by_ip(ip->daddr);
	if (!ep || ep->ifindex != skb->ifindex)
		return sl_drop(skb, SL_REASON_DROP_NO_ENDPOINT, SL_DIR_INGRESS);
	verdict = sl_enforce_ingress(skb, ip, data_end, ep, sl_source_identity(ip->saddr));
	if (verdict)
		return verdict;
	data_end = SL_DATA_END(skb);
	eth = SL_DATA(skb);
	if (!SL_IN_PACKET(eth, sizeof(*eth), data_end))
		return sl_drop(skb, SL_REASON_DROP_MALFORMED, SL_DIR_INGRESS);
	sl_mac_copy(eth->h_dest, ep->mac);
	sl_count(skb, SL_REASON_TO_POD, SL_DIR_INGRESS);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "Dual BSD/GPL";
