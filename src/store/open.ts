/** Opens the store a spec names (see spec.ts for the forms, tls.ts for etcds://). */
import { join } from 'node:path';
import { FileStore } from './file.js';
import { parseStoreSpec } from './spec.js';
import { loadTls, tlsProblem, type StoreTlsFiles } from './tls.js';
import { StoreError, type Store } from './types.js';

export { parseStoreSpec, DEFAULT_ETCD_PORT, type StoreSpec } from './spec.js';
export type { StoreTlsFiles } from './tls.js';

export interface OpenStoreOptions {
  /** The node's state directory: the file store lives in <stateDir>/store. */
  stateDir: string;
  /** Bound of every store operation (default 5000 ms). */
  timeoutMs?: number;
  /** CA, client certificate and key of an etcds:// store (config keys storeCA, storeCert, storeKey). */
  tls?: StoreTlsFiles;
}

/**
 * Opens the store of `spec`; the caller closes it. TLS files that do not fit the spec, or
 * that cannot be read, are an error before anything connects.
 */
export async function openStore(spec: string, o: OpenStoreOptions): Promise<Store> {
  const s = parseStoreSpec(spec);
  const files = o.tls ?? {};
  const problem = tlsProblem(s.kind === 'etcd' && s.tls, files);
  if (problem) throw new StoreError(`store ${spec}: ${problem.key}: ${problem.problem}`);
  if (s.kind === 'file') return new FileStore(s.path ?? join(o.stateDir, 'store'), { timeoutMs: o.timeoutMs });
  const tls = s.tls ? loadTls(files) : undefined;
  // Loaded only when needed: the etcd client (gRPC) costs every CLI call ~0.3 s of start-up.
  const { EtcdStore } = await import('./etcd.js');
  return new EtcdStore({ endpoints: s.endpoints, prefix: s.prefix, timeoutMs: o.timeoutMs, ...(tls ? { tls } : {}) });
}
