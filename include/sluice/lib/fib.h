/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Routing a packet in BPF as the node's routing table says, without the stack's forwarding
 * path: a forwarding lookup in the kernel's FIB (bpf_fib_lookup from the packet's ingress
 * device, so policy routing and the device's forwarding setting count as for the stack),
 * then the resolved neighbour's MAC and bpf_redirect, or bpf_redirect_neigh when the
 * neighbour is not resolved yet (the kernel resolves it, as it does for the stack).
 */
#ifndef SLUICE_LIB_FIB_H
#define SLUICE_LIB_FIB_H

#include "common.h"
#include "eth.h"
#include "ipv4.h"
#include "remote.h"

/*
 * Routes IPv4 packet `ip` (frame `eth`) out of device `oif` when the FIB routes it there:
 * TTL decremented, MACs written (or left to bpf_redirect_neigh). Returns the tc verdict
 * (TC_ACT_REDIRECT), or -1 when the stack must route it: no route or not a unicast one,
 * another device, forwarding off on the ingress device, or too big for the device (the
 * stack then sends fragmentation needed). The caller has checked TTL > 1.
 */
static __always_inline int sl_fib_forward(struct __sk_buff *skb, struct ethhdr *eth, struct iphdr *ip, __u32 oif)
{
	struct bpf_fib_lookup p = {
		.family = SL_AF_INET,
		.l4_protocol = ip->protocol,
		.tot_len = bpf_ntohs(ip->tot_len),
		.ifindex = skb->ifindex,
		.tos = ip->tos,
		.ipv4_src = ip->saddr,
		.ipv4_dst = ip->daddr,
	};
	long rc = bpf_fib_lookup(skb, &p, sizeof(p), 0);

	if ((rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) || p.ifindex != oif)
		return -1;
	sl_ipv4_dec_ttl(ip);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		/* memcpy, not sl_eth_rewrite: its word copies would read p's MACs misaligned on the stack */
		__builtin_memcpy(eth->h_dest, p.dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, p.smac, ETH_ALEN);
		return bpf_redirect(oif, 0);
	}
	/* the next hop (p.ipv4_dst: the gateway, or the destination on a connected route) has no resolved MAC yet */
	struct bpf_redir_neigh nh = { .nh_family = SL_AF_INET, .ipv4_nh = p.ipv4_dst };

	return bpf_redirect_neigh(oif, &nh, sizeof(nh), 0);
}

#endif
