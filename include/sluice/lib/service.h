/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The service stage: a pod's packet to a service frontend (sl_svc: a ClusterIP, an external
 * IP or a NodePort, with port and protocol) gets a backend (sl_svc_be) and its destination
 * translated to it, before the destination is looked up, so conntrack and policy see the
 * flow between the real pods: the client's egress policy judges the backend, the backend's
 * ingress policy the client. The translation is a pair in the NAT engine's table (lib/nat.h,
 * flag SL_NAT_F_SVC): the forward entry keyed by the flow as the client sends it, the
 * reverse one by the backend's reply. The flow's conntrack entry says it is under a service
 * translation (SL_CT_NAT_SERVICE), so a reply costs a reverse lookup only when it is one.
 *
 *   sl_service_translate  the forward direction (from_container)
 *   sl_service_reverse    a reply, where it is delivered to the client (lib/deliver.h,
 *                         from_container for a backend on the same node)
 *   sl_service_reject     no backend: the packet becomes ICMP port unreachable to the client
 *
 * A pod reaching itself through a service (hairpin) also gets the pod's gateway address as
 * source, or its own stack would drop a packet from its own address; its packets to the
 * gateway address are the replies (sl_service_hairpin_reply). docs/architecture.md, "Services".
 */
#ifndef SLUICE_LIB_SERVICE_H
#define SLUICE_LIB_SERVICE_H

#include "common.h"
#include "config.h"
#include "l4.h"
#include "conntrack.h"
#include "nat.h"

enum sl_svc_result {
	SL_SVC_PASS = 0,	/* not to a frontend: untouched */
	SL_SVC_TRANSLATED = 1,	/* now to a backend (packet pointers invalid) */
	SL_SVC_HAIRPIN = 2,	/* now to a backend that is the client itself, from the gateway address */
	SL_SVC_REJECT = 3,	/* the frontend has no backend */
};

/* The frontend `f` is sent to (TCP and UDP only), with its key in `k`; NULL when none. */
static __always_inline struct sl_svc_entry *sl_svc_lookup(const struct sl_flow *f, struct sl_svc_key *k)
{
	if (f->protocol != IPPROTO_TCP && f->protocol != IPPROTO_UDP)
		return NULL;
	k->addr = f->daddr;
	k->port = f->dport;
	k->protocol = f->protocol;
	k->pad = 0;
	return bpf_map_lookup_elem(&sl_svc, k);
}

/*
 * The backend for a new flow `f` of frontend `k`: under sessionAffinity the client's while
 * its affinity holds (refreshed), else one of the set at random (remembered for affinity).
 * Returns -1 when the set is empty.
 */
static __always_inline int sl_svc_pick(const struct sl_flow *f, const struct sl_svc_key *k, const struct sl_svc_entry *svc, __u64 now,
				       struct sl_svc_backend *out)
{
	struct sl_svc_aff_key ak = { .client = f->saddr, .addr = k->addr, .port = k->port, .protocol = k->protocol };
	struct sl_svc_be_key bk = { .rev = svc->rev };
	struct sl_svc_backend *be;
	struct sl_svc_aff *a;
	__u64 until = now + (__u64)svc->affinity * SL_SEC;

	if (!svc->count)
		return -1;
	if (svc->affinity) {
		a = bpf_map_lookup_elem(&sl_svc_aff, &ak);
		if (a && a->expires > now) {
			a->expires = until;
			out->addr = a->addr;
			out->port = a->port;
			return 0;
		}
	}
	bk.slot = bpf_get_prandom_u32() % svc->count;
	be = bpf_map_lookup_elem(&sl_svc_be, &bk);
	if (!be)
		return -1;	/* a set being replaced: the agent writes the backends before the count */
	out->addr = be->addr;
	out->port = be->port;
	if (svc->affinity) {
		struct sl_svc_aff v = { .expires = until, .addr = be->addr, .port = be->port };

		bpf_map_update_elem(&sl_svc_aff, &ak, &v, BPF_ANY);
	}
	return 0;
}

/*
 * Writes the pair of a new service flow: reverse (the reply, `rk`) first, refusing one a
 * live other flow holds (the same client tuple to the same backend through another
 * frontend), then forward. 0, or the drop reason.
 */
static __always_inline enum sl_reason sl_svc_pair_create(const struct sl_nat_key *fk, const struct sl_nat_entry *fwd,
							 const struct sl_nat_key *rk, const struct sl_nat_entry *rev, __u64 now)
{
	int r = sl_map_update(&sl_nat, rk, rev, BPF_NOEXIST);

	if (r == -SL_EEXIST) {
		struct sl_nat_entry *old = bpf_map_lookup_elem(&sl_nat, rk);

		if (old && old->expires > now && (old->addr != rev->addr || old->port != rev->port))
			return SL_REASON_DROP_SVC_CONFLICT;
		r = sl_map_update(&sl_nat, rk, rev, BPF_ANY);
	}
	if (r < 0)
		return SL_REASON_DROP_NAT_TABLE_FULL;
	if (sl_map_update(&sl_nat, fk, fwd, BPF_ANY) < 0) {
		bpf_map_delete_elem(&sl_nat, rk);
		return SL_REASON_DROP_NAT_TABLE_FULL;
	}
	return 0;
}

/*
 * The service stage for the packet of flow `f` (L4 header at `l4_off`) a local pod sent.
 * A known flow keeps its backend; a new one (or a SYN on a closed one's tuple) gets one.
 * Returns an enum sl_svc_result, or the negated drop reason. On SL_SVC_TRANSLATED and
 * SL_SVC_HAIRPIN, `f` is the packet as it now is.
 */
static __always_inline int sl_service_translate(struct __sk_buff *skb, struct sl_flow *f, __u32 l4_off)
{
	struct sl_svc_key k;
	struct sl_svc_entry *svc = sl_svc_lookup(f, &k);
	struct sl_nat_entry *fwd, *rev;
	struct sl_nat_key fk, rk;
	struct sl_svc_backend be;
	__be32 src = f->saddr;
	enum sl_reason reason;
	int hairpin;
	__u64 now;

	if (!svc)
		return SL_SVC_PASS;
	now = bpf_ktime_get_ns();
	sl_nat_key_set(&fk, f->saddr, f->daddr, f->sport, f->dport, f->protocol, SL_DIR_EGRESS);
	fwd = bpf_map_lookup_elem(&sl_nat, &fk);
	if (fwd && (fwd->flags & SL_NAT_F_SVC) && fwd->expires > now && !(sl_tcp_syn_only(f) && fwd->state == SL_CT_CLOSING)) {
		be.addr = fwd->addr;
		be.port = fwd->port;
		hairpin = (fwd->flags & SL_NAT_F_HAIRPIN) != 0;
		if (hairpin)
			src = sl_gateway_ip;
		sl_nat_key_set(&rk, be.addr, src, be.port, f->sport, f->protocol, SL_DIR_INGRESS);
		rev = bpf_map_lookup_elem(&sl_nat, &rk);
		if (rev && rev->addr == f->daddr && rev->port == f->dport) {
			sl_nat_pair_touch(fwd, rev, f, now, skb);
		} else {
			/* the reverse entry went (a collection raced with the flow): write it again */
			struct sl_nat_entry r = {
				.addr = f->daddr, .port = f->dport, .flags = SL_NAT_F_SVC | SL_NAT_F_SRC | (fwd->flags & SL_NAT_F_HAIRPIN),
				.state = fwd->state, .expires = fwd->expires,
			};

			sl_nat_touch(fwd, f, 0, now, skb);
			r.expires = fwd->expires;
			reason = sl_svc_pair_create(&fk, fwd, &rk, &r, now);
			if (reason)
				return -(int)reason;
		}
	} else {
		struct sl_nat_entry r = { .addr = f->daddr, .port = f->dport, .flags = SL_NAT_F_SVC | SL_NAT_F_SRC, .state = SL_CT_NEW };
		struct sl_nat_entry w = { .flags = SL_NAT_F_SVC, .state = SL_CT_NEW, .packets = 1, .bytes = skb->len };

		if (sl_svc_pick(f, &k, svc, now, &be) < 0)
			return SL_SVC_REJECT;
		hairpin = be.addr == f->saddr;
		if (hairpin) {
			src = sl_gateway_ip;
			r.flags |= SL_NAT_F_HAIRPIN;
			w.flags |= SL_NAT_F_HAIRPIN;
		}
		r.expires = w.expires = now + sl_nat_timeout(f->protocol, SL_CT_NEW);
		w.addr = be.addr;
		w.port = be.port;
		sl_nat_key_set(&rk, be.addr, src, be.port, f->sport, f->protocol, SL_DIR_INGRESS);
		reason = sl_svc_pair_create(&fk, &w, &rk, &r, now);
		if (reason)
			return -(int)reason;
	}
	if (sl_nat_rewrite(skb, l4_off, f->protocol, 0, f->daddr, be.addr, f->dport, be.port) < 0)
		return -(int)SL_REASON_DROP_MALFORMED;
	if (hairpin && sl_nat_rewrite(skb, l4_off, f->protocol, 1, f->saddr, src, f->sport, f->sport) < 0)
		return -(int)SL_REASON_DROP_MALFORMED;
	f->daddr = be.addr;
	f->dport = be.port;
	f->saddr = src;
	return hairpin ? SL_SVC_HAIRPIN : SL_SVC_TRANSLATED;
}

/*
 * A reply `f` (L4 header at `l4_off`) of a flow under a service translation: its source
 * becomes the frontend again (hairpin: its destination the client again). Returns 1 when
 * translated (`f` updated, packet pointers invalid), 0 when no translation names it, -1
 * when a helper failed.
 */
static __always_inline int sl_service_reverse(struct __sk_buff *skb, struct sl_flow *f, __u32 l4_off)
{
	struct sl_nat_entry *rev;
	struct sl_nat_key rk;
	__be32 addr, dst = f->daddr;
	__be16 port;

	sl_nat_key_set(&rk, f->saddr, f->daddr, f->sport, f->dport, f->protocol, SL_DIR_INGRESS);
	rev = bpf_map_lookup_elem(&sl_nat, &rk);
	if (!rev || !(rev->flags & SL_NAT_F_SVC))
		return 0;
	sl_nat_touch(rev, f, 1, bpf_ktime_get_ns(), skb);
	addr = rev->addr;
	port = rev->port;
	if (rev->flags & SL_NAT_F_HAIRPIN) {
		dst = f->saddr;
		if (sl_nat_rewrite(skb, l4_off, f->protocol, 0, f->daddr, dst, f->dport, f->dport) < 0)
			return -1;
	}
	if (sl_nat_rewrite(skb, l4_off, f->protocol, 1, f->saddr, addr, f->sport, port) < 0)
		return -1;
	f->saddr = addr;
	f->sport = port;
	f->daddr = dst;
	return 1;
}

/*
 * Turns the IPv4 packet at ETH_HLEN (a pod's, to frontend f->daddr that has no backend)
 * into ICMP destination unreachable, port unreachable, from the frontend to the pod, quoting
 * its header and first 8 bytes (RFC 792), as kube-proxy's REJECT answers: a TCP connect()
 * fails with ECONNREFUSED at once, a UDP socket sees the error. The caller sends it back
 * into the pod. Returns 0, or -1 (IPv4 options, a packet too short, a helper failed).
 */
static __always_inline int sl_service_reject(struct __sk_buff *skb)
{
	struct {
		struct iphdr ip;
		__u8 icmp[8];
		__u8 quote[28];
	} r = {};
	void *data_end = SL_DATA_END(skb);
	struct ethhdr *eth = SL_DATA(skb);
	struct iphdr *ip;
	__u8 mac[ETH_ALEN];
	__s64 sum;

	if (!SL_IN_PACKET(eth, ETH_HLEN + sizeof(r.quote), data_end))
		return -1;
	ip = (void *)(eth + 1);
	if (ip->ihl != 5)
		return -1;
	__builtin_memcpy(r.quote, ip, sizeof(r.quote));
	r.ip.version = 4;
	r.ip.ihl = 5;
	r.ip.tot_len = bpf_htons(sizeof(r));
	r.ip.ttl = 64;
	r.ip.protocol = IPPROTO_ICMP;
	r.ip.saddr = ip->daddr;
	r.ip.daddr = ip->saddr;
	r.ip.check = sl_ipv4_csum(&r.ip);
	r.icmp[0] = SL_ICMP_DEST_UNREACH;
	r.icmp[1] = 3;	/* port unreachable */
	sum = bpf_csum_diff(NULL, 0, (__be32 *)r.icmp, sizeof(r.icmp) + sizeof(r.quote), 0);
	if (sum < 0)
		return -1;
	*(__u16 *)(r.icmp + 2) = (__u16)~sl_csum_fold((__u32)sum);
	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
	if (bpf_skb_change_tail(skb, ETH_HLEN + sizeof(r), 0) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, ETH_HLEN, &r, sizeof(r), 0) < 0 ? -1 : 0;
}

/*
 * A pod's packet to its gateway address: the reply of a hairpin flow (the pod reached
 * itself through a service) when a translation names it, translated back (now to the pod
 * itself, from the frontend). Returns sl_service_reverse's result.
 */
static __always_inline int sl_service_hairpin_reply(struct __sk_buff *skb, struct sl_flow *f, __u32 l4_off)
{
	if (f->daddr != sl_gateway_ip || (f->protocol != IPPROTO_TCP && f->protocol != IPPROTO_UDP))
		return 0;
	return sl_service_reverse(skb, f, l4_off);
}

#endif
