/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The prefilter (bpf/xdp_prefilter.c): denied source CIDRs in the LPM trie sl_prefilter,
 * what each rule dropped in sl_prefilter_ct.
 *
 * What it judges: IPv4 frames, untagged or with up to SL_PF_MAX_VLANS 802.1Q/802.1ad tags,
 * whose fixed 20-byte IPv4 header is complete (version 4, IHL >= 5). Everything else
 * passes untouched: ARP, IPv6, deeper VLAN stacks, frames too short for their headers
 * and malformed IPv4 headers. The prefilter only drops what it can attribute to a rule;
 * the stack validates and drops malformed frames itself (and counts them).
 */
#ifndef SLUICE_LIB_PREFILTER_H
#define SLUICE_LIB_PREFILTER_H

#include "common.h"

#ifndef SL_PF_MAX_VLANS
#define SL_PF_MAX_VLANS 2
#endif

/* An 802.1Q / 802.1ad tag after the Ethernet addresses (the ethertype comes last). */
struct sl_vlan_hdr {
	__be16 tci;
	__be16 proto;
};

/*
 * The IPv4 header of the frame [data, data_end) when the frame is IPv4 (after up to
 * SL_PF_MAX_VLANS VLAN tags) and its fixed header is complete and well-formed, else NULL.
 */
static __always_inline struct iphdr *sl_pf_ipv4(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip;
	void *l3;
	__be16 proto;
	int i;

	if (!SL_IN_PACKET(eth, sizeof(*eth), data_end))
		return NULL;
	proto = eth->h_proto;
	l3 = eth + 1;
#pragma unroll
	for (i = 0; i < SL_PF_MAX_VLANS; i++) {
		struct sl_vlan_hdr *vlan = l3;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if (!SL_IN_PACKET(vlan, sizeof(*vlan), data_end))
			return NULL;
		proto = vlan->proto;
		l3 = vlan + 1;
	}
	if (proto != bpf_htons(ETH_P_IP))
		return NULL;
	ip = l3;
	if (!SL_IN_PACKET(ip, sizeof(*ip), data_end))
		return NULL;
	if (ip->version != 4 || ip->ihl < 5)
		return NULL;
	return ip;
}

/* The rule that denies source `saddr` (longest prefix), or NULL. */
static __always_inline struct sl_prefilter_rule *sl_pf_lookup(sl_ipv4_t saddr)
{
	struct sl_prefilter_key key = { .prefixlen = 32, .addr = saddr };

	return bpf_map_lookup_elem(&sl_prefilter, &key);
}

/* Adds one packet of `bytes` to the rule's per-CPU counters. */
static __always_inline void sl_pf_count(__u32 id, __u64 bytes)
{
	struct sl_prefilter_ct_key key = { .id = id };
	struct sl_prefilter_ct *ct = bpf_map_lookup_elem(&sl_prefilter_ct, &key);

	if (ct) {
		/* per-CPU: no other writer on this CPU while we run */
		ct->packets++;
		ct->bytes += bytes;
	} else {
		struct sl_prefilter_ct init = { .packets = 1, .bytes = bytes };

		bpf_map_update_elem(&sl_prefilter_ct, &key, &init, BPF_NOEXIST);
	}
}

#endif
