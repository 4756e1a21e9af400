/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The NAT engine (map sl_nat), independent of what decides to translate (lib/masq.h for
 * masquerade; services next). A translated flow is a pair of entries in one plain HASH:
 *   forward  keyed by the flow as its first side sends it (dir egress): what to write;
 *   reverse  keyed by the reply as it arrives (dir ingress): what to write back.
 * The kernel never evicts them (no LRU); the reverse key is created first with BPF_NOEXIST,
 * which is what reserves a port, and removed again when the forward one cannot be written,
 * so a full table makes no half pair. Entries leave by the agent's collection of expired
 * pairs. docs/architecture.md, "Masquerade (SNAT)".
 *
 * The rewrites: an address and port (TCP/UDP with the pseudo-header through the csum
 * helpers, which keep CHECKSUM_PARTIAL and CHECKSUM_COMPLETE skbs right; ICMP echo: the
 * identifier) and ICMP errors (outer destination; the embedded packet's source, port, IPv4
 * checksum and TCP/UDP checksum; the ICMP checksum), by incremental updates (RFC 1624).
 */
#ifndef SLUICE_LIB_NAT_H
#define SLUICE_LIB_NAT_H

#include <linux/in.h>
#include "common.h"
#include "l4.h"
#include "conntrack.h"

/* Ports tried for a new mapping (a bounded loop: Linux 5.3+, no bpf_loop). */
#define SL_NAT_RETRIES 32

#define SL_EEXIST 17

/*
 * bpf_map_update_elem's result as an int. Linux 5.10 calls a hash map's update directly
 * (the verifier's fixup), so the helper's result is the map op's 32-bit int in a 64-bit
 * register, not sign-extended: -EEXIST reads as 4294967279 and `< 0` is never true. Found
 * by the kernel matrix (scripts/kernel-matrix -k 5.10); newer kernels sign-extend it.
 */
static __always_inline int sl_map_update(void *map, const void *key, const void *value, __u64 flags)
{
	return (int)bpf_map_update_elem(map, key, value, flags);
}

#define SL_ICMP_ECHO_REPLY 0
#define SL_ICMP_DEST_UNREACH 3
#define SL_ICMP_ECHO 8
#define SL_ICMP_TIME_EXCEEDED 11
#define SL_ICMP_PARAMETERPROB 12

static __always_inline void sl_nat_key_set(struct sl_nat_key *k, __be32 saddr, __be32 daddr, __be16 sport, __be16 dport,
					   __u8 protocol, __u8 dir)
{
	k->saddr = saddr;
	k->daddr = daddr;
	k->sport = sport;
	k->dport = dport;
	k->protocol = protocol;
	k->dir = dir;
	k->pad[0] = k->pad[1] = 0;
}

/* A TCP segment that opens a connection: SYN without ACK. */
static __always_inline int sl_tcp_syn_only(const struct sl_flow *f)
{
	return f->protocol == IPPROTO_TCP && (f->tcp_flags & (SL_TCP_SYN | SL_TCP_ACK)) == SL_TCP_SYN;
}

static __always_inline __u64 sl_nat_timeout(__u8 protocol, __u8 state)
{
	if (protocol != IPPROTO_TCP)
		return SL_CT_OTHER_TIMEOUT;
	if (state == SL_CT_CLOSING)
		return SL_CT_CLOSE_TIMEOUT;
	return state == SL_CT_ESTABLISHED ? SL_CT_TCP_TIMEOUT : SL_CT_SYN_TIMEOUT;
}

/*
 * Counts a packet of flow `f` on entry `e`, moves its state on (`reply`: the reverse side
 * spoke, the flow is established; FIN/RST: closing) and its expiry with it.
 */
static __always_inline void sl_nat_touch(struct sl_nat_entry *e, const struct sl_flow *f, int reply, __u64 now,
					 const struct __sk_buff *skb)
{
	if (reply && e->state == SL_CT_NEW)
		e->state = SL_CT_ESTABLISHED;
	if (f->tcp_flags & (SL_TCP_FIN | SL_TCP_RST))
		e->state = SL_CT_CLOSING;
	e->expires = now + sl_nat_timeout(f->protocol, e->state);
	__sync_fetch_and_add(&e->packets, 1);
	__sync_fetch_and_add(&e->bytes, skb->len);
}

/*
 * Counts a packet of flow `f` on the forward entry of a pair and keeps the two entries in
 * one state and expiry (the reverse side having spoken establishes the flow).
 */
static __always_inline void sl_nat_pair_touch(struct sl_nat_entry *fwd, struct sl_nat_entry *rev, const struct sl_flow *f, __u64 now,
					      const struct __sk_buff *skb)
{
	sl_nat_touch(fwd, f, rev->state != SL_CT_NEW, now, skb);
	fwd->state = rev->state > fwd->state ? rev->state : fwd->state;
	rev->state = fwd->state;
	rev->expires = fwd->expires;
}

/* The reverse key of a flow `f` whose source is translated to addr:port (ICMP echo: the identifier in both ports). */
static __always_inline void sl_nat_reverse_key(struct sl_nat_key *rk, const struct sl_flow *f, __be32 addr, __be16 port)
{
	sl_nat_key_set(rk, f->daddr, addr, f->icmp_echo ? port : f->dport, port, f->protocol, SL_DIR_INGRESS);
}

/*
 * The source translation of flow `f` (forward key `fk`) when it has one that holds: the
 * forward entry and a live reverse entry naming f's source. A reverse entry that is gone
 * (a collection raced with the flow) is written again when its port is still free.
 * Returns the forward entry, or NULL (none: the caller allocates a new one).
 */
static __always_inline struct sl_nat_entry *sl_nat_snat_find(const struct sl_flow *f, const struct sl_nat_key *fk, __u64 now,
							     const struct __sk_buff *skb)
{
	struct sl_nat_entry *fwd = bpf_map_lookup_elem(&sl_nat, fk), *rev;
	struct sl_nat_key rk;

	if (!fwd)
		return NULL;
	sl_nat_reverse_key(&rk, f, fwd->addr, fwd->port);
	rev = bpf_map_lookup_elem(&sl_nat, &rk);
	if (!rev) {
		struct sl_nat_entry r = {
			.addr = f->saddr, .port = f->sport, .flags = fwd->flags & SL_NAT_F_MASQ, .state = fwd->state,
			.expires = now + sl_nat_timeout(f->protocol, fwd->state),
		};

		if (sl_map_update(&sl_nat, &rk, &r, BPF_NOEXIST) < 0)
			return NULL;
		rev = bpf_map_lookup_elem(&sl_nat, &rk);
		if (!rev)
			return NULL;
	}
	if (rev->expires <= now || rev->addr != f->saddr || rev->port != f->sport)
		return NULL;
	if (sl_tcp_syn_only(f) && fwd->state == SL_CT_CLOSING) {
		/* the pod opens a new connection on a closed one's tuple (as conntrack reopens it) */
		fwd->state = rev->state = SL_CT_NEW;
		rev->flags &= ~SL_NAT_F_RESET;
	}
	sl_nat_pair_touch(fwd, rev, f, now, skb);
	if (f->protocol == IPPROTO_TCP && (f->tcp_flags & SL_TCP_RST))
		rev->flags |= SL_NAT_F_RESET;
	return fwd;
}

/*
 * Claims reverse key `rk` for flow `f` (`rev` its value): 0 when it is f's now (written, or
 * already f's: a forward entry collected before its reverse one), -SL_EEXIST when another
 * live flow holds it, another negative value when the table is full. A TCP SYN may take a
 * live entry whose flow its pod reset (SL_NAT_F_RESET): after a RST neither side keeps the
 * connection (no TIME_WAIT), so waiting out the 10 s would only make a client that closes
 * with RST run out of ports (4536 per remote by default: about 450 connections a second).
 * Only the pod's own RST marks it; one from outside, which nothing here checks against
 * the window, does not.
 */
static __always_inline int sl_nat_claim(const struct sl_flow *f, const struct sl_nat_key *rk, const struct sl_nat_entry *rev, __u64 now)
{
	struct sl_nat_entry *old;
	int r = sl_map_update(&sl_nat, rk, rev, BPF_NOEXIST);

	if (r != -SL_EEXIST)
		return r;
	old = bpf_map_lookup_elem(&sl_nat, rk);
	if (!old)
		return -SL_EEXIST;
	if (old->expires > now) {
		if (old->addr == f->saddr && old->port == f->sport) {
			old->expires = rev->expires;
			return 0;
		}
		if (!((old->flags & SL_NAT_F_RESET) && sl_tcp_syn_only(f)))
			return -SL_EEXIST;
	}
	/* dead (or reset), not yet collected: take it over (two CPUs doing so: one NOEXIST wins) */
	bpf_map_delete_elem(&sl_nat, rk);
	return sl_map_update(&sl_nat, rk, rev, BPF_NOEXIST);
}

/*
 * Creates the pair that translates flow `f`'s source to `addr` and a port of
 * [port_min, port_max] (host byte order): f's own source port when it is in the range and
 * free for f's destination, else ports in order from a random start, at most
 * SL_NAT_RETRIES. The forward entry counts the packet (`len` bytes) that made it. Sets *port
 * (network byte order). Returns 0, or the drop reason:
 * SL_REASON_DROP_NAT_NO_PORT, SL_REASON_DROP_NAT_TABLE_FULL.
 */
static __always_inline enum sl_reason sl_nat_snat_create(const struct sl_flow *f, const struct sl_nat_key *fk, __be32 addr,
							 __u16 port_min, __u16 port_max, __u64 now, __u32 len, __be16 *port)
{
	struct sl_nat_entry rev = {
		.addr = f->saddr, .port = f->sport, .flags = SL_NAT_F_MASQ, .state = SL_CT_NEW,
		.expires = now + sl_nat_timeout(f->protocol, SL_CT_NEW),
	};
	struct sl_nat_entry fwd = {
		.addr = addr, .flags = SL_NAT_F_SRC | SL_NAT_F_MASQ, .state = SL_CT_NEW, .expires = rev.expires,
	};
	__u32 size = (__u32)port_max - port_min + 1;
	__u16 own = bpf_ntohs(f->sport);
	__u32 start = bpf_get_prandom_u32();
	struct sl_nat_key rk;
	int first = own >= port_min && own <= port_max;
	__u16 p = 0;
	int r = -SL_EEXIST;

	if (port_max < port_min)
		return SL_REASON_DROP_NAT_NO_PORT;
	for (__u32 i = 0; i < SL_NAT_RETRIES; i++) {
		if (i >= size + first)
			break;
		p = (first && i == 0) ? own : (__u16)(port_min + (start + i) % size);
		sl_nat_reverse_key(&rk, f, addr, bpf_htons(p));
		r = sl_nat_claim(f, &rk, &rev, now);
		if (r != -SL_EEXIST)
			break;
	}
	if (r == -SL_EEXIST)
		return SL_REASON_DROP_NAT_NO_PORT;
	if (r < 0)
		return SL_REASON_DROP_NAT_TABLE_FULL;
	fwd.port = bpf_htons(p);
	fwd.packets = 1;
	fwd.bytes = len;
	if (sl_map_update(&sl_nat, fk, &fwd, BPF_ANY) < 0) {
		bpf_map_delete_elem(&sl_nat, &rk);
		return SL_REASON_DROP_NAT_TABLE_FULL;
	}
	*port = fwd.port;
	return 0;
}

/*
 * Writes addr:port into the source (`src`) or destination of the IPv4 packet at ETH_HLEN
 * whose L4 header is at `l4_off`, fixing the IPv4 and L4 checksums (ICMP echo: the
 * identifier, whichever side). Returns < 0 when a helper failed. Invalidates packet pointers.
 */
static __always_inline int sl_nat_rewrite(struct __sk_buff *skb, __u32 l4_off, __u8 protocol, int src,
					  __be32 old_addr, __be32 new_addr, __be16 old_port, __be16 new_port)
{
	__u32 addr_off = ETH_HLEN + (src ? __builtin_offsetof(struct iphdr, saddr) : __builtin_offsetof(struct iphdr, daddr));
	__u32 csum_off, port_off;
	__u64 pseudo = BPF_F_PSEUDO_HDR, mangled = 0;

	switch (protocol) {
	case IPPROTO_TCP:
		csum_off = l4_off + 16;
		port_off = l4_off + (src ? 0 : 2);
		break;
	case IPPROTO_UDP:
		csum_off = l4_off + 6;
		port_off = l4_off + (src ? 0 : 2);
		mangled = BPF_F_MARK_MANGLED_0;
		break;
	case IPPROTO_ICMP:
		csum_off = l4_off + 2;
		port_off = l4_off + 4;
		pseudo = 0;
		break;
	default:
		return -1;
	}
	if (old_addr != new_addr) {
		if (pseudo && bpf_l4_csum_replace(skb, csum_off, old_addr, new_addr, pseudo | mangled | sizeof(new_addr)) < 0)
			return -1;
		if (bpf_l3_csum_replace(skb, ETH_HLEN + __builtin_offsetof(struct iphdr, check), old_addr, new_addr, sizeof(new_addr)) < 0)
			return -1;
		if (bpf_skb_store_bytes(skb, addr_off, &new_addr, sizeof(new_addr), 0) < 0)
			return -1;
	}
	if (old_port != new_port) {
		if (bpf_l4_csum_replace(skb, csum_off, old_port, new_port, mangled | sizeof(new_port)) < 0)
			return -1;
		if (bpf_skb_store_bytes(skb, port_off, &new_port, sizeof(new_port), 0) < 0)
			return -1;
	}
	return 0;
}

/* ---- incremental checksums (RFC 1624), on 16-bit words as they lie in the packet ------ */

static __always_inline __u16 sl_csum_fold(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* *check after the 16-bit word `from` of the data it covers became `to`. */
static __always_inline void sl_csum_update16(__u16 *check, __u16 from, __u16 to)
{
	__u32 s = (__u16)~*check;

	s += (__u16)~from;
	s += to;
	*check = (__u16)~sl_csum_fold(s);
}

static __always_inline void sl_csum_update32(__u16 *check, __u32 from, __u32 to)
{
	sl_csum_update16(check, (__u16)(from >> 16), (__u16)(to >> 16));
	sl_csum_update16(check, (__u16)from, (__u16)to);
}

/* An ICMP error (destination unreachable, time exceeded, parameter problem) and the packet it quotes. */
struct sl_icmp_error {
	__u8 *icmp;		/* the ICMP header */
	struct iphdr *inner;	/* the quoted IPv4 header */
	__u8 *inner_l4;		/* its first 8 bytes at least */
	struct sl_flow flow;	/* the quoted packet's flow (ICMP echo: the identifier in both ports) */
};

static __always_inline int sl_icmp_is_error(__u8 type)
{
	return type == SL_ICMP_DEST_UNREACH || type == SL_ICMP_TIME_EXCEEDED || type == SL_ICMP_PARAMETERPROB;
}

/* Fills `e` when the ICMP message of `ip` is an error quoting TCP, UDP or an ICMP echo; -1 otherwise. */
static __always_inline int sl_icmp_error_parse(struct iphdr *ip, void *data_end, struct sl_icmp_error *e)
{
	__u8 *icmp = (void *)ip + ip->ihl * 4;
	struct iphdr *in;
	__u8 *l4;

	if (ip->protocol != IPPROTO_ICMP || (ip->frag_off & bpf_htons(SL_IP_MF | SL_IP_OFFSET)))
		return -1;
	if (!SL_IN_PACKET(icmp, 8 + sizeof(struct iphdr), data_end) || !sl_icmp_is_error(icmp[0]))
		return -1;
	in = (void *)(icmp + 8);
	if (in->version != 4 || in->ihl < 5 || (in->frag_off & bpf_htons(SL_IP_OFFSET)))
		return -1;
	l4 = (void *)in + in->ihl * 4;
	if (!SL_IN_PACKET(l4, 8, data_end))
		return -1;
	e->icmp = icmp;
	e->inner = in;
	e->inner_l4 = l4;
	e->flow.saddr = in->saddr;
	e->flow.daddr = in->daddr;
	e->flow.protocol = in->protocol;
	e->flow.tcp_flags = 0;
	e->flow.icmp_echo = 0;
	switch (in->protocol) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		e->flow.sport = *(__be16 *)l4;
		e->flow.dport = *(__be16 *)(l4 + 2);
		return 0;
	case IPPROTO_ICMP:
		if (l4[0] != SL_ICMP_ECHO && l4[0] != SL_ICMP_ECHO_REPLY)
			return -1;
		e->flow.sport = *(__be16 *)(l4 + 4);
		e->flow.dport = e->flow.sport;
		e->flow.icmp_echo = 1;
		return 0;
	default:
		return -1;
	}
}

/*
 * Translates an ICMP error about a translated flow, either way:
 *   inbound  (an error to the translated address about a packet the flow sent): the outer
 *            destination and the quoted source addr:port become the reverse entry's;
 *   outbound (an error a pod sends about a reply it got translated back): the outer source
 *            and the quoted destination addr:port become the forward entry's.
 * Every checksum follows: the outer IPv4 header's, the quoted IPv4 header's, the quoted
 * TCP/UDP checksum when it is in the packet (or the quoted echo's ICMP checksum), and the
 * error's ICMP checksum over all of it. Direct writes: each change is compensated inside
 * the packet, so a CHECKSUM_COMPLETE sum stays right.
 */
static __always_inline void sl_nat_icmp_error_rewrite(struct iphdr *ip, struct sl_icmp_error *e, void *data_end, __be32 addr, __be16 port,
						      int inbound)
{
	__u16 *icmp_check = (__u16 *)(e->icmp + 2);
	struct iphdr *in = e->inner;
	__u8 *l4 = e->inner_l4;
	__be32 *outer_at = inbound ? &ip->daddr : &ip->saddr;
	__be32 *quoted_at = inbound ? &in->saddr : &in->daddr;
	__be32 old_addr = *quoted_at;
	__u16 old;
	__u16 *l4_check = NULL;
	__u16 *port_at;

	sl_csum_update32(&ip->check, *outer_at, addr);
	*outer_at = addr;

	old = in->check;
	sl_csum_update32(&in->check, old_addr, addr);
	sl_csum_update16(icmp_check, old, in->check);
	sl_csum_update32(icmp_check, old_addr, addr);
	*quoted_at = addr;

	switch (in->protocol) {
	case IPPROTO_TCP:
		port_at = (__u16 *)(l4 + (inbound ? 0 : 2));
		if (SL_IN_PACKET(l4, 18, data_end))
			l4_check = (__u16 *)(l4 + 16);
		break;
	case IPPROTO_UDP:
		port_at = (__u16 *)(l4 + (inbound ? 0 : 2));
		if (*(__u16 *)(l4 + 6))
			l4_check = (__u16 *)(l4 + 6);
		break;
	default:	/* an echo: its identifier, its own checksum (no pseudo-header) */
		port_at = (__u16 *)(l4 + 4);
		l4_check = (__u16 *)(l4 + 2);
		break;
	}
	if (l4_check) {
		old = *l4_check;
		if (in->protocol != IPPROTO_ICMP)
			sl_csum_update32(l4_check, old_addr, addr);
		sl_csum_update16(l4_check, *port_at, port);
		if (in->protocol == IPPROTO_UDP && !*l4_check)
			*l4_check = 0xffff;
		sl_csum_update16(icmp_check, old, *l4_check);
	}
	sl_csum_update16(icmp_check, *port_at, port);
	*port_at = port;
}

#endif
