/**
 * The pieces of one node that commands and the agent share: its config, its store, its
 * address pool and its endpoint manager. Whoever opens a node closes it.
 */
import { storeTls, type Config } from '../config/config.js';
import { EndpointManager } from '../endpoint/manager.js';
import { Pool } from '../ipam/pool.js';
import { openStore } from '../store/open.js';
import type { Store } from '../store/types.js';

export interface NodeHandle {
  cfg: Config;
  store: Store;
  pool: Pool;
  manager: EndpointManager;
  close(): Promise<void>;
}

export interface OpenNodeOptions {
  /** Bound of each store operation (default 5000 ms). */
  storeTimeoutMs?: number;
}

export async function openNode(cfg: Config, o: OpenNodeOptions = {}): Promise<NodeHandle> {
  const store = await openStore(cfg.store, { stateDir: cfg.stateDir, tls: storeTls(cfg), timeoutMs: o.storeTimeoutMs });
  const pool = new Pool(store, { clusterCIDR: cfg.clusterCIDR, blockSize: cfg.blockSize }, cfg.nodeName);
  return { cfg, store, pool, manager: new EndpointManager(cfg, pool), close: () => store.close() };
}

/** Runs `fn` with the node open, closing it afterwards whatever happens. */
export async function withNode<T>(cfg: Config, fn: (n: NodeHandle) => Promise<T>, o: OpenNodeOptions = {}): Promise<T> {
  const n = await openNode(cfg, o);
  try {
    return await fn(n);
  } finally {
    await n.close();
  }
}
