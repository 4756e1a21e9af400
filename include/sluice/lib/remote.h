/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Pods on other nodes: the ipcache (sl_ipcache) says where an address lives and how to
 * reach it; the node's settings (sl_node) name the devices. Two ways out:
 *   tunnel  VXLAN to the remote node (VNI = the source's identity, UDP 8472), wrapped in
 *           BPF (lib/vxlan.h) and sent with bpf_redirect_neigh out of the uplink: the kernel
 *           routes the outer packet (a router may stand between the nodes) and resolves the
 *           next hop's MAC. What BPF declines to wrap goes to the collect_md VXLAN device
 *           with a tunnel key instead, and counts as overlay_device too;
 *   direct  bpf_redirect_neigh out of the uplink with the remote node as next hop: the
 *           kernel resolves its MAC (the nodes must share an L2 segment).
 */
#ifndef SLUICE_LIB_REMOTE_H
#define SLUICE_LIB_REMOTE_H

#include "common.h"
#include "metrics.h"
#include "ipv4.h"
#include "vxlan.h"

/* The address family of a bpf_redirect_neigh next hop (the C library's AF_INET, which uapi does not define). */
#define SL_AF_INET 2

#define SL_TUNNEL_TTL 64

static __always_inline struct sl_ipcache_entry *sl_ipcache_lookup(__be32 ip)
{
	struct sl_ipcache_key key = { .prefixlen = 32, .ip = ip };

	return bpf_map_lookup_elem(&sl_ipcache, &key);
}

static __always_inline struct sl_node_config *sl_node_config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&sl_node, &zero);
}

/* Whether the ipcache entry says how to reach a remote pod. */
static __always_inline int sl_is_remote_pod(const struct sl_ipcache_entry *e)
{
	return e && (e->flags & (SL_IPCACHE_F_TUNNEL | SL_IPCACHE_F_DIRECT)) && e->tunnel_endpoint;
}

/* The overlay through the kernel's collect_md VXLAN device: a tunnel key, then a redirect to it. */
static __always_inline int sl_send_overlay_device(struct __sk_buff *skb, const struct sl_node_config *cfg,
						  const struct sl_ipcache_entry *remote, __u32 src_identity, enum sl_dir dir)
{
	struct bpf_tunnel_key key = {
		.remote_ipv4 = bpf_ntohl(remote->tunnel_endpoint),
		.tunnel_id = src_identity,
		.tunnel_ttl = SL_TUNNEL_TTL,
	};

	if (!cfg->vxlan_ifindex)
		return sl_drop(skb, SL_REASON_DROP_NO_DEVICE, dir);
	if (bpf_skb_set_tunnel_key(skb, &key, SL_TUNNEL_KEY_SIZE, 0) < 0)
		return sl_drop(skb, SL_REASON_DROP_TUNNEL_KEY, dir);
	sl_count_only(skb, SL_REASON_OVERLAY_DEVICE, dir);
	return bpf_redirect(cfg->vxlan_ifindex, 0);
}

/* Out of the uplink: to `nh` (a neighbour on it), or, with nh NULL, as the kernel routes the packet. */
static __always_inline int sl_send_uplink(struct __sk_buff *skb, const struct sl_node_config *cfg,
					  struct bpf_redir_neigh *nh, enum sl_dir dir)
{
	long ret = bpf_redirect_neigh(cfg->uplink_ifindex, nh, nh ? sizeof(*nh) : 0, 0);

	if (ret != TC_ACT_REDIRECT)
		return sl_drop(skb, SL_REASON_DROP_REDIRECT, dir);
	return ret;
}

/*
 * Sends the packet (TTL already decremented, `ip` its IPv4 header) to the node that
 * `remote` names. Counted before it is wrapped, so that counters and traces show the pods'
 * addresses and sizes, not the nodes'.
 */
static __always_inline int sl_send_remote(struct __sk_buff *skb, const struct iphdr *ip, const struct sl_ipcache_entry *remote,
					  __u32 src_identity, enum sl_dir dir)
{
	struct sl_node_config *cfg = sl_node_config();

	if (remote->flags & SL_IPCACHE_F_TUNNEL) {
		int in_bpf = cfg && cfg->uplink_ifindex && cfg->underlay_ip;

		if (!cfg || (!in_bpf && !cfg->vxlan_ifindex))
			return sl_drop(skb, SL_REASON_DROP_NO_DEVICE, dir);
		sl_count(skb, SL_REASON_FORWARD_TUNNEL, dir);
		if (in_bpf) {
			switch (sl_vxlan_encap(skb, cfg->underlay_ip, remote->tunnel_endpoint, src_identity, ip->tos)) {
			case SL_VXLAN_ENCAPPED:
				return sl_send_uplink(skb, cfg, NULL, dir);
			case SL_VXLAN_ENCAP_BROKEN:
				return sl_drop(skb, SL_REASON_DROP_MALFORMED, dir);
			default:
				break;
			}
		}
		return sl_send_overlay_device(skb, cfg, remote, src_identity, dir);
	}

	struct bpf_redir_neigh nh = { .nh_family = SL_AF_INET, .ipv4_nh = remote->tunnel_endpoint };

	if (!cfg || !cfg->uplink_ifindex)
		return sl_drop(skb, SL_REASON_DROP_NO_DEVICE, dir);
	sl_count(skb, SL_REASON_FORWARD_DIRECT, dir);
	return sl_send_uplink(skb, cfg, &nh, dir);
}

#endif
