/**
 * Every map of the datapath, one module each (src/maps/<map>.ts), in the order of
 * include/sluice/maps.h. The C side defines the maps; this list is made of the modules that
 * read and write them, and a unit test holds it against the compiled objects (every map
 * they define is here, with the key and value types its module names).
 */
import { CT_MAP } from './ct.js';
import { ENDPOINTS_MAP } from './endpoints.js';
import { EVENTS_MAP } from './events.js';
import { IPCACHE_MAP } from './ipcache.js';
import type { MapDef } from './map.js';
import { MASQ_MAP, NONMASQ_MAP } from './masq.js';
import { METRICS_MAP } from './metrics.js';
import { MONITOR_MAP } from './monitor.js';
import { MONITOR_STATE_MAP } from './monitor-state.js';
import { NAT_MAP } from './nat.js';
import { NODE_MAP } from './node.js';
import { NODES_MAP } from './nodes.js';
import { POLICY_MAP } from './policy.js';
import { POLICY_CIDR_MAP } from './policy-cidr.js';
import { POLICY_STATS_MAP } from './policy-stats.js';
import { PREFILTER_MAP } from './prefilter.js';
import { PREFILTER_COUNTERS_MAP } from './prefilter-counters.js';
import { SVC_AFFINITY_MAP, SVC_BACKENDS_MAP, SVC_MAP } from './services.js';

export const MAPS: readonly MapDef[] = [
  ENDPOINTS_MAP, METRICS_MAP, IPCACHE_MAP, NODE_MAP, NODES_MAP, EVENTS_MAP, MONITOR_MAP, MONITOR_STATE_MAP,
  PREFILTER_MAP, PREFILTER_COUNTERS_MAP, POLICY_MAP, POLICY_CIDR_MAP, POLICY_STATS_MAP, CT_MAP,
  NAT_MAP, MASQ_MAP, NONMASQ_MAP, SVC_MAP, SVC_BACKENDS_MAP, SVC_AFFINITY_MAP,
];

/** The maps whose fill the agent exports (sluice_map_entries, sluice_map_max_entries). */
export const FILL_WATCHED_MAPS: readonly MapDef[] = MAPS.filter((m) => m.watchFill);
