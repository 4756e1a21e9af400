// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * XDP on the node's uplink: drops packets from denied source CIDRs before the stack
 * allocates an skb for them.
 *   IPv4 (untagged or up to 2 VLAN tags) from a source in sl_prefilter -> XDP_DROP,
 *     counted in sl_prefilter_ct under the longest matching rule's id
 *   anything else (other sources, ARP, IPv6, truncated or malformed frames) -> XDP_PASS
 * See include/sluice/lib/prefilter.h for exactly which frames are judged, and
 * docs/prefilter.md.
 */
#include "sluice/lib/common.h"
#include "sluice/lib/prefilter.h"

SEC("xdp")
int xdp_prefilter(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct sl_prefilter_rule *rule;
	struct iphdr *ip;

	ip = sl_pf_ipv4(data, data_end);
	if (!ip)
		return XDP_PASS;
	rule = sl_pf_lookup(ip->saddr);
	if (!rule)
		return XDP_PASS;
	sl_pf_count(rule->id, (__u64)(data_end - data));
	return XDP_DROP;
}

char _license[] SEC("license") = "Dual BSD/GPL";
