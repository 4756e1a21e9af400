/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The node's configuration as read-only globals. The loader sets them by name before
 * load (src/datapath/globals.ts); the verifier then treats them as constants and
 * prunes branches that a node's configuration rules out.
 */
#ifndef SLUICE_LIB_CONFIG_H
#define SLUICE_LIB_CONFIG_H

#include "../types.h"

/* The link-local address every pod uses as its default gateway. */
const volatile sl_ipv4_t sl_gateway_ip = 0;

/* The overlay's UDP port (host byte order; 0: no guard). Pods may not send to it: a crafted
 * VXLAN packet to a node would carry whatever identity its VNI claims. */
const volatile __u16 sl_vxlan_port = 0;

#endif
