/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Delivering a packet that arrived from another node into a local pod. */
#ifndef SLUICE_LIB_DELIVER_H
#define SLUICE_LIB_DELIVER_H

#include "common.h"
#include "metrics.h"
#include "eth.h"
#include "ipv4.h"
#include "endpoint.h"

/*
 * The IPv4 packet in `eth` for a pod of this node: MACs set as if the pod's gateway sent
 * it, then bpf_redirect_peer into the pod. The sending node already decremented the TTL.
 * Returns -1 when the destination is not a local pod (the caller decides).
 */
static __always_inline int sl_deliver_local(struct __sk_buff *skb, struct ethhdr *eth, struct iphdr *ip, enum sl_reason reason)
{
	struct sl_endpoint *dst = sl_endpoint_by_ip(ip->daddr);

	if (!dst)
		return -1;
	sl_eth_rewrite(eth, dst->mac, dst->host_mac);
	sl_count(skb, reason, SL_DIR_INGRESS);
	return bpf_redirect_peer(dst->ifindex, 0);
}

#endif
