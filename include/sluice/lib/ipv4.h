/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* IPv4 header parsing and the one-hop rewrite a router does. */
#ifndef SLUICE_LIB_IPV4_H
#define SLUICE_LIB_IPV4_H

#include "common.h"

/* frag_off (host byte order): don't fragment, more fragments, the fragment offset */
#define SL_IP_DF 0x4000
#define SL_IP_MF 0x2000
#define SL_IP_OFFSET 0x1fff

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

/*
 * The Ethernet (*eth) and IPv4 headers again after a helper changed the packet (which
 * invalidates every packet pointer); NULL when they are cut short or malformed.
 */
static __always_inline struct iphdr *sl_ipv4_reload(struct __sk_buff *skb, struct ethhdr **eth)
{
	void *data_end = SL_DATA_END(skb);

	*eth = SL_DATA(skb);
	if (!SL_IN_PACKET(*eth, sizeof(**eth), data_end))
		return NULL;
	return sl_ipv4_hdr(*eth, data_end);
}

/* The header checksum of a 20-byte IPv4 header whose check field is 0. */
static __always_inline __u16 sl_ipv4_csum(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < (int)(sizeof(*ip) / 2); i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
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
