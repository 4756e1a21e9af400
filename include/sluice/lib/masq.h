/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Masquerade: which packets leave with the node's address (the decision) and the two
 * directions of it, over the NAT engine (lib/nat.h). Settings in sl_masq (address, port
 * range, on/off) and sl_nonmasq (destinations never translated), written by the routing
 * feature. docs/architecture.md, "Masquerade (SNAT)".
 *   from_container: such a packet (below) is routed out of the uplink in BPF (lib/fib.h);
 *   to_netdev (uplink egress): a local pod's packet to a destination that is no pod, no
 *     node, no cluster address and in no sl_nonmasq range leaves from sl_masq's address;
 *   from_netdev (uplink ingress): a packet to that address with a mapping goes back to the
 *     pod (an ICMP error too, by the packet it quotes); one without goes to the stack.
 */
#ifndef SLUICE_LIB_MASQ_H
#define SLUICE_LIB_MASQ_H

#include "common.h"
#include "metrics.h"
#include "ipv4.h"
#include "l4.h"
#include "endpoint.h"
#include "remote.h"
#include "nodes.h"
#include "conntrack.h"
#include "nat.h"
#include "deliver.h"
#include "fib.h"

#ifndef PACKET_HOST
#define PACKET_HOST 0
#endif

/* The settings, when masquerade is on and has an address; NULL otherwise. */
static __always_inline struct sl_masq_config *sl_masq_on(void)
{
	__u32 zero = 0;
	struct sl_masq_config *m = bpf_map_lookup_elem(&sl_masq, &zero);

	return m && (m->flags & SL_MASQ_F_ON) && m->addr ? m : NULL;
}

/*
 * Whether a pod's packet to `daddr` keeps its address: a destination in sl_nonmasq, a node
 * of the cluster (sl_nodes), or an address the ipcache gives a cluster identity (a pod, a
 * node, the host; not world, not a policy's CIDR identity) or a route to another node.
 * `e`: daddr's sl_ipcache entry (NULL: none), which a caller that has it passes in.
 */
static __always_inline int sl_masq_exempt_with(__be32 daddr, const struct sl_ipcache_entry *e)
{
	struct sl_nonmasq_key k = { .prefixlen = 32, .addr = daddr };

	if (bpf_map_lookup_elem(&sl_nonmasq, &k))
		return 1;
	if (sl_node_lookup(daddr))
		return 1;
	return e && (sl_is_remote_pod(e) || (e->identity != SL_IDENTITY_WORLD && e->identity < SL_FIRST_CIDR_IDENTITY));
}

/* sl_masq_exempt_with, `daddr`'s ipcache entry looked up here. */
static __always_inline int sl_masq_exempt(__be32 daddr)
{
	return sl_masq_exempt_with(daddr, sl_ipcache_lookup(daddr));
}

/*
 * A pod's packet that to_netdev will masquerade (masquerade on, not a fragment, the
 * destination not exempt) is routed out of the uplink here, in from_container, when the
 * FIB routes it there (lib/fib.h): the node's stack never forwards it, as the replies never
 * pass it either. `remote`: the destination's ipcache entry, as the caller found it.
 * Counted as forward_world. Returns the tc verdict, or -1: the stack
 * routes it (another device, no route, too big, masquerade off or not for this packet).
 */
static __always_inline int sl_masq_route_out(struct __sk_buff *skb, struct ethhdr *eth, struct iphdr *ip,
					     const struct sl_ipcache_entry *remote)
{
	struct sl_node_config *cfg;
	int r;

	if (!sl_masq_on() || (ip->frag_off & bpf_htons(SL_IP_MF | SL_IP_OFFSET)) || sl_masq_exempt_with(ip->daddr, remote))
		return -1;
	cfg = sl_node_config();
	if (!cfg || !cfg->uplink_ifindex)
		return -1;
	r = sl_fib_forward(skb, eth, ip, cfg->uplink_ifindex);
	if (r < 0)
		return r;
	if (r != TC_ACT_REDIRECT)
		return sl_drop(skb, SL_REASON_DROP_REDIRECT, SL_DIR_EGRESS);
	sl_count(skb, SL_REASON_FORWARD_WORLD, SL_DIR_EGRESS);
	return r;
}

/*
 * An ICMP error a pod sends to the world: about a reply it got through masquerade (the
 * quoted packet is that reply, to the pod's address and port), it leaves translated, from
 * the node's address and quoting the node's port; about a packet that reached the pod by its
 * own address (no mapping), it leaves as it is. Other ICMP (not echo, not an error) is
 * dropped as unsupported. Returns the tc verdict.
 */
static __always_inline int sl_masq_egress_icmp_error(struct __sk_buff *skb, struct iphdr *ip, void *data_end)
{
	struct sl_icmp_error err;
	struct sl_nat_entry *fwd, *rev;
	struct sl_nat_key fk, rk;
	__u64 now = bpf_ktime_get_ns();

	if (sl_icmp_error_parse(ip, data_end, &err) < 0)
		return sl_drop(skb, SL_REASON_DROP_NAT_UNSUPPORTED, SL_DIR_EGRESS);
	if (err.flow.daddr != ip->saddr)
		return sl_drop(skb, SL_REASON_DROP_NAT_UNSUPPORTED, SL_DIR_EGRESS);
	/* the quoted reply reversed is the flow as the pod sent it */
	sl_nat_key_set(&fk, err.flow.daddr, err.flow.saddr, err.flow.dport, err.flow.sport, err.flow.protocol, SL_DIR_EGRESS);
	fwd = bpf_map_lookup_elem(&sl_nat, &fk);
	if (!fwd)
		return TC_ACT_OK;
	sl_nat_key_set(&rk, err.flow.saddr, fwd->addr, err.flow.icmp_echo ? fwd->port : err.flow.sport, fwd->port,
		       err.flow.protocol, SL_DIR_INGRESS);
	rev = bpf_map_lookup_elem(&sl_nat, &rk);
	if (!rev || rev->expires <= now || rev->addr != err.flow.daddr || rev->port != err.flow.dport)
		return TC_ACT_OK;
	sl_nat_icmp_error_rewrite(ip, &err, data_end, fwd->addr, fwd->port, 0);
	sl_count(skb, SL_REASON_MASQUERADE, SL_DIR_EGRESS);
	return TC_ACT_OK;
}

/*
 * The egress side, for the IPv4 packet `ip` of local pod source leaving the uplink toward a
 * destination that is not exempt: its source becomes m->addr and a port of the range.
 * Returns the tc verdict.
 */
static __always_inline int sl_masq_egress(struct __sk_buff *skb, struct iphdr *ip, void *data_end, const struct sl_masq_config *m)
{
	struct sl_nat_entry *fwd;
	struct sl_nat_key fk;
	struct sl_flow f;
	__u32 l4_off;
	__be32 addr = m->addr;
	__be16 port;
	__u64 now;

	if (ip->frag_off & bpf_htons(SL_IP_MF | SL_IP_OFFSET))
		return sl_drop(skb, SL_REASON_DROP_NAT_FRAGMENT, SL_DIR_EGRESS);
	if (sl_flow_parse(ip, data_end, &f) < 0)
		return sl_drop(skb, SL_REASON_DROP_MALFORMED, SL_DIR_EGRESS);
	if (f.protocol == IPPROTO_ICMP && !f.icmp_echo)
		return sl_masq_egress_icmp_error(skb, ip, data_end);
	if (f.protocol != IPPROTO_TCP && f.protocol != IPPROTO_UDP && !f.icmp_echo)
		return sl_drop(skb, SL_REASON_DROP_NAT_UNSUPPORTED, SL_DIR_EGRESS);
	l4_off = ETH_HLEN + ip->ihl * 4;
	now = bpf_ktime_get_ns();
	sl_nat_key_set(&fk, f.saddr, f.daddr, f.sport, f.dport, f.protocol, SL_DIR_EGRESS);
	fwd = sl_nat_snat_find(&f, &fk, now, skb);
	if (fwd) {
		addr = fwd->addr;
		port = fwd->port;
	} else {
		/* a flow started toward the pod (a routed client reached it) keeps the pod's address */
		struct sl_ct_found ct = sl_ct_lookup(&f);
		enum sl_reason r;

		if (ct.result == SL_CT_REPLY)
			return TC_ACT_OK;
		r = sl_nat_snat_create(&f, &fk, addr, m->port_min, m->port_max, now, skb->len, &port);
		if (r)
			return sl_drop(skb, r, SL_DIR_EGRESS);
	}
	if (sl_nat_rewrite(skb, l4_off, f.protocol, 1, f.saddr, addr, f.sport, port) < 0)
		return sl_drop(skb, SL_REASON_DROP_MALFORMED, SL_DIR_EGRESS);
	sl_count(skb, SL_REASON_MASQUERADE, SL_DIR_EGRESS);
	return TC_ACT_OK;
}

static __always_inline int sl_masq_in_range(const struct sl_masq_config *m, __be16 port)
{
	__u16 p = bpf_ntohs(port);

	return p >= m->port_min && p <= m->port_max;
}

/* The live reverse entry of the reply `f` (to the masquerade address), or NULL. */
static __always_inline struct sl_nat_entry *sl_masq_reverse_find(const struct sl_masq_config *m, const struct sl_flow *f, __u64 now)
{
	struct sl_nat_key rk;
	struct sl_nat_entry *rev;

	if (!sl_masq_in_range(m, f->dport))
		return NULL;
	sl_nat_key_set(&rk, f->saddr, f->daddr, f->sport, f->dport, f->protocol, SL_DIR_INGRESS);
	rev = bpf_map_lookup_elem(&sl_nat, &rk);
	if (!rev || rev->expires <= now || (rev->flags & SL_NAT_F_SRC) || !(rev->flags & SL_NAT_F_MASQ))
		return NULL;
	return rev;
}

/* Delivers the translated-back packet into pod `ep`: routed here, so the TTL goes down. */
static __always_inline int sl_masq_deliver(struct __sk_buff *skb, const struct sl_endpoint *ep, int policed)
{
	void *data_end = SL_DATA_END(skb);
	struct ethhdr *eth = SL_DATA(skb);
	struct iphdr *ip;

	if (!SL_IN_PACKET(eth, sizeof(*eth), data_end))
		return sl_drop(skb, SL_REASON_DROP_MALFORMED, SL_DIR_INGRESS);
	ip = sl_ipv4_hdr(eth, data_end);
	if (!ip)
		return sl_drop(skb, SL_REASON_DROP_MALFORMED, SL_DIR_INGRESS);
	sl_ipv4_dec_ttl(ip);
	sl_count_only(skb, SL_REASON_NAT_REVERSE, SL_DIR_INGRESS);
	if (policed)
		return sl_deliver_to(skb, eth, ip, data_end, ep, sl_source_identity(ip->saddr), SL_REASON_FROM_NETDEV);
	/* an ICMP error about a flow the pod's egress policy admitted: related, not a new flow */
	sl_eth_rewrite(eth, ep->mac, ep->host_mac);
	if (skb->pkt_type != PACKET_HOST)
		bpf_skb_change_type(skb, PACKET_HOST);
	sl_count(skb, SL_REASON_FROM_NETDEV, SL_DIR_INGRESS);
	return bpf_redirect_peer(ep->ifindex, 0);
}

/*
 * The ingress side, for the IPv4 packet `ip` to the masquerade address: a reply (TCP, UDP,
 * ICMP echo reply) or an ICMP error about a masqueraded flow goes back to its pod. Returns
 * 1 with the tc verdict in *verdict, or 0 when the packet is not one (the stack takes it:
 * the node's own); packet pointers are still valid then.
 */
static __always_inline int sl_masq_ingress(struct __sk_buff *skb, struct iphdr *ip, void *data_end, const struct sl_masq_config *m,
					   int *verdict)
{
	struct sl_icmp_error err;
	struct sl_nat_entry *rev;
	struct sl_endpoint *ep;
	struct sl_flow f;
	__be32 pod;
	__be16 port;
	__u64 now;

	if (ip->ttl <= 1)
		return 0;	/* the stack answers with time exceeded */
	if (ip->frag_off & bpf_htons(SL_IP_MF | SL_IP_OFFSET))
		return 0;	/* a reply in fragments: the stack reassembles, nothing translates it (documented) */
	if (sl_flow_parse(ip, data_end, &f) < 0)
		return 0;
	now = bpf_ktime_get_ns();
	if (f.protocol == IPPROTO_ICMP && f.icmp_echo) {
		__u8 *icmp = (void *)ip + ip->ihl * 4;

		if (!SL_IN_PACKET(icmp, 1, data_end) || icmp[0] != SL_ICMP_ECHO_REPLY)
			return 0;	/* an echo request to the node: the stack's */
	}
	if (f.protocol == IPPROTO_TCP || f.protocol == IPPROTO_UDP || f.icmp_echo) {
		rev = sl_masq_reverse_find(m, &f, now);
		if (!rev)
			return 0;
		ep = sl_endpoint_by_ip(rev->addr);
		if (!ep)
			return 0;
		sl_nat_touch(rev, &f, 1, now, skb);
		pod = rev->addr;
		port = rev->port;
		if (sl_nat_rewrite(skb, ETH_HLEN + ip->ihl * 4, f.protocol, 0, f.daddr, pod, f.dport, port) < 0)
			*verdict = sl_drop(skb, SL_REASON_DROP_MALFORMED, SL_DIR_INGRESS);
		else
			*verdict = sl_masq_deliver(skb, ep, 1);
		return 1;
	}
	if (sl_icmp_error_parse(ip, data_end, &err) < 0 || err.flow.saddr != m->addr)
		return 0;
	if (err.flow.icmp_echo && err.inner_l4[0] != SL_ICMP_ECHO)
		return 0;	/* about an echo reply: the node answers pings, pods behind it do not */
	{
		/* the quoted packet is one the flow sent: reversed, it is a reply's key */
		struct sl_flow q = {
			.saddr = err.flow.daddr, .daddr = err.flow.saddr, .sport = err.flow.dport, .dport = err.flow.sport,
			.protocol = err.flow.protocol, .icmp_echo = err.flow.icmp_echo,
		};

		rev = sl_masq_reverse_find(m, &q, now);
		if (!rev)
			return 0;
		ep = sl_endpoint_by_ip(rev->addr);
		if (!ep)
			return 0;
		sl_nat_icmp_error_rewrite(ip, &err, data_end, rev->addr, rev->port, 1);
		*verdict = sl_masq_deliver(skb, ep, 0);
		return 1;
	}
}

#endif
