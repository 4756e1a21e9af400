/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The policy stage: NetworkPolicy verdicts for a new flow (map sl_policy), LPM lookups per
 * end whatever the number of rules: the peer's identity first; for a peer with an identity of
 * its own (a pod, a node), the CIDR identity of its address next (sl_policy_cidr: ipBlocks
 * match pods' and nodes' addresses too, and two pods of one identity can differ by address);
 * then "any identity". A lookup the verdict does not need is not made.
 * An endpoint with no entry at all is treated as selected by no policy (allowed): its
 * entries are written when it is created and whenever policies change.
 */
#ifndef SLUICE_LIB_POLICY_H
#define SLUICE_LIB_POLICY_H

#include "common.h"
#include "l4.h"
#include "metrics.h"

#define SL_POLICY_KEY_BITS 96	/* endpoint 32 + identity 32 + dir 8 + protocol 8 + dport 16 */

static __always_inline void sl_policy_count(__u32 policy, enum sl_dir dir, int allowed, const struct __sk_buff *skb)
{
	struct sl_policy_stats_key k = { .policy = policy, .dir = dir, .allowed = allowed };

	sl_counter_add(&sl_policy_st, &k, skb);
}

/* The CIDR identity of `addr` among the policies' CIDRs, or 0 when none holds it. */
static __always_inline __u32 sl_policy_cidr_identity(__be32 addr)
{
	struct sl_ipcache_key k = { .prefixlen = 32, .ip = addr };
	struct sl_policy_cidr_entry *v = bpf_map_lookup_elem(&sl_policy_cidr, &k);

	return v ? v->identity : 0;
}

/*
 * 1 when endpoint `ep` may exchange flow `f` with the peer at `addr` of `identity` in
 * direction `dir`; sets *policy to the deciding policy.
 */
static __always_inline int sl_policy_allows(__u32 ep, __u32 identity, __be32 addr, enum sl_dir dir, const struct sl_flow *f,
					    const struct __sk_buff *skb, __u32 *policy)
{
	struct sl_policy_key k = {
		.prefixlen = SL_POLICY_KEY_BITS, .endpoint = ep, .identity = identity, .dir = dir,
		.protocol = f->protocol, .dport = f->dport,
	};
	struct sl_policy_entry *v;
	int allowed;

	v = bpf_map_lookup_elem(&sl_policy, &k);
	if (v && (v->flags & SL_POLICY_F_ALLOW)) {
		*policy = v->policy;
		sl_policy_count(v->policy, dir, 1, skb);
		return 1;
	}
	/* A CIDR identity from the ipcache already is the address's; a pod or node also has one. */
	if (identity < SL_FIRST_CIDR_IDENTITY) {
		k.identity = sl_policy_cidr_identity(addr);
		if (k.identity) {
			v = bpf_map_lookup_elem(&sl_policy, &k);
			if (v && (v->flags & SL_POLICY_F_ALLOW)) {
				*policy = v->policy;
				sl_policy_count(v->policy, dir, 1, skb);
				return 1;
			}
		}
	}
	k.identity = 0;
	v = bpf_map_lookup_elem(&sl_policy, &k);
	if (!v) {
		*policy = 0;
		return 1;
	}
	*policy = v->policy;
	allowed = (v->flags & (SL_POLICY_F_ALLOW | SL_POLICY_F_UNISOLATED)) != 0;
	if (!(v->flags & SL_POLICY_F_UNISOLATED))
		sl_policy_count(v->policy, dir, allowed, skb);
	return allowed;
}

/* One end of a flow: a pod of this node (`ep`), or NULL (a remote pod, the node, the world), and its identity. */
struct sl_peer {
	const struct sl_endpoint *ep;
	__u32 identity;
};

/*
 * The policy stage for a new flow from `src` to `dst`, seen by a program of direction
 * `dir`: a pod of this node at the source needs its egress policy, one at the destination
 * its ingress policy. Sets *policy to the one that let the flow in, else the one that let
 * it out (0: none needed). Returns 0 to go on, or the drop verdict.
 */
static __always_inline int sl_policy_verdict(struct __sk_buff *skb, const struct sl_flow *f, const struct sl_peer *src,
					     const struct sl_peer *dst, enum sl_dir dir, __u32 *policy)
{
	__u32 egress = 0, ingress = 0;

	if (src->ep && !sl_policy_allows(src->ep->id, dst->identity, f->daddr, SL_DIR_EGRESS, f, skb, &egress))
		return sl_drop_policy(skb, SL_REASON_DROP_POLICY_EGRESS, dir, src->identity, dst->identity, egress);
	if (dst->ep && !sl_policy_allows(dst->ep->id, src->identity, f->saddr, SL_DIR_INGRESS, f, skb, &ingress))
		return sl_drop_policy(skb, SL_REASON_DROP_POLICY_INGRESS, dir, src->identity, dst->identity, ingress);
	*policy = ingress ? ingress : egress;
	if (*policy)
		sl_verdict_allowed(skb, dir, src->identity, dst->identity, *policy);
	return 0;
}

#endif
