// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc egress of the node's uplink: what leaves the node, after the stack routed it.
 *   IPv4 from a pod of this node to a destination that is no pod, no node, no cluster
 *     address and in no sl_nonmasq range, while masquerade is on -> its source becomes the
 *     node's masquerade address and a port of the range (lib/masq.h, lib/nat.h); what
 *     cannot be translated is dropped with its reason (drop_nat_no_port,
 *     drop_nat_table_full, drop_nat_fragment, drop_nat_unsupported), never sent as it is
 *   a pod's ICMP error about a reply it got through masquerade -> translated (outer source,
 *     the quoted destination and port); about a packet to the pod's own address -> untouched
 *   a pod's packet of a flow that was started toward it -> untouched
 *   everything else (the node's own packets, the overlay's, pods' packets to the cluster) ->
 *     untouched
 */
#include "sluice/lib/common.h"
#include "sluice/lib/metrics.h"
#include "sluice/lib/ipv4.h"
#include "sluice/lib/endpoint.h"
#include "sluice/lib/masq.h"

SEC("tc")
int to_netdev(struct __sk_buff *skb)
{
	void *data_end = SL_DATA_END(skb);
	struct ethhdr *eth = SL_DATA(skb);
	struct sl_masq_config *m;
	struct iphdr *ip;

	if (!SL_IN_PACKET(eth, sizeof(*eth), data_end) || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ip = sl_ipv4_hdr(eth, data_end);
	if (!ip)
		return TC_ACT_OK;
	m = sl_masq_on();
	if (!m || ip->saddr == m->addr || !sl_endpoint_by_ip(ip->saddr))
		return TC_ACT_OK;
	if (sl_masq_exempt(ip->daddr))
		return TC_ACT_OK;
	return sl_masq_egress(skb, ip, data_end, m);
}

char _license[] SEC("license") = "Dual BSD/GPL";
