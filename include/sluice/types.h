/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every key and value struct the datapath shares with user space, defined once.
 * TypeScript never copies these layouts: it reads them from the objects' BTF
 * (src/bpf/btf.ts). Two typedefs carry meaning for the codec:
 *   sl_ipv4_t  an IPv4 address in network byte order, shown as a dotted quad;
 *   sl_mac_t   an Ethernet address, shown as aa:bb:cc:dd:ee:ff.
 */
#ifndef SLUICE_TYPES_H
#define SLUICE_TYPES_H

#include <linux/types.h>

typedef __be32 sl_ipv4_t;
typedef __u8 sl_mac_t[6];

/*
 * Why a packet was forwarded or dropped. Values below SL_DROP_BASE are not drops.
 * User space derives the words it prints from these names (SL_REASON_DROP_SPOOFED_IP
 * -> "drop_spoofed_ip"), so a new reason needs no TypeScript change.
 */
enum sl_reason {
	SL_REASON_UNSPEC = 0,
	SL_REASON_FORWARD_LOCAL = 1,	/* redirected into a pod on this node */
	SL_REASON_TO_STACK = 2,		/* handed to the host network stack */
	SL_REASON_ARP_REPLY = 3,	/* the pod's ARP for its gateway answered in BPF */
	SL_REASON_TO_POD = 4,		/* host stack to pod */
	SL_REASON_FORWARD_TUNNEL = 5,	/* sent to a pod on another node through the VXLAN overlay */
	SL_REASON_FORWARD_DIRECT = 6,	/* routed to a pod on another node over the uplink */
	SL_REASON_FROM_OVERLAY = 7,	/* arrived through the overlay, delivered into a pod */
	SL_REASON_FROM_NETDEV = 8,	/* arrived on the uplink, delivered into a pod */
	SL_REASON_OVERLAY_DEVICE = 9,	/* of the overlay packets above, one the kernel's VXLAN device encapsulated
					 * (egress) or decapsulated (ingress) because BPF did not */
	SL_REASON_MASQUERADE = 10,	/* a pod's packet to the world, its source translated to the node's (to_netdev) */
	SL_REASON_NAT_REVERSE = 11,	/* a reply to a masqueraded flow, translated back to the pod (then delivered) */
	SL_REASON_FORWARD_WORLD = 12,	/* a pod's packet to be masqueraded, routed out of the uplink in BPF (a FIB lookup), not by the stack */
	SL_REASON_SERVICE = 13,		/* a packet to a service frontend, its destination translated to a backend (then forwarded) */
	SL_REASON_SERVICE_REJECT = 14,	/* a packet to a service without backends, answered with ICMP port unreachable */
	SL_DROP_BASE = 128,
	SL_REASON_DROP_MALFORMED = 128,	/* truncated or invalid headers */
	SL_REASON_DROP_SPOOFED_IP = 129,	/* source IP is not the sending pod's */
	SL_REASON_DROP_SPOOFED_MAC = 130,	/* source MAC is not the sending pod's */
	SL_REASON_DROP_UNSUPPORTED_L3 = 131,	/* neither IPv4 nor ARP */
	SL_REASON_DROP_ARP_UNSUPPORTED = 132,	/* ARP other than a request for the gateway */
	SL_REASON_DROP_NO_ENDPOINT = 133,	/* to a pod interface that has no endpoint */
	SL_REASON_DROP_NO_DEVICE = 134,	/* the overlay or uplink device this path needs is not configured */
	SL_REASON_DROP_TUNNEL_KEY = 135,	/* the tunnel key could not be set or read */
	SL_REASON_DROP_REDIRECT = 136,	/* the kernel refused the redirect */
	SL_REASON_DROP_POLICY_EGRESS = 137,	/* the source pod's egress policy does not allow it */
	SL_REASON_DROP_POLICY_INGRESS = 138,	/* the destination pod's ingress policy does not allow it */
	SL_REASON_DROP_TUNNEL_PORT = 139,	/* a pod sent to the overlay's UDP port outside the cluster's pods (it could forge identities) */
	SL_REASON_DROP_TUNNEL_HOST = 140,	/* an overlay packet claimed the host identity (only the node itself has it) */
	SL_REASON_DROP_TUNNEL_SOURCE = 141,	/* an overlay packet from an address that is no node of the cluster (sl_nodes) */
	SL_REASON_DROP_TUNNEL_INNER_SOURCE = 142,	/* an overlay packet from a node, carrying a source address that node does not own */
	SL_REASON_DROP_NODE_MAC = 143,	/* routed directly from a peer node's pod, but not from that node's MAC */
	SL_REASON_DROP_NAT_NO_PORT = 144,	/* to be masqueraded, but every port of the range tried is taken for that destination */
	SL_REASON_DROP_NAT_TABLE_FULL = 145,	/* to be masqueraded, but the NAT table (sl_nat) is full */
	SL_REASON_DROP_NAT_FRAGMENT = 146,	/* a fragment to be masqueraded (its ports are in the first fragment only) */
	SL_REASON_DROP_NAT_UNSUPPORTED = 147,	/* to be masqueraded, but neither TCP, UDP nor ICMP echo */
	SL_REASON_DROP_SVC_CONFLICT = 148,	/* to a service, but another live flow already has the same tuple to the chosen backend */
	SL_REASON_MAX = 255,
};

/* Reserved security identities (the rest are allocated in the store: src/identity/). */
enum sl_identity_reserved {
	SL_IDENTITY_ANY = 0,		/* in policy keys: any identity */
	SL_IDENTITY_HOST = 1,		/* this node */
	SL_IDENTITY_WORLD = 2,		/* outside the cluster */
	SL_IDENTITY_REMOTE_NODE = 3,	/* another node of the cluster */
};

/* Node-local CIDR identities (one per cidr and except of every policy) start here. */
#define SL_FIRST_CIDR_IDENTITY 0x1000000

/* Direction, seen from the pod. */
enum sl_dir {
	SL_DIR_EGRESS = 0,	/* leaving a pod */
	SL_DIR_INGRESS = 1,	/* entering a pod */
};

/* sl_endpoints: one entry per local pod, keyed by its address. */
struct sl_endpoint_key {
	sl_ipv4_t ip;
};

enum sl_endpoint_flags {
	SL_EP_F_NONE = 0,
};

struct sl_endpoint {
	__u32 ifindex;		/* host-side veth */
	__u32 id;		/* endpoint id, as `sluice endpoint list` shows it */
	sl_mac_t mac;		/* pod-side MAC */
	sl_mac_t host_mac;	/* host-side veth MAC: what the pod sees as its gateway */
	__u32 identity;		/* security identity */
	__u32 flags;		/* enum sl_endpoint_flags */
};

/* sl_ipcache: where addresses that are not local pods live (LPM trie, longest prefix wins). */
struct sl_ipcache_key {
	__u32 prefixlen;	/* how many leading bits of ip count */
	sl_ipv4_t ip;
};

enum sl_ipcache_flags {
	SL_IPCACHE_F_NONE = 0,
	SL_IPCACHE_F_TUNNEL = 1,	/* reach it through the VXLAN overlay */
	SL_IPCACHE_F_DIRECT = 2,	/* reach it by routing to tunnel_endpoint out of the uplink */
};

struct sl_ipcache_entry {
	__u32 identity;			/* security identity of the addresses */
	sl_ipv4_t tunnel_endpoint;	/* underlay address of the node they live on */
	__u32 flags;			/* enum sl_ipcache_flags */
};

/*
 * sl_policy_cidr: the CIDR identity of an address whatever else it is (LPM trie keyed by
 * struct sl_ipcache_key): every cidr and except of every policy, as in sl_ipcache, but
 * without the pods' and nodes' own entries, so an ipBlock matches their addresses too.
 */
struct sl_policy_cidr_entry {
	__u32 identity;		/* a CIDR identity (>= SL_FIRST_CIDR_IDENTITY) */
};

/*
 * sl_nodes: the cluster's other nodes by underlay address (hash), written by the agent from
 * the node records. Only they may send this node VXLAN, each carrying only sources it owns:
 * its own address and its pod block (lib/nodes.h); a packet routed to a local pod directly
 * from one of their pods must come from the MAC the node published.
 */
struct sl_nodes_key {
	sl_ipv4_t ip;
};

enum sl_nodes_flags {
	SL_NODES_F_NONE = 0,
	SL_NODES_F_MAC = 1,	/* mac is the node's uplink MAC (its record names it): checked on routed packets */
	SL_NODES_F_BLOCK = 2,	/* pod_block/pod_mask are the node's pod block (it has one, overlapping no other) */
};

struct sl_nodes_entry {
	sl_ipv4_t pod_block;	/* the node's IPv4 pod block (with SL_NODES_F_BLOCK) */
	sl_ipv4_t pod_mask;	/* its netmask, e.g. 255.255.255.0 */
	sl_mac_t mac;		/* the node's uplink MAC (with SL_NODES_F_MAC) */
	__u16 flags;		/* enum sl_nodes_flags */
};

/* sl_node: this node's runtime settings (one entry, key 0), written by the agent. */
struct sl_node_config {
	__u32 vxlan_ifindex;	/* the collect_md VXLAN device (0: none) */
	__u32 uplink_ifindex;	/* the uplink (0: none) */
	sl_ipv4_t underlay_ip;	/* this node's underlay address */
	__u32 flags;
};

/*
 * sl_policy: what each local endpoint may exchange (LPM trie). The key's bytes after
 * prefixlen are endpoint, identity, dir, protocol, dport: an entry whose prefix stops after
 * dir matches any protocol and port, after protocol any port, and a port range is a few
 * prefixes of dport (network byte order). identity 0 matches any remote identity.
 * Two lookups per packet (the peer's identity, then 0) whatever the number of rules.
 */
struct sl_policy_key {
	__u32 prefixlen;
	__u32 endpoint;		/* local endpoint id */
	__u32 identity;		/* the remote side's security identity, 0 = any */
	__u8 dir;		/* enum sl_dir, seen from the local endpoint */
	__u8 protocol;		/* IPPROTO_TCP/UDP/SCTP */
	__be16 dport;		/* destination port, network byte order */
};

enum sl_policy_flags {
	SL_POLICY_F_DENY = 0,		/* isolated: only entries with ALLOW let traffic through */
	SL_POLICY_F_ALLOW = 1,		/* a rule allows it */
	SL_POLICY_F_UNISOLATED = 2,	/* no policy selects the endpoint in this direction */
};

struct sl_policy_entry {
	__u32 policy;		/* id of the policy that decided (rule allowing, or first isolating) */
	__u32 flags;		/* enum sl_policy_flags */
};

/* sl_policy_st: per-CPU verdicts per policy and direction. */
struct sl_policy_stats_key {
	__u32 policy;
	__u8 dir;		/* enum sl_dir */
	__u8 allowed;		/* 1 allowed, 0 denied */
	__u16 pad;
};

/*
 * sl_ct_v2: connection tracking (LRU), keyed by the flow's first packet (after service
 * translation, when there is one). Layout 2; layout 1 (map sl_ct) had no endpoints and
 * no translation (docs/architecture.md, "Map layouts and upgrades").
 */
struct sl_ct_key {
	sl_ipv4_t saddr;
	sl_ipv4_t daddr;
	__be16 sport;		/* ICMP echo: the identifier, in both ports */
	__be16 dport;
	__u8 protocol;
	__u8 pad[3];
};

enum sl_ct_state {
	SL_CT_NEW = 0,		/* seen one way only (UDP, ICMP, a TCP SYN) */
	SL_CT_ESTABLISHED = 1,	/* seen both ways */
	SL_CT_CLOSING = 2,	/* TCP FIN or RST seen */
};

struct sl_ct_entry {
	__u64 expires;		/* bpf_ktime_get_ns() after which the entry is dead */
	__u64 packets;
	__u64 bytes;
	__u32 policy;		/* the policy that allowed the flow (0: none needed) */
	/*
	 * The pods of this node whose policy admitted the flow, by endpoint id (0: not a pod
	 * of this node). A packet of the flow between other endpoints (its address belongs to
	 * a pod now where there was none, or the reverse) is a new flow to policy. Endpoint
	 * ids are reused (the lowest free one): deleting an endpoint removes its flows, after
	 * its sl_endpoints entry and before its address is released.
	 */
	__u32 src_ep;
	__u32 dst_ep;
	__u32 nat;		/* the translation the flow is under (0: none); the service stage sets it */
	__u8 state;		/* enum sl_ct_state */
	__u8 pad[7];
};

/* sl_metrics: per-CPU packet and byte counters by reason and direction. */
struct sl_metrics_key {
	enum sl_reason reason;
	enum sl_dir dir;
};

struct sl_metrics_val {
	__u64 packets;
	__u64 bytes;
};

/* ---- events (ring buffer sl_events, read by the agent for `sluice monitor`) ------------ */

enum sl_event_type {
	SL_EVENT_DROP = 1,		/* a packet was dropped; reason says why (policy drops name the policy) */
	SL_EVENT_POLICY_VERDICT = 2,	/* a policy allowed a new flow */
	SL_EVENT_TRACE = 3,		/* a packet was forwarded (only while sl_monitor says trace) */
};

/* One record of sl_events. Addresses and ports as in the packet (network byte order). */
struct sl_event {
	__u64 timestamp;	/* bpf_ktime_get_ns() */
	enum sl_event_type type;
	enum sl_reason reason;	/* SL_REASON_UNSPEC for policy verdicts */
	enum sl_dir dir;
	__u8 protocol;		/* IP protocol; 0 when the packet is not IPv4 */
	__u8 pad[3];
	__u32 ifindex;		/* the device the program ran on */
	sl_ipv4_t saddr;
	sl_ipv4_t daddr;
	__be16 sport;		/* TCP/UDP/SCTP ports; 0 for other protocols and fragments */
	__be16 dport;
	__u32 src_identity;	/* security identities when the program knew them, else 0 */
	__u32 dst_identity;
	__u32 policy;		/* the deciding policy's id (0: none) */
	__u32 len;		/* packet length */
};

/* sl_monitor: event settings (one entry, key 0), written by the agent. */
struct sl_monitor_config {
	__u32 trace;		/* 1: a trace event for every forwarded packet */
	__u32 rate;		/* events per second per CPU; 0: SL_EVENT_DEFAULT_RATE */
};

/* sl_monitor_st: per-CPU rate-limit state and event counters (one entry, key 0). */
struct sl_monitor_state {
	__u64 last;		/* bpf_ktime_get_ns() of the last refill */
	__u64 tokens;		/* events that may still be sent */
	__u64 sent;		/* events written to sl_events */
	__u64 rate_limited;	/* events not sent: over the rate */
	__u64 ring_full;	/* events lost: the ring buffer was full */
};

/* ---- NAT (lib/nat.h: the engine; lib/masq.h: masquerade) -------------------------------- */

/*
 * sl_nat: translations (plain HASH, never evicted: docs/architecture.md, "Masquerade (SNAT)").
 * A translated flow is a pair of entries: the forward one keyed by the flow as the pod sends
 * it (dir SL_DIR_EGRESS), the reverse one by the reply as it arrives (dir SL_DIR_INGRESS).
 * ICMP echo: the identifier in both ports.
 */
struct sl_nat_key {
	sl_ipv4_t saddr;
	sl_ipv4_t daddr;
	__be16 sport;
	__be16 dport;
	__u8 protocol;
	__u8 dir;		/* enum sl_dir: egress the forward entry, ingress the reverse */
	__u8 pad[2];
};

enum sl_nat_flags {
	SL_NAT_F_NONE = 0,
	SL_NAT_F_SRC = 1,	/* addr/port replace the packet's source (else its destination) */
	SL_NAT_F_MASQ = 2,	/* made by masquerade */
	SL_NAT_F_RESET = 4,	/* reverse entry: the pod reset the flow (TCP RST): a new flow may take the port at once */
	SL_NAT_F_SVC = 8,	/* made by the service stage: forward rewrites the destination to a backend, reverse the source back */
	SL_NAT_F_HAIRPIN = 16,	/* a service flow from its own backend: the source is the pod's gateway address too */
};

/* struct sl_ct_entry.nat: the translation a flow is under. */
enum sl_ct_nat {
	SL_CT_NAT_NONE = 0,
	SL_CT_NAT_SERVICE = 1,	/* the client sent it to a service frontend: replies are translated back (sl_nat) */
};

struct sl_nat_entry {
	__u64 expires;		/* bpf_ktime_get_ns() after which the entry is dead (the agent collects pairs) */
	__u64 packets;
	__u64 bytes;
	sl_ipv4_t addr;		/* the address written into the packet */
	__be16 port;		/* the port (ICMP echo: identifier) written into the packet */
	__u8 flags;		/* enum sl_nat_flags */
	__u8 state;		/* enum sl_ct_state */
};

enum sl_masq_flags {
	SL_MASQ_F_NONE = 0,
	SL_MASQ_F_ON = 1,	/* masquerade pods' packets to the world */
};

/* sl_masq: the masquerade settings (one entry, key 0), written by the routing feature. */
struct sl_masq_config {
	sl_ipv4_t addr;		/* the address pods' packets leave with (the uplink's) */
	__u16 port_min;		/* the source port range, host byte order, inclusive */
	__u16 port_max;
	__u32 flags;		/* enum sl_masq_flags */
};

/* sl_nonmasq: destinations never masqueraded (LPM trie): the pool and nonMasqueradeCIDRs. */
struct sl_nonmasq_key {
	__u32 prefixlen;
	sl_ipv4_t addr;
};

struct sl_nonmasq_entry {
	__u32 flags;
};

/* ---- prefilter (bpf/xdp_prefilter.c, src/prefilter/) ---------------------------------- */

/* sl_prefilter: an LPM trie of denied source CIDRs. The layout is the kernel's LPM key. */
struct sl_prefilter_key {
	__u32 prefixlen;	/* 0..32 */
	sl_ipv4_t addr;		/* the network, host bits zero */
};

enum sl_prefilter_flags {
	SL_PF_F_NONE = 0,
};

struct sl_prefilter_rule {
	__u32 id;		/* the rule's id in the store (prefilter/<cidr>): the key of its counters */
	__u32 flags;		/* enum sl_prefilter_flags */
};

/* sl_prefilter_ct: per-CPU packets and bytes dropped per rule. */
struct sl_prefilter_ct_key {
	__u32 id;		/* struct sl_prefilter_rule.id */
};

struct sl_prefilter_ct {
	__u64 packets;
	__u64 bytes;		/* whole frames as XDP sees them: Ethernet (and VLAN tags) included */
};

/* ---- end of prefilter ------------------------------------------------------------------ */

/* ---- services (lib/service.h; docs/architecture.md, "Services") ------------------------- */

/* sl_svc: a service frontend (ClusterIP, external IP, a NodePort on a node address). */
struct sl_svc_key {
	sl_ipv4_t addr;
	__be16 port;
	__u8 protocol;		/* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;
};

enum sl_svc_flags {
	SL_SVC_F_NONE = 0,
	SL_SVC_F_NODEPORT = 1,	/* a NodePort on one of the node's addresses */
	SL_SVC_F_EXTERNAL = 2,	/* an external IP */
	SL_SVC_F_LOCAL = 4,	/* traffic policy Local: the backends are this node's only */
};

struct sl_svc_entry {
	__u32 rev;		/* the backend set: sl_svc_be keys (rev, 0..count-1); a new set gets a new rev */
	__u16 count;		/* backends (0: the service refuses: ICMP port unreachable) */
	__u16 flags;		/* enum sl_svc_flags */
	__u32 affinity;		/* sessionAffinity ClientIP: seconds a client keeps its backend (0: none) */
	__u32 id;		/* the frontend's number, for listings and events */
};

/* sl_svc_be: a backend of a set. */
struct sl_svc_be_key {
	__u32 rev;
	__u32 slot;
};

struct sl_svc_backend {
	sl_ipv4_t addr;
	__be16 port;
	__u16 pad;
};

/* sl_svc_aff: a client's backend under sessionAffinity ClientIP (LRU: soft state). */
struct sl_svc_aff_key {
	sl_ipv4_t client;
	sl_ipv4_t addr;		/* the frontend */
	__be16 port;
	__u8 protocol;
	__u8 pad;
};

struct sl_svc_aff {
	__u64 expires;		/* bpf_ktime_get_ns() */
	sl_ipv4_t addr;		/* the backend */
	__be16 port;
	__u16 pad;
};

#endif /* SLUICE_TYPES_H */
