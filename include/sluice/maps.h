/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every map of the datapath, defined once. Each program object includes this file;
 * pinning by name under the node's pin root makes all objects share one instance
 * of each map, and makes a reload keep the maps' contents.
 */
#ifndef SLUICE_MAPS_H
#define SLUICE_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "types.h"

#ifndef SL_MAX_ENDPOINTS
#define SL_MAX_ENDPOINTS 65536
#endif

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sl_endpoint_key);
	__type(value, struct sl_endpoint);
	__uint(max_entries, SL_MAX_ENDPOINTS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct sl_metrics_key);
	__type(value, struct sl_metrics_val);
	__uint(max_entries, 1024);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_metrics SEC(".maps");

#ifndef SL_MAX_IPCACHE
#define SL_MAX_IPCACHE 65536
#endif

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct sl_ipcache_key);
	__type(value, struct sl_ipcache_entry);
	__uint(max_entries, SL_MAX_IPCACHE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_ipcache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct sl_node_config);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_node SEC(".maps");

#ifndef SL_MAX_NODES
#define SL_MAX_NODES 16384
#endif

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sl_nodes_key);
	__type(value, struct sl_nodes_entry);
	__uint(max_entries, SL_MAX_NODES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_nodes SEC(".maps");

/* ---- events --------------------------------------------------------------------------- */

#ifndef SL_EVENTS_BYTES
#define SL_EVENTS_BYTES (1 << 20)
#endif

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SL_EVENTS_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct sl_monitor_config);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_monitor SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct sl_monitor_state);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_monitor_st SEC(".maps");

/* ---- prefilter (bpf/xdp_prefilter.c, src/prefilter/) ---------------------------------- */

#ifndef SL_MAX_PREFILTER
#define SL_MAX_PREFILTER 16384
#endif

/* Denied source CIDRs: longest prefix wins. LPM tries must not be preallocated. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct sl_prefilter_key);
	__type(value, struct sl_prefilter_rule);
	__uint(max_entries, SL_MAX_PREFILTER);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_prefilter SEC(".maps");

/* What each rule dropped, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct sl_prefilter_ct_key);
	__type(value, struct sl_prefilter_ct);
	__uint(max_entries, SL_MAX_PREFILTER);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_prefilter_ct SEC(".maps");

/* ---- end of prefilter ------------------------------------------------------------------ */

#ifndef SL_MAX_POLICY
#define SL_MAX_POLICY 262144
#endif
#ifndef SL_MAX_CT
#define SL_MAX_CT 262144
#endif

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct sl_policy_key);
	__type(value, struct sl_policy_entry);
	__uint(max_entries, SL_MAX_POLICY);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct sl_ipcache_key);
	__type(value, struct sl_policy_cidr_entry);
	__uint(max_entries, SL_MAX_IPCACHE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_policy_cidr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct sl_policy_stats_key);
	__type(value, struct sl_metrics_val);
	__uint(max_entries, 16384);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_policy_st SEC(".maps");

/* Layout 2 (a map's name carries its layout from the second on: docs/architecture.md). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sl_ct_key);
	__type(value, struct sl_ct_entry);
	__uint(max_entries, SL_MAX_CT);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_ct_v2 SEC(".maps");

/* ---- NAT (lib/nat.h, lib/masq.h) ------------------------------------------------------ */

#ifndef SL_MAX_NAT
#define SL_MAX_NAT 131072	/* entries: two per translated flow */
#endif
#ifndef SL_MAX_NONMASQ
#define SL_MAX_NONMASQ 1024
#endif

/*
 * A plain HASH, preallocated: the kernel never evicts an entry (an LRU would evict one entry
 * of a pair without the other); a full table fails creation (drop_nat_table_full). The agent
 * collects expired pairs.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sl_nat_key);
	__type(value, struct sl_nat_entry);
	__uint(max_entries, SL_MAX_NAT);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_nat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct sl_masq_config);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_masq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct sl_nonmasq_key);
	__type(value, struct sl_nonmasq_entry);
	__uint(max_entries, SL_MAX_NONMASQ);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_nonmasq SEC(".maps");

/* ---- services (lib/service.h) --------------------------------------------------------- */
#ifndef SL_MAX_SVC
#define SL_MAX_SVC 65536	/* frontends: 10,000 services of a few ports, their external IPs and NodePorts */
#endif
#ifndef SL_MAX_SVC_BE
#define SL_MAX_SVC_BE 262144	/* backends of every set, two sets of a frontend while it changes */
#endif
#ifndef SL_MAX_SVC_AFF
#define SL_MAX_SVC_AFF 65536
#endif

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sl_svc_key);
	__type(value, struct sl_svc_entry);
	__uint(max_entries, SL_MAX_SVC);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_svc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sl_svc_be_key);
	__type(value, struct sl_svc_backend);
	__uint(max_entries, SL_MAX_SVC_BE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_svc_be SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sl_svc_aff_key);
	__type(value, struct sl_svc_aff);
	__uint(max_entries, SL_MAX_SVC_AFF);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_svc_aff SEC(".maps");

#endif /* SLUICE_MAPS_H */
