/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Datapath events (ring buffer sl_events): drops, policy verdicts of new flows, and, while
 * the agent turns tracing on in sl_monitor, forwarded packets. A per-CPU token bucket
 * (sl_monitor_st) caps events at sl_monitor's rate, so a flood of drops cannot starve the
 * datapath or the reader; what the cap or a full ring keeps out is counted, never silent.
 * The emitter is one BPF subprogram, not inlined at each drop site.
 */
#ifndef SLUICE_LIB_EVENTS_H
#define SLUICE_LIB_EVENTS_H

#include <linux/in.h>
#include "common.h"
#include "ipv4.h"

#define SL_EVENT_DEFAULT_RATE 1000	/* events per second per CPU */
#define SL_NSEC 1000000000ULL

/* Takes a token from this CPU's bucket (burst: one second's worth); 0 when over the rate. */
static __always_inline int sl_event_admit(struct sl_monitor_state *st, __u64 rate)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 elapsed = now - st->last;

	if (elapsed >= SL_NSEC) {
		st->tokens = rate;
		st->last = now;
	} else if (elapsed * rate >= SL_NSEC) {
		st->tokens += elapsed * rate / SL_NSEC;
		if (st->tokens > rate)
			st->tokens = rate;
		st->last = now;
	}
	if (!st->tokens) {
		st->rate_limited++;
		return 0;
	}
	st->tokens--;
	return 1;
}

/*
 * What an event says about the packet, read from the skb (Ethernet at offset 0). A
 * subprogram of its own: its prototype puts struct sl_event into the objects' BTF, where
 * user space reads the record layout (types only used inside functions are not emitted).
 */
static inline __attribute__((noinline)) int sl_event_packet(const struct __sk_buff *skb, struct sl_event *e)
{
	__be16 proto;
	struct iphdr ip;
	__be16 ports[2];

	if (bpf_skb_load_bytes(skb, __builtin_offsetof(struct ethhdr, h_proto), &proto, sizeof(proto)) < 0 ||
	    proto != bpf_htons(ETH_P_IP) || bpf_skb_load_bytes(skb, sizeof(struct ethhdr), &ip, sizeof(ip)) < 0)
		return 0;
	e->saddr = ip.saddr;
	e->daddr = ip.daddr;
	e->protocol = ip.protocol;
	if ((ip.frag_off & bpf_htons(SL_IP_OFFSET)) ||
	    (ip.protocol != IPPROTO_TCP && ip.protocol != IPPROTO_UDP && ip.protocol != IPPROTO_SCTP))
		return 0;
	if (bpf_skb_load_bytes(skb, sizeof(struct ethhdr) + ip.ihl * 4, ports, sizeof(ports)) < 0)
		return 0;
	e->sport = ports[0];
	e->dport = ports[1];
	return 0;
}

/*
 * Emits one event. `what` packs type << 16 | reason << 8 | dir (a subprogram takes at most
 * five arguments). Returns nothing the caller needs.
 */
static inline __attribute__((noinline)) int sl_event_emit(struct __sk_buff *skb, __u32 what, __u32 src_identity,
							  __u32 dst_identity, __u32 policy)
{
	__u32 zero = 0;
	struct sl_monitor_config *cfg = bpf_map_lookup_elem(&sl_monitor, &zero);
	struct sl_monitor_state *st = bpf_map_lookup_elem(&sl_monitor_st, &zero);
	struct sl_event *e;

	if (!st)
		return 0;
	if (!sl_event_admit(st, cfg && cfg->rate ? cfg->rate : SL_EVENT_DEFAULT_RATE))
		return 0;
	e = bpf_ringbuf_reserve(&sl_events, sizeof(*e), 0);
	if (!e) {
		st->ring_full++;
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->timestamp = bpf_ktime_get_ns();
	e->type = (what >> 16) & 0xff;
	e->reason = (what >> 8) & 0xff;
	e->dir = what & 0xff;
	e->ifindex = skb->ifindex;
	e->len = skb->len;
	e->src_identity = src_identity;
	e->dst_identity = dst_identity;
	e->policy = policy;
	sl_event_packet(skb, e);
	bpf_ringbuf_submit(e, 0);
	st->sent++;
	return 0;
}

#define SL_EVENT_WHAT(type, reason, dir) (((__u32)(type) << 16) | ((__u32)(reason) << 8) | (__u32)(dir))

/* A trace event for a forwarded packet, when tracing is on. */
static __always_inline void sl_trace(struct __sk_buff *skb, enum sl_reason reason, enum sl_dir dir)
{
	__u32 zero = 0;
	struct sl_monitor_config *cfg = bpf_map_lookup_elem(&sl_monitor, &zero);

	if (cfg && cfg->trace)
		sl_event_emit(skb, SL_EVENT_WHAT(SL_EVENT_TRACE, reason, dir), 0, 0, 0);
}

#endif
