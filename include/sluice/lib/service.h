/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The service stage: translating a packet to a service's address into one to a backend
 * (and a reply back), before conntrack sees it, so the flow is tracked and policed as the
 * pods exchange it. No translation exists yet: every packet passes untouched, with no
 * translation to record (0). Services (ClusterIP, NodePort) and masquerade fill it in and
 * record the translation in the flow's conntrack entry (struct sl_ct_entry.nat).
 */
#ifndef SLUICE_LIB_SERVICE_H
#define SLUICE_LIB_SERVICE_H

#include "common.h"
#include "l4.h"

/* The translation applied to the packet of flow `f` (0: none); `f` describes the packet after it. */
static __always_inline __u32 sl_service_translate(struct __sk_buff *skb, struct sl_flow *f)
{
	(void)skb;
	(void)f;
	return 0;
}

#endif
