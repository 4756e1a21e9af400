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

#endif /* SLUICE_MAPS_H */
