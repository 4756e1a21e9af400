// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc ingress of a pod's host-side veth: every packet a pod sends.
 *   ARP request for the gateway -> answered here, sent back into the pod
 *   IPv4 from an (ip, mac) that is not the pod's -> dropped (anti-spoofing)
 *   IPv4 to a pod on this node -> MACs rewritten, TTL decremented, bpf_redirect_peer
 *   IPv4 to a pod on another node (sl_ipcache) -> TTL decremented, then wrapped in VXLAN
 *     here (or, failing that, by the overlay device) or routed directly out of the uplink,
 *     as the entry says; either way bpf_redirect_neigh out of the uplink (lib/remote.h)
 *   IPv4 to the world that the uplink's to_netdev will masquerade -> TTL decremented, routed
 *     out of the uplink by a FIB lookup in BPF (lib/fib.h via lib/masq.h), not by the stack
 *   UDP to the overlay's port of anything but a pod -> dropped (a pod could forge identities)
 *   IPv4 to a service frontend (sl_svc) -> its destination translated to a backend first
 *     (lib/service.h), then as to that backend; a frontend without backends -> answered
 *     with ICMP port unreachable, sent back into the pod; the pod itself as the backend
 *     (hairpin) -> from the gateway address, back into the pod; a backend's reply to a
 *     client on this node -> from the frontend again
 *   every IPv4 packet first passes the pipeline of lib/flow.h (service translation,
 *     conntrack, policy): a new flow needs the source's egress policy and, for a pod on
 *     this node, the destination's ingress policy
 *   anything else IPv4 -> the host stack
 */
#include "sluice/lib/common.h"
#include "sluice/lib/config.h"
#include "sluice/lib/metrics.h"
#include "sluice/lib/eth.h"
#include "sluice/lib/ipv4.h"
#include "sluice/lib/arp.h"
#include "sluice/lib/endpoint.h"
#include "sluice/lib/remote.h"
#include "sluice/lib/l4.h"
#include "sluice/lib/flow.h"
#include "sluice/lib/masq.h"

static __always_inline int handle_arp(struct __sk_buff *skb, struct ethhdr *eth, void *data_end)
{
	struct sl_arp *arp = sl_arp_request(eth, data_end);
	enum sl_reason reason;
	struct sl_endpoint *ep;

	if (!SL_IN_PACKET(eth + 1, sizeof(struct sl_arp), data_end))
		return sl_drop(skb, SL_REASON_DROP_MALFORMED, SL_DIR_EGRESS);
	if (!arp || arp->tip != sl_gateway_ip)
		return sl_drop(skb, SL_REASON_DROP_ARP_UNSUPPORTED, SL_DIR_EGRESS);
	if (!sl_mac_eq(eth->h_source, arp->sha))
		return sl_drop(skb, SL_REASON_DROP_SPOOFED_MAC, SL_DIR_EGRESS);
	ep = sl_endpoint_verify(arp->sip, arp->sha, skb->ifindex, &reason);
	if (!ep)
		return sl_drop(skb, reason, SL_DIR_EGRESS);

	sl_arp_reply(eth, arp, ep->host_mac, sl_gateway_ip);
	sl_count(skb, SL_REASON_ARP_REPLY, SL_DIR_EGRESS);
	return bpf_redirect(skb->ifindex, 0);
}

/* Into the pod `ep` itself: a flow of its own through a service (hairpin), no policy (as its loopback has none). */
static __always_inline int deliver_hairpin(struct __sk_buff *skb, const struct sl_endpoint *ep)
{
	struct ethhdr *eth;

	if (!sl_ipv4_reload(skb, &eth))
		return sl_drop(skb, SL_REASON_DROP_MALFORMED, SL_DIR_EGRESS);
	sl_eth_rewrite(eth, ep->mac, ep->host_mac);
	sl_count(skb, SL_REASON_FORWARD_LOCAL, SL_DIR_EGRESS);
	return bpf_redirect_peer(ep->ifindex, 0);
}

static __always_inline int handle_ipv4(struct __sk_buff *skb, struct ethhdr *eth, void *data_end)
{
	struct iphdr *ip = sl_ipv4_hdr(eth, data_end);
	struct sl_endpoint *src, *dst;
	struct sl_ipcache_entry *remote = NULL;
	__u32 nat = SL_CT_NAT_NONE, l4_off;
	struct sl_peer from, to;
	enum sl_reason reason;
	struct sl_flow f;
	int verdict, to_pod, svc;

	if (!ip || sl_flow_parse(ip, data_end, &f) < 0)
		return sl_drop(skb, SL_REASON_DROP_MALFORMED, SL_DIR_EGRESS);
	src = sl_endpoint_verify(ip->saddr, eth->h_source, skb->ifindex, &reason);
	if (!src)
		return sl_drop(skb, reason, SL_DIR_EGRESS);

	l4_off = ETH_HLEN + ip->ihl * 4;
	svc = sl_service_translate(skb, &f, l4_off);
	if (svc < 0)
		return sl_drop(skb, (enum sl_reason)-svc, SL_DIR_EGRESS);
	if (svc == SL_SVC_REJECT) {
		if (sl_service_reject(skb) < 0)
			return sl_drop(skb, SL_REASON_DROP_MALFORMED, SL_DIR_EGRESS);
		sl_count(skb, SL_REASON_SERVICE_REJECT, SL_DIR_EGRESS);
		return bpf_redirect(skb->ifindex, 0);
	}
	if (svc == SL_SVC_PASS) {
		int r = sl_service_hairpin_reply(skb, &f, l4_off);

		if (r < 0)
			return sl_drop(skb, SL_REASON_DROP_MALFORMED, SL_DIR_EGRESS);
		if (r)
			return deliver_hairpin(skb, src);
	} else {
		sl_count_only(skb, SL_REASON_SERVICE, SL_DIR_EGRESS);
		if (svc == SL_SVC_HAIRPIN)
			return deliver_hairpin(skb, src);
		nat = SL_CT_NAT_SERVICE;
		ip = sl_ipv4_reload(skb, &eth);
		if (!ip)
			return sl_drop(skb, SL_REASON_DROP_MALFORMED, SL_DIR_EGRESS);
	}

	dst = sl_endpoint_by_ip(ip->daddr);
	if (!dst)
		remote = sl_ipcache_lookup(ip->daddr);
	if (sl_vxlan_port && f.protocol == IPPROTO_UDP && f.dport == bpf_htons(sl_vxlan_port) && !dst && !sl_is_remote_pod(remote))
		return sl_drop(skb, SL_REASON_DROP_TUNNEL_PORT, SL_DIR_EGRESS);
	from.ep = src;
	from.identity = src->identity;
	to.ep = dst;
	to.identity = dst ? dst->identity : remote ? remote->identity : SL_IDENTITY_WORLD;
	verdict = sl_flow_admit(skb, &f, &from, &to, SL_DIR_EGRESS, &nat);
	if (verdict)
		return verdict;
	if (nat == SL_CT_NAT_SERVICE) {
		/* a backend's reply to a client on this node: from the frontend again */
		if (sl_service_reverse(skb, &f, l4_off) < 0)
			return sl_drop(skb, SL_REASON_DROP_MALFORMED, SL_DIR_EGRESS);
		ip = sl_ipv4_reload(skb, &eth);
		if (!ip)
			return sl_drop(skb, SL_REASON_DROP_MALFORMED, SL_DIR_EGRESS);
	}

	to_pod = dst || sl_is_remote_pod(remote);
	if (ip->ttl > 1 && !to_pod) {
		/* to the world: what to_netdev will masquerade is routed here, not by the stack */
		int routed = sl_masq_route_out(skb, eth, ip, remote);

		if (routed >= 0)
			return routed;
	}
	if (ip->ttl <= 1 || !to_pod) {
		/* not a pod (the stack routes it), or the stack must answer with ICMP time exceeded */
		sl_count(skb, SL_REASON_TO_STACK, SL_DIR_EGRESS);
		return TC_ACT_OK;
	}
	sl_ipv4_dec_ttl(ip);
	if (!dst)
		return sl_send_remote(skb, ip, remote, src->identity, SL_DIR_EGRESS);
	sl_eth_rewrite(eth, dst->mac, dst->host_mac);
	sl_count(skb, SL_REASON_FORWARD_LOCAL, SL_DIR_EGRESS);
	return bpf_redirect_peer(dst->ifindex, 0);
}

SEC("tc")
int from_container(struct __sk_buff *skb)
{
	void *data_end = SL_DATA_END(skb);
	struct ethhdr *eth = SL_DATA(skb);

	if (!SL_IN_PACKET(eth, sizeof(*eth), data_end))
		return sl_drop(skb, SL_REASON_DROP_MALFORMED, SL_DIR_EGRESS);

	switch (eth->h_proto) {
	case bpf_htons(ETH_P_ARP):
		return handle_arp(skb, eth, data_end);
	case bpf_htons(ETH_P_IP):
		return handle_ipv4(skb, eth, data_end);
	default:
		return sl_drop(skb, SL_REASON_DROP_UNSUPPORTED_L3, SL_DIR_EGRESS);
	}
}

char _license[] SEC("license") = "Dual BSD/GPL";
