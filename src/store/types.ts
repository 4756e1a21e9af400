/**
 * The store: one small interface over a key/value store with revisions, compare-and-swap
 * transactions, leases and watches. Two backends implement it: an embedded file store
 * (one node) and etcd (several nodes). IPAM, node registration and identities are built on
 * it and never see which backend they run on.
 *
 * Keys are strings under the store's prefix (the backends add it); values are strings
 * (callers store JSON). Every change bumps the store's revision; `modRevision` of a key is
 * the revision of its last change, 0 for a key that does not exist.
 */

export interface KeyValue {
  key: string;
  value: string;
  /** Revision of the key's last change. */
  modRevision: number;
  /** Lease the key is attached to (0: none). */
  lease: number;
}

/** A condition of a transaction: the key's modRevision must equal `modRevision` (0 = key absent). */
export interface Compare {
  key: string;
  modRevision: number;
}

export type TxnOp =
  | { op: 'put'; key: string; value: string; lease?: number }
  | { op: 'delete'; key: string };

export interface TxnResult {
  /** Whether every compare held (and so the ops were applied). */
  succeeded: boolean;
  /** The store revision after the transaction (or the current one if it failed). */
  revision: number;
}

export interface WatchEvent {
  type: 'put' | 'delete';
  key: string;
  /** The new value (put) or undefined (delete). */
  value: string | undefined;
  modRevision: number;
}

export interface Lease {
  id: number;
  ttlSeconds: number;
  /** Stops keep-alives and revokes the lease: its keys are deleted. */
  revoke(): Promise<void>;
  /** Stops keep-alives without revoking (the lease then expires after its TTL). */
  release(): void;
  /** Called when keep-alive fails and the lease is lost. */
  onLost(fn: (err: Error) => void): void;
}

export interface Unwatch {
  (): void;
}

export class StoreError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'StoreError';
  }
}

export interface Store {
  /** "file:/path" or "etcd://h:p,h:p/prefix", for messages and status. */
  readonly description: string;
  get(key: string): Promise<KeyValue | undefined>;
  /** Every key starting with `prefix`, in key order. */
  list(prefix: string): Promise<KeyValue[]>;
  /** Applies `ops` atomically if every compare holds. */
  txn(compares: readonly Compare[], ops: readonly TxnOp[]): Promise<TxnResult>;
  /** Unconditional put; returns the new revision. */
  put(key: string, value: string, lease?: number): Promise<number>;
  /** Unconditional delete; true when the key existed. */
  delete(key: string): Promise<boolean>;
  /** A lease with a TTL, kept alive until revoked or released. */
  grantLease(ttlSeconds: number): Promise<Lease>;
  /**
   * Calls `fn` for every change under `prefix` after revision `fromRevision` (default: now).
   * Events arrive in revision order.
   */
  watch(prefix: string, fn: (e: WatchEvent) => void, fromRevision?: number): Promise<Unwatch>;
  /** The current revision. */
  revision(): Promise<number>;
  close(): Promise<void>;
}
