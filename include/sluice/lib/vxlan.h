/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * VXLAN (RFC 7348) done in BPF. from_container wraps a pod's frame and redirects it out of
 * the uplink; from_netdev unwraps what arrives for a local pod. Overlay packets so skip the
 * VXLAN device's transmit (its per-packet route lookup and metadata dst) and, on receive,
 * the UDP socket lookup, the device's GRO cell and a second pass through the stack.
 *
 *   outer Ethernet | outer IPv4 (20) | UDP (8) | VXLAN (8) | inner Ethernet (14) | inner IPv4 ...
 *                   '------------ SL_VXLAN_ENCAP_LEN = 50 ------------------------'
 *
 * The VNI carries the sending pod's security identity, as with the kernel's device, and
 * both ends interoperate with it: the node's collect_md VXLAN device stays, takes what
 * BPF does not (see sl_vxlan_encap), and its UDP socket is what a NIC's GRO needs to merge
 * VXLAN packets before tc sees them.
 */
#ifndef SLUICE_LIB_VXLAN_H
#define SLUICE_LIB_VXLAN_H

#include <linux/udp.h>
#include "common.h"
#include "config.h"
#include "ipv4.h"

struct sl_vxlanhdr {
	__be32 flags;	/* SL_VXLAN_F_VNI: the VNI is valid; nothing else is set */
	__be32 vni;	/* VNI << 8; the low byte is reserved */
};

#define SL_VXLAN_F_VNI bpf_htonl(0x08000000)

/* Everything BPF puts between the outer Ethernet header and the inner IPv4 header. */
struct sl_vxlan_encap {
	struct iphdr ip;
	struct udphdr udp;
	struct sl_vxlanhdr vx;
	struct ethhdr inner;
};

#define SL_VXLAN_ENCAP_LEN (sizeof(struct iphdr) + sizeof(struct udphdr) + sizeof(struct sl_vxlanhdr) + sizeof(struct ethhdr))
_Static_assert(__builtin_offsetof(struct sl_vxlan_encap, inner) + sizeof(struct ethhdr) == SL_VXLAN_ENCAP_LEN,
	       "struct sl_vxlan_encap has padding inside the headers");

#define SL_VXLAN_TTL 64
/* The outer UDP source port: a hash of the inner flow in the kernel's default ephemeral range,
 * as the VXLAN device picks it (udp_flow_src_port), so ECMP on the underlay spreads flows. */
#define SL_VXLAN_SPORT_MIN 32768
#define SL_VXLAN_SPORT_MAX 61000
#define SL_ECN_MASK 3
#define SL_ECN_ECT_0 2

enum sl_vxlan_encap_result {
	SL_VXLAN_ENCAPPED = 0,		/* the frame is now VXLAN to the remote node */
	SL_VXLAN_ENCAP_DECLINED = -1,	/* untouched: give it to the kernel's VXLAN device */
	SL_VXLAN_ENCAP_BROKEN = -2,	/* grown but not written: drop it */
};

/*
 * Wraps the frame in VXLAN from `local` to `remote` (underlay addresses) with VNI `vni`.
 * The frame's Ethernet header becomes the inner one and also stays in front as the outer
 * one, for bpf_redirect_neigh to replace. `tos` is the inner IPv4 TOS: its ECN bits are
 * copied out (RFC 6040; CE goes out as ECT(0)), as the kernel does.
 * BPF declines, leaving the frame as it was, when bpf_skb_adjust_room refuses: a frame a pod
 * already encapsulated with offloads (-EALREADY), or, before Linux 5.12, a non-GSO frame
 * that would outgrow the pod veth's MTU (the kernel's device is not bound by that).
 */
static __always_inline enum sl_vxlan_encap_result sl_vxlan_encap(struct __sk_buff *skb, __be32 local, __be32 remote, __u32 vni,
								 __u8 tos)
{
	__u32 len = skb->len - sizeof(struct ethhdr) + SL_VXLAN_ENCAP_LEN;
	__u32 hash = bpf_get_hash_recalc(skb);
	__u8 ecn = tos & SL_ECN_MASK;
	struct sl_vxlan_encap h = {
		.ip = {
			.version = 4,
			.ihl = sizeof(struct iphdr) / 4,
			.tos = ecn == SL_ECN_MASK ? SL_ECN_ECT_0 : ecn,
			.tot_len = bpf_htons(len),
			.frag_off = bpf_htons(SL_IP_DF),
			.ttl = SL_VXLAN_TTL,
			.protocol = IPPROTO_UDP,
			.saddr = local,
			.daddr = remote,
		},
		.udp = {
			.source = bpf_htons(SL_VXLAN_SPORT_MIN + (((__u64)hash * (SL_VXLAN_SPORT_MAX - SL_VXLAN_SPORT_MIN)) >> 32)),
			.dest = bpf_htons(sl_vxlan_port),
			.len = bpf_htons(len - sizeof(struct iphdr)),
		},
		.vx = { .flags = SL_VXLAN_F_VNI, .vni = bpf_htonl(vni << 8) },
	};

	/* a GSO frame may be up to 64 KiB: one that the outer header cannot count is the device's */
	if (len > 0xffff)
		return SL_VXLAN_ENCAP_DECLINED;
	if (bpf_skb_load_bytes(skb, 0, &h.inner, sizeof(h.inner)) < 0)
		return SL_VXLAN_ENCAP_DECLINED;
	h.ip.check = sl_ipv4_csum(&h.ip);
	/* FIXED_GSO: segments keep the inner MSS (the pod's MTU already leaves room for the 50 bytes) */
	if (bpf_skb_adjust_room(skb, SL_VXLAN_ENCAP_LEN, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP |
				BPF_F_ADJ_ROOM_ENCAP_L2(sizeof(struct ethhdr))) < 0)
		return SL_VXLAN_ENCAP_DECLINED;
	if (bpf_skb_store_bytes(skb, sizeof(struct ethhdr), &h, SL_VXLAN_ENCAP_LEN, 0) < 0)
		return SL_VXLAN_ENCAP_BROKEN;
	return SL_VXLAN_ENCAPPED;
}

/*
 * The VNI of a VXLAN packet to this node's port in the IPv4 header `ip` (ihl 5, not a
 * fragment), with `*inner` set to the inner Ethernet header; -1 when it is not one, or
 * carries flags or reserved bits this datapath does not know (the kernel's device judges
 * those).
 */
static __always_inline __s64 sl_vxlan_parse(struct iphdr *ip, void *data_end, struct ethhdr **inner)
{
	struct udphdr *udp = (void *)(ip + 1);
	struct sl_vxlanhdr *vx = (void *)(udp + 1);
	struct ethhdr *eth = (void *)(vx + 1);

	if (!sl_vxlan_port || ip->protocol != IPPROTO_UDP || ip->ihl != sizeof(*ip) / 4 ||
	    (ip->frag_off & bpf_htons(SL_IP_MF | SL_IP_OFFSET)))
		return -1;
	if (!SL_IN_PACKET(eth, sizeof(*eth), data_end) || udp->dest != bpf_htons(sl_vxlan_port))
		return -1;
	if (vx->flags != SL_VXLAN_F_VNI || (vx->vni & bpf_htonl(0xff)))
		return -1;
	*inner = eth;
	return bpf_ntohl(vx->vni) >> 8;
}

/* Strips the outer IPv4, UDP, VXLAN and inner Ethernet headers: the outer Ethernet header stays. */
static __always_inline int sl_vxlan_decap(struct __sk_buff *skb)
{
	/* FIXED_GSO: a GRO'd or never-segmented frame keeps its inner MSS */
	return bpf_skb_adjust_room(skb, -(__s32)SL_VXLAN_ENCAP_LEN, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_FIXED_GSO);
}

#endif
