/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Includes and small helpers every program uses. */
#ifndef SLUICE_LIB_COMMON_H
#define SLUICE_LIB_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "../types.h"
#include "../maps.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#define SL_DATA(skb) ((void *)(long)(skb)->data)
#define SL_DATA_END(skb) ((void *)(long)(skb)->data_end)

/* True when [p, p + len) lies inside the packet. */
#define SL_IN_PACKET(p, len, end) ((void *)(p) + (len) <= (void *)(end))

/*
 * The size of struct bpf_tunnel_key as Linux 5.10-5.19 know it (up to tunnel_label). 6.0
 * appended local_ipv4/local_ipv6; older kernels refuse the larger size with -EINVAL in
 * bpf_skb_{set,get}_tunnel_key, newer ones accept this one. sluice uses no local address.
 */
#define SL_TUNNEL_KEY_SIZE (__builtin_offsetof(struct bpf_tunnel_key, tunnel_label) + sizeof(__u32))

#endif
