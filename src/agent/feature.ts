/**
 * What a part of the agent beyond endpoints plugs in with (routes and tunnels, the
 * prefilter, policy, …): work at start, a share of every reconciliation, API routes, work
 * at stop. Features are listed in features.ts and run in that order.
 */
import type { Config } from '../config/config.js';
import type { IpcacheEntry } from '../datapath/ipcache.js';
import type { NodeHandle } from '../node/context.js';
import type { InitResult } from '../node/node.js';
import type { Registry } from './metrics.js';
import type { Route } from './server.js';

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
  ipcache: Map<string, Map<string, IpcacheEntry>>;
}

export interface FeatureReport {
  /** What was changed, for the log and the report. */
  changed: string[];
  /** What could not be done (tried again next time). */
  problems: string[];
}

export interface AgentFeature {
  readonly name: string;
  /** After the datapath is loaded and endpoints reconciled, before the API is served. */
  start?(ctx: AgentContext): Promise<void>;
  /** Part of every reconciliation (after the endpoints'). */
  reconcile?(ctx: AgentContext): Promise<FeatureReport>;
  routes?(ctx: AgentContext): Route[];
  /** At SIGTERM: must leave the datapath as it is. */
  stop?(): Promise<void>;
}
