/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Per-CPU packet and byte counters by reason and direction (map sl_metrics). */
#ifndef SLUICE_LIB_METRICS_H
#define SLUICE_LIB_METRICS_H

#include "common.h"

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

static __always_inline void sl_count(const struct __sk_buff *skb, enum sl_reason reason, enum sl_dir dir)
{
	struct sl_metrics_key key = { .reason = reason, .dir = dir };

	sl_counter_add(&sl_metrics, &key, skb);
}

/* Counts a drop and returns the verdict that drops the packet. */
static __always_inline int sl_drop(const struct __sk_buff *skb, enum sl_reason reason, enum sl_dir dir)
{
	sl_count(skb, reason, dir);
	return TC_ACT_SHOT;
}

#endif
