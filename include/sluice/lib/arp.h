/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* ARP over Ethernet for IPv4: answering a pod's request for its gateway. */
#ifndef SLUICE_LIB_ARP_H
#define SLUICE_LIB_ARP_H

#include "common.h"
#include "eth.h"

/*
 * ARP's numbers (RFC 826; IANA's ARP parameters), defined here: the kernel's linux/if_arp.h
 * includes linux/netdevice.h, which includes the C library's sys/socket.h.
 */
#define SL_ARPHRD_ETHER 1
#define SL_ARPOP_REQUEST 1
#define SL_ARPOP_REPLY 2

/* The Ethernet/IPv4 ARP packet after the Ethernet header (RFC 826). */
struct sl_arp {
	__be16 hrd;
	__be16 pro;
	__u8 hln;
	__u8 pln;
	__be16 op;
	__u8 sha[ETH_ALEN];
	__be32 sip;
	__u8 tha[ETH_ALEN];
	__be32 tip;
} __attribute__((packed));

/* The ARP payload if the frame is an Ethernet/IPv4 ARP request, else NULL. */
static __always_inline struct sl_arp *sl_arp_request(struct ethhdr *eth, void *data_end)
{
	struct sl_arp *arp = (void *)(eth + 1);

	if (!SL_IN_PACKET(arp, sizeof(*arp), data_end))
		return NULL;
	if (arp->hrd != bpf_htons(SL_ARPHRD_ETHER) || arp->pro != bpf_htons(ETH_P_IP) ||
	    arp->hln != ETH_ALEN || arp->pln != 4 || arp->op != bpf_htons(SL_ARPOP_REQUEST))
		return NULL;
	return arp;
}

/* Turns the request in place into the reply "`ip` is at `mac`". */
static __always_inline void sl_arp_reply(struct ethhdr *eth, struct sl_arp *arp, const __u8 *mac, __be32 ip)
{
	__be32 requester = arp->sip;

	sl_eth_rewrite(eth, arp->sha, mac);
	arp->op = bpf_htons(SL_ARPOP_REPLY);
	sl_mac_copy(arp->tha, arp->sha);
	arp->tip = requester;
	sl_mac_copy(arp->sha, mac);
	arp->sip = ip;
}

#endif
