/**
 * What a part of the agent beyond endpoints plugs in with (routes and tunnels, the
 * prefilter, policy, …): work at start, a share of every reconciliation, API routes, work
 * at stop. Features are listed in features.ts and run in that order.
 */
import type { Config } from '../config/config.js';
import type { Endpoint } from '../endpoint/types.js';
import type { IpcacheEntry } from '../maps/ipcache.js';
import type { NodeHandle } from '../node/context.js';
import type { InitResult } from '../node/node.js';
import type { FeatureReport, MapSyncReport } from '../api/types.js';

export type { FeatureReport, MapSyncReport };
import type { Registry } from './metrics.js';
import type { Route } from './server.js';

/**
 * A feature's share of sl_ipcache, with the fingerprint of what it was computed from: equal
 * fingerprints mean equal entries, so the routing feature need not hash 50,000 entries to
 * know nothing changed.
 */
export interface IpcacheContribution {
  entries: ReadonlyMap<string, IpcacheEntry>;
  fingerprint: string;
}

export interface AgentContext {
  cfg: Config;
  node: NodeHandle;
  init: InitResult;
  registry: Registry;
  log(line: string): void;
  /** Asks for a reconciliation soon (debounced). */
  scheduleReconcile(why: string): void;
  /**
   * ipcache entries features contribute besides the routing plan, by source (e.g. pod /32s
   * with their identities, CIDR identities, the node's own addresses). The routing feature
   * writes the union; an entry inside a remote pod block takes that block's path.
   */
  ipcache: Map<string, IpcacheContribution>;
  /**
   * How old the last read-back of a map a feature keeps in sync (sl_policy, sl_ipcache) may
   * get before a pass whose inputs did not change reads it back to repair drift (0: every
   * pass). See map-sync.ts.
   */
  driftCheckMs: number;
}

/** What started a reconciliation, as far as features care. */
export interface ReconcilePass {
  /**
   * Read the maps back and repair drift even though no check is due (the pass at start,
   * `sluice agent reconcile`). Otherwise a feature reads a map back only when its inputs
   * changed, the map changed size or was replaced, or the drift-check interval has passed.
   */
  driftCheck: boolean;
}

export interface AgentFeature {
  readonly name: string;
  /** After the datapath is loaded and endpoints reconciled, before the API is served. */
  start?(ctx: AgentContext): Promise<void>;
  /** Part of every reconciliation (after the endpoints'). */
  reconcile?(ctx: AgentContext, pass: ReconcilePass): Promise<FeatureReport>;
  routes?(ctx: AgentContext): Route[];
  /**
   * A new endpoint, before the datapath knows it (see EndpointAdmission): what its map entry
   * must carry. `ep` carries what the features before this one admitted (its identity).
   * `forget` when its add failed afterwards.
   */
  admit?(ctx: AgentContext, ep: Readonly<Endpoint>): Promise<{ identity?: number }>;
  forget?(ctx: AgentContext, ep: Readonly<Endpoint>): void;
  /** At SIGTERM: must leave the datapath as it is. */
  stop?(): Promise<void>;
}
