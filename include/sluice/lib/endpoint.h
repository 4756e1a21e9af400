/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Local pods (map sl_endpoints). */
#ifndef SLUICE_LIB_ENDPOINT_H
#define SLUICE_LIB_ENDPOINT_H

#include "common.h"
#include "eth.h"

static __always_inline struct sl_endpoint *sl_endpoint_by_ip(__be32 ip)
{
	struct sl_endpoint_key key = { .ip = ip };

	return bpf_map_lookup_elem(&sl_endpoints, &key);
}

/*
 * Anti-spoofing: the endpoint that owns (ip, mac) and sits behind `ifindex`.
 * Sets *reason to the drop reason and returns NULL when the pair is not the pod's.
 */
static __always_inline struct sl_endpoint *sl_endpoint_verify(__be32 ip, const __u8 *mac, __u32 ifindex,
							       enum sl_reason *reason)
{
	struct sl_endpoint *ep = sl_endpoint_by_ip(ip);

	if (!ep || ep->ifindex != ifindex) {
		*reason = SL_REASON_DROP_SPOOFED_IP;
		return NULL;
	}
	if (!sl_mac_eq(mac, ep->mac)) {
		*reason = SL_REASON_DROP_SPOOFED_MAC;
		return NULL;
	}
	return ep;
}

#endif
