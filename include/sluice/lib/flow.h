/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The per-packet pipeline, the same in every program that forwards IPv4:
 *
 *   parse (l4.h) -> service translation (service.h) -> conntrack (conntrack.h)
 *     -> policy (policy.h) -> forward (the program: deliver.h, remote.h, the stack)
 *
 * The service stage runs where a pod's packet enters (from_container), before its
 * destination is looked up. sl_flow_admit runs the next two for a parsed packet between
 * `src` and `dst`, each a
 * pod of this node or NULL (a remote pod, the node, the world) with the identity it has.
 * A packet of a known flow between the same pods goes on at the cost of one or two hash
 * lookups; a new flow, or a known one whose address now belongs to another pod (or to a
 * pod where there was none), meets policy and, allowed, is recorded.
 */
#ifndef SLUICE_LIB_FLOW_H
#define SLUICE_LIB_FLOW_H

#include "common.h"
#include "l4.h"
#include "metrics.h"
#include "service.h"
#include "conntrack.h"
#include "policy.h"

static __always_inline __u32 sl_peer_ep(const struct sl_peer *p)
{
	return p->ep ? p->ep->id : 0;
}

/*
 * Conntrack and policy for flow `f` from `src` to `dst`, seen by a program of direction
 * `dir`, after the service stage (which the caller ran before it looked up `dst`: `*nat` is
 * the translation it applied, enum sl_ct_nat). Returns 0 to go on to forwarding, or the drop
 * verdict; a reply of a flow under a translation sets *nat to it (the caller translates the
 * reply back: sl_service_reverse), anything else sets it to SL_CT_NAT_NONE.
 */
static __always_inline int sl_flow_admit(struct __sk_buff *skb, struct sl_flow *f, const struct sl_peer *src,
					 const struct sl_peer *dst, enum sl_dir dir, __u32 *nat)
{
	__u32 src_ep = sl_peer_ep(src), dst_ep = sl_peer_ep(dst);
	struct sl_ct_found ct = sl_ct_lookup(f);
	__u32 applied = *nat;
	__u32 policy = 0;
	int verdict;

	*nat = SL_CT_NAT_NONE;
	if (ct.result != SL_CT_MISS) {
		if (sl_ct_same_pods(&ct, src_ep, dst_ep)) {
			sl_ct_touch(&ct, f, skb);
			if (ct.result == SL_CT_REPLY)
				*nat = ct.entry->nat;
			return 0;
		}
		sl_ct_remove(&ct, f);
	}
	/* the node itself may always reach its pods (and is tracked by nobody) */
	if (!src->ep && src->identity == SL_IDENTITY_HOST)
		return 0;
	verdict = sl_policy_verdict(skb, f, src, dst, dir, &policy);
	if (verdict)
		return verdict;
	sl_ct_create(f, skb, policy, src_ep, dst_ep, applied);
	return 0;
}

#endif
