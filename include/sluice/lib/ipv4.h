/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* IPv4 header parsing and the one-hop rewrite a router does. */
#ifndef SLUICE_LIB_IPV4_H
#define SLUICE_LIB_IPV4_H

#include "common.h"

/* The IPv4 header after `eth`, or NULL when it is truncated or malformed. */
static __always_inline struct iphdr *sl_ipv4_hdr(struct ethhdr *eth, void *data_end)
{
	struct iphdr *ip = (void *)(eth + 1);

	if (!SL_IN_PACKET(ip, sizeof(*ip), data_end))
		return NULL;
	if (ip->version != 4 || ip->ihl < 5)
		return NULL;
	if (!SL_IN_PACKET(ip, ip->ihl * 4, data_end))
		return NULL;
	return ip;
}

/* Decrements the TTL and patches the checksum incrementally (RFC 1624), as ip_decrease_ttl does. */
static __always_inline void sl_ipv4_dec_ttl(struct iphdr *ip)
{
	__u32 check = ip->check;

	check += bpf_htons(0x0100);
	ip->check = (__u16)(check + (check >= 0xFFFF));
	ip->ttl--;
}

#endif
