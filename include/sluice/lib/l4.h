/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The flow of an IPv4 packet: addresses, protocol, ports (ICMP echo: its identifier). */
#ifndef SLUICE_LIB_L4_H
#define SLUICE_LIB_L4_H

#include <linux/in.h>
#include "common.h"
#include "ipv4.h"

#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif

#define SL_TCP_FIN 0x01
#define SL_TCP_SYN 0x02
#define SL_TCP_RST 0x04
#define SL_TCP_ACK 0x10

struct sl_flow {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 protocol;
	__u8 tcp_flags;
	__u8 icmp_echo;		/* 1: an ICMP echo request or reply (its id is in both ports) */
};

/*
 * Fills `f` from the IPv4 header `ip`. Returns -1 when the L4 header the ports live in is
 * cut short. Non-first fragments and protocols without ports get ports 0.
 */
static __always_inline int sl_flow_parse(struct iphdr *ip, void *data_end, struct sl_flow *f)
{
	void *l4 = (void *)ip + ip->ihl * 4;

	f->saddr = ip->saddr;
	f->daddr = ip->daddr;
	f->sport = 0;
	f->dport = 0;
	f->protocol = ip->protocol;
	f->tcp_flags = 0;
	f->icmp_echo = 0;
	if (ip->frag_off & bpf_htons(SL_IP_OFFSET))
		return 0;
	switch (ip->protocol) {
	case IPPROTO_TCP:
		if (!SL_IN_PACKET(l4, 14, data_end))
			return -1;
		f->sport = *(__be16 *)l4;
		f->dport = *(__be16 *)(l4 + 2);
		f->tcp_flags = *(__u8 *)(l4 + 13);
		return 0;
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		if (!SL_IN_PACKET(l4, 4, data_end))
			return -1;
		f->sport = *(__be16 *)l4;
		f->dport = *(__be16 *)(l4 + 2);
		return 0;
	case IPPROTO_ICMP:
		if (!SL_IN_PACKET(l4, 8, data_end))
			return -1;
		if (*(__u8 *)l4 == 8 || *(__u8 *)l4 == 0) {
			f->sport = *(__be16 *)(l4 + 4);
			f->dport = f->sport;
			f->icmp_echo = 1;
		}
		return 0;
	default:
		return 0;
	}
}

#endif
