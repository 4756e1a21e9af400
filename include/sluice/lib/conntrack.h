/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connection tracking (map sl_ct, LRU). A flow is keyed by its first packet's tuple; a
 * packet matching it is the flow going on, one matching it reversed is a reply. Replies
 * and established flows skip policy. Entries expire (TCP: 60 s until the reply, 6 h
 * established, 10 s after FIN/RST; others 60 s) and the agent collects dead ones.
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

static __always_inline void sl_ct_touch(struct sl_ct_entry *e, const struct sl_flow *f, const struct __sk_buff *skb, __u64 now, int reply)
{
	if (reply && e->state == SL_CT_NEW)
		e->state = SL_CT_ESTABLISHED;
	if (f->tcp_flags & (SL_TCP_FIN | SL_TCP_RST))
		e->state = SL_CT_CLOSING;
	e->expires = now + sl_ct_timeout(f, e->state);
	__sync_fetch_and_add(&e->packets, 1);
	__sync_fetch_and_add(&e->bytes, skb->len);
}

/* Looks the packet up; a live entry is refreshed. */
static __always_inline enum sl_ct_result sl_ct_lookup(const struct sl_flow *f, const struct __sk_buff *skb)
{
	struct sl_ct_key k;
	struct sl_ct_entry *e;
	__u64 now = bpf_ktime_get_ns();

	sl_ct_key_of(f, 0, &k);
	e = bpf_map_lookup_elem(&sl_ct, &k);
	if (e && e->expires > now) {
		sl_ct_touch(e, f, skb, now, 0);
		return SL_CT_FLOW;
	}
	sl_ct_key_of(f, 1, &k);
	e = bpf_map_lookup_elem(&sl_ct, &k);
	if (e && e->expires > now) {
		sl_ct_touch(e, f, skb, now, 1);
		return SL_CT_REPLY;
	}
	return SL_CT_MISS;
}

/*
 * Records a new flow that policy allowed. A TCP packet other than a SYN (a flow older than
 * this table, e.g. after a restart) starts out established.
 */
static __always_inline void sl_ct_create(const struct sl_flow *f, const struct __sk_buff *skb, __u32 policy)
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
	bpf_map_update_elem(&sl_ct, &k, &e, BPF_ANY);
}

#endif
