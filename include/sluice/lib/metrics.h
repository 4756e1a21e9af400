/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-CPU packet and byte counters by reason and direction (map sl_metrics), and the
 * events that go with them: every drop, and every forwarded packet while tracing is on.
 */
#ifndef SLUICE_LIB_METRICS_H
#define SLUICE_LIB_METRICS_H

#include "common.h"
#include "events.h"

/* Adds one packet of the skb's length to the per-CPU counter at `key` of `map`. */
static __always_inline void sl_counter_add(void *map, const void *key, const struct __sk_buff *skb)
{
	struct sl_metrics_val *val = bpf_map_lookup_elem(map, key);

	if (val) {
		/* per-CPU: no other writer on this CPU while we run */
		val->packets++;
		val->bytes += skb->len;
	} else {
		struct sl_metrics_val init = { .packets = 1, .bytes = skb->len };

		bpf_map_update_elem(map, key, &init, BPF_NOEXIST);
	}
}

static __always_inline void sl_count_only(const struct __sk_buff *skb, enum sl_reason reason, enum sl_dir dir)
{
	struct sl_metrics_key key = { .reason = reason, .dir = dir };

	sl_counter_add(&sl_metrics, &key, skb);
}

/* Counts a packet that goes on (forwarded, answered, handed to the stack); traces it when asked. */
static __always_inline void sl_count(struct __sk_buff *skb, enum sl_reason reason, enum sl_dir dir)
{
	sl_count_only(skb, reason, dir);
	sl_trace(skb, reason, dir);
}

/* Counts a drop, reports it as an event, and returns the verdict that drops the packet. */
static __always_inline int sl_drop(struct __sk_buff *skb, enum sl_reason reason, enum sl_dir dir)
{
	sl_count_only(skb, reason, dir);
	sl_event_emit(skb, SL_EVENT_WHAT(SL_EVENT_DROP, reason, dir), 0, 0, 0);
	return TC_ACT_SHOT;
}

/* A drop by policy: the event names the identities and the deciding policy. */
static __always_inline int sl_drop_policy(struct __sk_buff *skb, enum sl_reason reason, enum sl_dir dir,
					  __u32 src_identity, __u32 dst_identity, __u32 policy)
{
	sl_count_only(skb, reason, dir);
	sl_event_emit(skb, SL_EVENT_WHAT(SL_EVENT_DROP, reason, dir), src_identity, dst_identity, policy);
	return TC_ACT_SHOT;
}

/* A new flow that a policy allowed. */
static __always_inline void sl_verdict_allowed(struct __sk_buff *skb, enum sl_dir dir, __u32 src_identity,
					       __u32 dst_identity, __u32 policy)
{
	sl_event_emit(skb, SL_EVENT_WHAT(SL_EVENT_POLICY_VERDICT, 0, dir), src_identity, dst_identity, policy);
}

#endif
