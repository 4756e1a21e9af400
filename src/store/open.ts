/** Opens the store a spec names (see spec.ts for the forms). */
import { join } from 'node:path';
import { FileStore } from './file.js';
import { parseStoreSpec } from './spec.js';
import type { Store } from './types.js';

export { parseStoreSpec, DEFAULT_ETCD_PORT, type StoreSpec } from './spec.js';

export interface OpenStoreOptions {
  /** The node's state directory: the file store lives in <stateDir>/store. */
  stateDir: string;
  /** Bound of every store operation (default 5000 ms). */
  timeoutMs?: number;
}

/** Opens the store of `spec`; the caller closes it. */
export async function openStore(spec: string, o: OpenStoreOptions): Promise<Store> {
  const s = parseStoreSpec(spec);
  if (s.kind === 'file') return new FileStore(s.path ?? join(o.stateDir, 'store'), { timeoutMs: o.timeoutMs });
  // Loaded only when needed: the etcd client (gRPC) costs every CLI call ~0.3 s of start-up.
  const { EtcdStore } = await import('./etcd.js');
  return new EtcdStore({ endpoints: s.endpoints, prefix: s.prefix, timeoutMs: o.timeoutMs });
}
