/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Ethernet addresses. */
#ifndef SLUICE_LIB_ETH_H
#define SLUICE_LIB_ETH_H

#include "common.h"

static __always_inline int sl_mac_eq(const __u8 *a, const __u8 *b)
{
	return *(const __u32 *)a == *(const __u32 *)b &&
	       *(const __u16 *)(a + 4) == *(const __u16 *)(b + 4);
}

static __always_inline void sl_mac_copy(__u8 *dst, const __u8 *src)
{
	*(__u32 *)dst = *(const __u32 *)src;
	*(__u16 *)(dst + 4) = *(const __u16 *)(src + 4);
}

/* Rewrites the Ethernet header for delivery: to `dst`, from `src`. */
static __always_inline void sl_eth_rewrite(struct ethhdr *eth, const __u8 *dst, const __u8 *src)
{
	sl_mac_copy(eth->h_dest, dst);
	sl_mac_copy(eth->h_source, src);
}

#endif
