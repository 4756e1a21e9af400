/**
 * The node agent's API: the shapes exchanged on its `/v1/...` routes (HTTP + JSON on the
 * unix socket <runDir>/agent.sock). The agent serves them (src/agent/), the CLI, the CNI
 * plugin, the lab and the tests call them through AgentClient (client.ts). The CNI routes'
 * contract, as the plugin relies on it, is in src/cni/README.md.
 *
 * Only types: nothing here runs, so importing it costs the plugin nothing. Optional fields
 * are absent on the wire, never null, unless a type says null.
 */
import type { NamedEvent } from '../inspect/events.js';
import type { IpcacheEntry } from '../maps/ipcache.js';
import type { LoadedProgram } from '../datapath/loader.js';
import type { PodPort } from '../endpoint/ports.js';
import type { Endpoint } from '../endpoint/types.js';
import type { NodeRecord } from '../node/underlay.js';
import type { Peer } from '../routing/plan.js';
import type { Labels } from '../util/labels.js';

/** The body of every non-2xx answer. `code` is stable ("not_ready", "unknown_container", …). */
export interface ApiErrorBody {
  error: { code: string; message: string; details?: string };
}

// --- CNI: POST /v1/cni/{add,del,check,gc} -------------------------------------------------

export interface CniAddRequest {
  containerId: string;
  ifname: string;
  netns: string;
  podNamespace?: string;
  podName?: string;
  labels?: Labels;
  ports?: PodPort[];
}

/** What the agent says about an endpoint (POST /v1/cni/add → endpoint), as the plugin accepts it. */
export interface AgentEndpoint {
  id: number | string;
  name: string;
  ip: string;
  mac: string;
  ifname: string;
  netns: string;
  hostIfname: string;
  mtu: number;
}

/** The endpoint in the agent's CNI answers: the plugin's shape with a numeric id. */
export type CniEndpoint = AgentEndpoint & { id: number };

export interface CniAddResponse {
  endpoint: AgentEndpoint;
  gateway: string;
  podCIDR: string;
}

export interface CniDelRequest {
  containerId: string;
  ifname: string;
  netns?: string;
}

export interface CniDelResponse {
  deleted: boolean;
  endpoint?: AgentEndpoint;
}

export interface CniCheckRequest {
  containerId: string;
  ifname: string;
  netns?: string;
}

export interface CniCheckResponse {
  ok: boolean;
  problems?: string[];
  endpoint?: AgentEndpoint;
}

export interface CniAttachment {
  containerId: string;
  ifname: string;
}

export interface CniGcRequest {
  validAttachments: CniAttachment[];
}

export interface CniGcResponse {
  removed: (CniAttachment & { name: string; ip: string })[];
}

// --- the agent: GET /v1/status, POST /v1/reconcile ----------------------------------------

export interface AgentStatus {
  ready: boolean;
  reason?: string;
  node: string;
  podCIDR?: string;
  store?: string;
  pid: number;
  socket: string;
  /** host:port of the metrics endpoint, null when it is off. */
  metrics: string | null;
  endpoints: number;
  datapath?: { adopted: boolean; programs: LoadedProgram[] };
  lastReconcile: ReconcileReport | null;
}

/** Without `driftCheck: false` the pass reads sl_policy and sl_ipcache back and repairs them. */
export interface ReconcileRequest {
  driftCheck?: boolean;
}

export type ReconcileResponse = ReconcileReport;

// --- endpoints: GET /v1/endpoints, POST /v1/endpoints/{add,label,del,check} ---------------

export interface EndpointAddRequest {
  netns: string;
  name?: string;
  ip?: string;
  ifname?: string;
  labels?: Labels;
  ports?: PodPort[];
}

/** An endpoint by id or "namespace/name" (del, check). */
export interface EndpointRefRequest {
  ref: string;
}

/** kubectl-style label changes: `set` sets or overwrites, `remove` removes. */
export interface EndpointLabelRequest {
  ref: string;
  set?: Labels;
  remove?: string[];
}

/** The answer of add, label and del. */
export interface EndpointResponse {
  endpoint: Endpoint;
}

export interface EndpointListResponse {
  endpoints: Endpoint[];
}

export interface EndpointCheckResponse {
  ok: boolean;
  problems: string[];
  endpoint: Endpoint;
}

// --- routing: GET /v1/nodes, GET /v1/ipcache ----------------------------------------------

/** A node's record as this node's agent sees it: whether its agent is alive, how its pods are reached. */
export interface NodeRow extends NodeRecord {
  agentAlive: boolean;
  /** "local", a peer path ("tunnel", "direct", "unreachable") or "unknown". */
  path: string;
  reason?: string;
}

export interface NodesResponse {
  self: string;
  mode: string;
  nodes: NodeRow[];
  /** Pod blocks reached through routes a routing daemon put in the kernel's table. */
  kernelRoutes: Peer[];
}

export interface IpcacheResponse {
  /** By prefix ("10.244.1.0/24"). */
  entries: Record<string, IpcacheEntry>;
}

// --- the prefilter: GET /v1/prefilter, POST /v1/prefilter/{add,del} -----------------------
// The answers are src/prefilter/service.ts's PrefilterList, PrefilterAddResult and PrefilterDelResult.

export interface PrefilterRequest {
  cidrs: string[];
}

// --- events: GET /v1/monitor?type=…&pod=NS/NAME (one JSON document per line) ---------------

/** One line of the stream. */
export type MonitorLine = NamedEvent | LostEvents;

/** Events the datapath's rate limit, a full ring buffer or the agent's backlog kept out since the last line. */
export interface LostEvents {
  time: string;
  node: string;
  type: 'lost';
  rateLimited: number;
  ringFull: number;
  agentBacklog: number;
}

// --- the reconcile report: GET /v1/status (lastReconcile), POST /v1/reconcile -------------
// What a pass did; the agent fills it (agent/reconcile.ts, each feature, agent/map-sync.ts).

export type SyncAction = 'skip' | 'apply' | 'verify';

export interface SyncDecision {
  action: SyncAction;
  /** Why, for the report and the log. */
  reason: string;
}

/** What a pass did with a map it keeps in sync. */
export interface MapSyncReport extends SyncDecision {
  /** Entries written (new or different) and deleted (stale) after the read-back; a verify's are drift repaired. */
  written?: number;
  removed?: number;
}

export interface FeatureReport {
  /** What was changed, for the log and the report. */
  changed: string[];
  /** What could not be done (tried again next time). */
  problems: string[];
  /** By map: whether the pass skipped it, applied new inputs or read it back for drift. */
  sync?: Record<string, MapSyncReport>;
}

export interface ReconcileReport {
  /** Interrupted adds and deletes finished. */
  finished: string[];
  /** Endpoints whose pod is gone, removed. */
  collected: string[];
  /** Map entries rewritten. */
  repairedEntries: string[];
  /** Endpoints whose programs were re-attached. */
  reattached: string[];
  /** Addresses whose store record was lost and was written again. */
  reclaimed: string[];
  /** Map entries without an endpoint, deleted. */
  staleEntries: string[];
  /** Store allocations without an endpoint, released. */
  releasedHandles: string[];
  /** Devices and link pins without an endpoint, removed. */
  strays: string[];
  /** What could not be repaired (tried again next time). */
  problems: string[];
  endpoints: number;
  durationMs: number;
  /** What each agent feature changed or could not do. */
  features: Record<string, FeatureReport>;
}
