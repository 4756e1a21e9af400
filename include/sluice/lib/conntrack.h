/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The conntrack stage (map sl_ct_v2, LRU). A flow is keyed by its first packet's tuple; a
 * packet matching it is the flow going on, one matching it reversed is a reply. The stage
 * only finds and records: what a found entry is worth is policy's to say (lib/flow.h).
 * Entries expire (TCP: 60 s until the reply, 6 h established, 10 s after FIN/RST; others
 * 60 s) and the agent collects dead ones.
 */
#ifndef SLUICE_LIB_CONNTRACK_H
#define SLUICE_LIB_CONNTRACK_H

#include "common.h"
#include "l4.h"

#define SL_SEC 1000000000ULL
#define SL_CT_SYN_TIMEOUT (60 * SL_SEC)
#define SL_CT_TCP_TIMEOUT (6 * 3600 * SL_SEC)
#define SL_CT_CLOSE_TIMEOUT (10 * SL_SEC)
#define SL_CT_OTHER_TIMEOUT (60 * SL_SEC)

enum sl_ct_result {
	SL_CT_MISS = 0,
	SL_CT_FLOW = 1,		/* the flow's own direction */
	SL_CT_REPLY = 2,	/* the reverse direction */
};

/* What the stage found for a packet: the live entry and which way the packet goes. */
struct sl_ct_found {
	struct sl_ct_entry *entry;
	enum sl_ct_result result;
	__u64 now;		/* the clock the lookup read, reused by sl_ct_touch */
};

static __always_inline void sl_ct_key_of(const struct sl_flow *f, int reverse, struct sl_ct_key *k)
{
	k->saddr = reverse ? f->daddr : f->saddr;
	k->daddr = reverse ? f->saddr : f->daddr;
	k->sport = reverse ? f->dport : f->sport;
	k->dport = reverse ? f->sport : f->dport;
	k->protocol = f->protocol;
	k->pad[0] = k->pad[1] = k->pad[2] = 0;
}

static __always_inline __u64 sl_ct_timeout(const struct sl_flow *f, __u8 state)
{
	if (f->protocol != IPPROTO_TCP)
		return SL_CT_OTHER_TIMEOUT;
	if (state == SL_CT_CLOSING)
		return SL_CT_CLOSE_TIMEOUT;
	return state == SL_CT_ESTABLISHED ? SL_CT_TCP_TIMEOUT : SL_CT_SYN_TIMEOUT;
}

/* Finds the live entry of the packet's flow, either way; nothing is changed. */
static __always_inline struct sl_ct_found sl_ct_lookup(const struct sl_flow *f)
{
	struct sl_ct_found found = { .entry = NULL, .result = SL_CT_MISS, .now = bpf_ktime_get_ns() };
	struct sl_ct_entry *e;
	struct sl_ct_key k;

	sl_ct_key_of(f, 0, &k);
	e = bpf_map_lookup_elem(&sl_ct_v2, &k);
	if (e && e->expires > found.now) {
		found.entry = e;
		found.result = SL_CT_FLOW;
		return found;
	}
	sl_ct_key_of(f, 1, &k);
	e = bpf_map_lookup_elem(&sl_ct_v2, &k);
	if (e && e->expires > found.now) {
		found.entry = e;
		found.result = SL_CT_REPLY;
	}
	return found;
}

/*
 * 1 when the entry was made for the pods the packet is between now: the flow's source and
 * destination endpoints, swapped for a reply.
 */
static __always_inline int sl_ct_same_pods(const struct sl_ct_found *c, __u32 src_ep, __u32 dst_ep)
{
	const struct sl_ct_entry *e = c->entry;

	if (c->result == SL_CT_FLOW)
		return e->src_ep == src_ep && e->dst_ep == dst_ep;
	return e->src_ep == dst_ep && e->dst_ep == src_ep;
}

/* Counts the packet on its entry and moves the state on (a reply establishes). */
static __always_inline void sl_ct_touch(const struct sl_ct_found *c, const struct sl_flow *f, const struct __sk_buff *skb)
{
	struct sl_ct_entry *e = c->entry;

	if (c->result == SL_CT_REPLY && e->state == SL_CT_NEW)
		e->state = SL_CT_ESTABLISHED;
	if (f->tcp_flags & (SL_TCP_FIN | SL_TCP_RST))
		e->state = SL_CT_CLOSING;
	e->expires = c->now + sl_ct_timeout(f, e->state);
	__sync_fetch_and_add(&e->packets, 1);
	__sync_fetch_and_add(&e->bytes, skb->len);
}

/* Removes the entry found (a stale one: the flow starts over). */
static __always_inline void sl_ct_remove(const struct sl_ct_found *c, const struct sl_flow *f)
{
	struct sl_ct_key k;

	sl_ct_key_of(f, c->result == SL_CT_REPLY, &k);
	bpf_map_delete_elem(&sl_ct_v2, &k);
}

/*
 * Records a new flow that policy allowed, between local endpoints `src_ep` and `dst_ep`
 * (0: not a pod of this node), under translation `nat`. A TCP packet other than a SYN (a
 * flow older than this table, e.g. after a restart) starts out established.
 */
static __always_inline void sl_ct_create(const struct sl_flow *f, const struct __sk_buff *skb, __u32 policy,
					 __u32 src_ep, __u32 dst_ep, __u32 nat)
{
	struct sl_ct_key k;
	struct sl_ct_entry e = {};
	__u64 now = bpf_ktime_get_ns();

	sl_ct_key_of(f, 0, &k);
	e.state = (f->protocol == IPPROTO_TCP && !(f->tcp_flags & SL_TCP_SYN)) ? SL_CT_ESTABLISHED : SL_CT_NEW;
	if (f->tcp_flags & (SL_TCP_FIN | SL_TCP_RST))
		e.state = SL_CT_CLOSING;
	e.expires = now + sl_ct_timeout(f, e.state);
	e.packets = 1;
	e.bytes = skb->len;
	e.policy = policy;
	e.src_ep = src_ep;
	e.dst_ep = dst_ep;
	e.nat = nat;
	bpf_map_update_elem(&sl_ct_v2, &k, &e, BPF_ANY);
}

#endif
