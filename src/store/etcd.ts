/**
 * The etcd store (several nodes), on the `etcd3` client's low-level KV, Lease and Watch
 * APIs, so revisions come straight from etcd's response headers.
 *
 *  - Keys are prefixed with the configured prefix (default "/sluice/").
 *  - txn: a compare of modRevision 0 becomes `create_revision == 0` (the key is absent),
 *    any other `mod_revision == n`; etcd applies compares and ops atomically, so CAS is
 *    exactly etcd's.
 *  - Every unary call has a deadline (`timeoutMs`, default 5 s) for the whole operation.
 *    Reads (and puts, which are idempotent in effect) are retried within it on transient
 *    errors; txn, delete and lease grants only when the request cannot have reached etcd
 *    ("no connection established"), because a retried txn whose first attempt was applied
 *    would report a false conflict (and a delete a false "did not exist"). The client's own retry and
 *    circuit-breaker policies are turned off: the breaker made every call fail with
 *    "Execution prevented because the circuit breaker is open" for 5 s after an outage.
 *  - Leases: we choose the lease ID (random, below 2^53) because etcd's own IDs are
 *    63-bit and do not fit the interface's `number`. Keep-alive runs every TTL/3 (one
 *    keep-alive round trip per tick); a lease is reported lost when etcd says it is gone
 *    or when no keep-alive was acknowledged for a whole TTL. etcd raises TTLs below its
 *    minimum (2 s with the default 1 s election timeout): `ttlSeconds` is the granted TTL.
 *  - TLS (etcds://): the client's `credentials` (CA, client certificate and key, read by
 *    tls.ts) and https:// hosts; grpc-js verifies etcd's certificate and that it names the
 *    host or address of the spec. A failed handshake (wrong CA, expired or misnamed server
 *    certificate, our client certificate refused, a plain-TCP server) is not retried: it
 *    fails the operation at once with what it most likely means (tlsCause).
 *  - Watches use the client's watcher (it reconnects by itself after an outage) with the
 *    resume revision pinned to the last delivered event, so no event is lost or repeated.
 */
import { randomBytes } from 'node:crypto';
import {
  ClientClosedError, Etcd3, EtcdLeaseInvalidError, GRPCDeadlineExceededError, GRPCUnavailableError, castGrpcError,
  isRecoverableError, type IKeyValue, type IOptions, type IRequestOp, type ICompare,
} from 'etcd3';
import {
  StoreError, type Compare, type KeyValue, type Lease, type Store, type TxnOp, type TxnResult, type Unwatch, type WatchEvent,
} from './types.js';
import { LeaseHandle } from './lease.js';
import { quietIpServernameWarning, type StoreTlsMaterial } from './tls.js';
import { tlsCause } from './tls-errors.js';

export interface EtcdStoreOptions {
  /** "host:port" of every member. */
  endpoints: string[];
  /** Key prefix (default "/sluice/"). */
  prefix?: string;
  /** Bound of every operation (default 5000 ms). */
  timeoutMs?: number;
  /** Speak TLS (etcds://) with these (tls.ts reads them). */
  tls?: StoreTlsMaterial;
}

import { DEFAULT_ETCD_PREFIX } from './spec.js';

export { DEFAULT_ETCD_PREFIX };

type FaultHandling = NonNullable<IOptions['faultHandling']>;
type Policy = NonNullable<FaultHandling['global']>;
type Backoff = NonNullable<FaultHandling['watchBackoff']>;
interface CallOpts {
  deadline: number;
}

/** A cockatiel policy that runs the call once (we retry, within the deadline, ourselves). */
const once = {
  execute: <T>(fn: (ctx: { signal: AbortSignal }) => PromiseLike<T> | T, signal?: AbortSignal): Promise<T> =>
    Promise.resolve().then(() => fn({ signal: signal ?? new AbortController().signal })),
} as unknown as Policy;

/** Watch reconnects: 100 ms doubling up to 1 s (the client's default goes up to 30 s). */
const backoff = (ms: number): Backoff => ({ duration: ms, next: () => backoff(Math.min(ms * 2, 1000)) }) as unknown as Backoff;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The first key after every key starting with `p` (etcd's range_end for a prefix). */
function prefixEnd(p: Buffer): Buffer {
  const end = Buffer.from(p);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // no upper bound
}

/** A lease ID in [1, 2^53): exact as a JS number, unlike the 63-bit IDs etcd picks. */
function randomLeaseId(): number {
  const n = Number(randomBytes(8).readBigUInt64BE() & ((1n << 53n) - 1n));
  return n === 0 ? 1 : n;
}

/** The request cannot have reached etcd: safe to retry even a write. */
function notSent(e: unknown): boolean {
  const m = (e as Error)?.message ?? '';
  return e instanceof GRPCUnavailableError && /No connection established|ECONNREFUSED|etcdserver: no leader/.test(m);
}

/** "No connection established. Last error: null": grpc-js knows no cause (yet). */
function noReason(e: Error): boolean {
  return /Last error: null\b/.test(e.message);
}

function tidy(message: string): string {
  return message.replace(/\.?\s*Resolution note:\s*$/, '').replace(/\.?\s*Last error: null\s*$/, '').replace(/Last error: Error: /, 'last error: ').trim();
}

/** What to check when etcd cannot be reached: the address is routed from the namespace the command runs in. */
const REACH_HINT = '; check that this network namespace reaches the store (a lab\'s etcd is reachable only inside the lab: `sluice lab exec --node NODE -- sluice …`)';

export class EtcdStore implements Store {
  readonly description: string;
  readonly prefix: string;
  readonly endpoints: readonly string[];
  readonly timeoutMs: number;
  private readonly client: Etcd3;
  private readonly tls: StoreTlsMaterial | undefined;
  private closed = false;
  private readonly leases = new Set<LeaseHandle>();
  /** Stops of the open watches (resolve when etcd confirmed the cancel). */
  private readonly watches = new Set<() => Promise<void>>();

  constructor(o: EtcdStoreOptions) {
    if (o.endpoints.length === 0) throw new StoreError('etcd store: no endpoints');
    this.endpoints = [...o.endpoints];
    this.prefix = o.prefix ?? DEFAULT_ETCD_PREFIX;
    this.timeoutMs = o.timeoutMs ?? 5000;
    this.tls = o.tls;
    if (o.tls) quietIpServernameWarning();
    this.description = `${o.tls ? 'etcds' : 'etcd'}://${this.endpoints.join(',')}${this.prefix === '/' ? '/' : this.prefix.replace(/\/$/, '')}`;
    // Without a CA, grpc-js trusts the system's CAs (createSsl with no root certificates).
    const credentials = o.tls && (o.tls.ca || o.tls.cert)
      ? { rootCertificate: o.tls.ca as Buffer, ...(o.tls.cert ? { certChain: o.tls.cert, privateKey: o.tls.key } : {}) }
      : undefined;
    this.client = new Etcd3({
      hosts: this.endpoints.map((h) => `${o.tls ? 'https' : 'http'}://${h}`),
      ...(credentials ? { credentials } : {}),
      faultHandling: { host: () => once, global: once, watchBackoff: { next: () => backoff(100) } as unknown as Backoff },
      grpcOptions: {
        // Notice a dead connection (watch streams) without waiting for TCP timeouts.
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
      },
    });
  }

  private key(k: string): Buffer {
    return Buffer.from(this.prefix + k, 'utf8');
  }

  private unprefix(k: Buffer): string {
    return k.toString('utf8').slice(this.prefix.length);
  }

  private kv(kv: IKeyValue): KeyValue {
    return { key: this.unprefix(kv.key), value: kv.value.toString('utf8'), modRevision: Number(kv.mod_revision), lease: Number(kv.lease) };
  }

  /** A StoreError naming the store, the operation and why. */
  error(op: string, e: unknown, retries?: { previous: unknown; ms: number }): StoreError {
    if (e instanceof StoreError) return e;
    // A retry that ran into the deadline while connecting, or that failed to connect with
    // no reason given ("Last error: null"): the earlier error says more.
    if (retries?.previous instanceof GRPCUnavailableError
      && (e instanceof GRPCDeadlineExceededError || (e instanceof GRPCUnavailableError && noReason(e)))) e = retries.previous;
    let why: string;
    const tls = tlsCause(e, { tls: this.tls !== undefined, clientCert: this.tls?.clientSubject });
    if (this.closed || e instanceof ClientClosedError) why = 'the store is closed';
    else if (tls) why = tls.why;
    else if (e instanceof GRPCDeadlineExceededError) why = `timed out after ${this.timeoutMs} ms (etcd did not answer)${REACH_HINT}`;
    else if (e instanceof GRPCUnavailableError) why = `etcd unavailable: ${tidy(e.message)}${REACH_HINT}`;
    else if (/\bUNIMPLEMENTED\b|HTTP status code/.test((e as Error)?.message ?? '')) why = `what answered is not etcd: ${tidy((e as Error).message)}${REACH_HINT}`;
    else if (e instanceof EtcdLeaseInvalidError) why = 'lease not found (expired or revoked)';
    else why = tidy((e as Error)?.message ?? String(e));
    if (retries && !(e instanceof GRPCDeadlineExceededError) && !tls?.permanent) why += ` (gave up after ${retries.ms} ms of retries)`;
    return new StoreError(`${this.description}: ${op} failed: ${why}`, e);
  }

  private checkOpen(op: string): void {
    if (this.closed) throw new StoreError(`${this.description}: ${op} failed: the store is closed`);
  }

  /**
   * Runs one etcd call with a deadline for the whole operation, retrying transient
   * failures within it (reads always; writes only when the request was never sent).
   */
  private async call<T>(op: string, idempotent: boolean, fn: (o: CallOpts) => Promise<T>): Promise<T> {
    this.checkOpen(op);
    const start = Date.now();
    const deadline = start + this.timeoutMs;
    let delay = 50;
    let previous: unknown;
    for (;;) {
      try {
        return await fn({ deadline });
      } catch (e) {
        const retry = !this.closed && !tlsCause(e, { tls: this.tls !== undefined })?.permanent
          && (idempotent ? isRecoverableError(e as Error) : notSent(e));
        const left = deadline - Date.now();
        if (!retry || left <= 0) {
          throw this.error(op, e, previous === undefined ? undefined : { previous, ms: Date.now() - start });
        }
        if (previous === undefined || !(e instanceof GRPCUnavailableError && noReason(e))) previous = e;
        // The last wait ends at the deadline, and the last attempt is made there: an
        // unreachable etcd fails the operation at its deadline, not up to 500 ms before.
        await sleep(Math.min(delay, left));
        delay = Math.min(delay * 2, 500);
      }
    }
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const res = await this.call('get', true, (o) => this.client.kv.range({ key: this.key(key) }, o));
    const kv = res.kvs[0];
    return kv && this.kv(kv);
  }

  async list(prefix: string): Promise<KeyValue[]> {
    const start = this.key(prefix);
    const res = await this.call('list', true, (o) => this.client.kv.range({ key: start, range_end: prefixEnd(start) }, o));
    return res.kvs.map((kv) => this.kv(kv)); // etcd returns a range in key order
  }

  async revision(op = 'revision'): Promise<number> {
    const res = await this.call(op, true, (o) => this.client.kv.range({ key: this.key(''), count_only: true }, o));
    return Number(res.header.revision);
  }

  async txn(compares: readonly Compare[], ops: readonly TxnOp[]): Promise<TxnResult> {
    const seen = new Set<string>();
    for (const o of ops) {
      if (seen.has(o.key)) throw new StoreError(`${this.description}: txn failed: the key ${o.key} is changed twice in one transaction`);
      seen.add(o.key);
    }
    const compare: ICompare[] = compares.map((c) => (c.modRevision === 0
      ? { key: this.key(c.key), target: 'Create', result: 'Equal', create_revision: 0 }
      : { key: this.key(c.key), target: 'Mod', result: 'Equal', mod_revision: c.modRevision }));
    const success: IRequestOp[] = ops.map((o) => (o.op === 'put'
      ? { request_put: { key: this.key(o.key), value: Buffer.from(o.value, 'utf8'), ...(o.lease ? { lease: o.lease } : {}) } }
      : { request_delete_range: { key: this.key(o.key) } }));
    const res = await this.call('txn', false, (opts) => this.client.kv.txn({ compare, success, failure: [] }, opts));
    return { succeeded: res.succeeded, revision: Number(res.header.revision) };
  }

  async put(key: string, value: string, lease?: number): Promise<number> {
    // Applying a put twice leaves the same state: retried like a read.
    const res = await this.call(lease ? `put (lease ${lease})` : 'put', true,
      (o) => this.client.kv.put({ key: this.key(key), value: Buffer.from(value, 'utf8'), ...(lease ? { lease } : {}) }, o));
    return Number(res.header.revision);
  }

  async delete(key: string): Promise<boolean> {
    const res = await this.call('delete', false, (o) => this.client.kv.deleteRange({ key: this.key(key) }, o));
    return Number(res.deleted) > 0;
  }

  async grantLease(ttlSeconds: number): Promise<Lease> {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
      throw new StoreError(`${this.description}: grant lease failed: the TTL must be a whole number of seconds ≥ 1, not ${ttlSeconds}`);
    }
    for (let attempt = 1; ; attempt++) {
      const id = randomLeaseId();
      try {
        const res = await this.call('grant lease', false, (o) => this.client.leaseClient.leaseGrant({ ID: id, TTL: ttlSeconds }, o));
        const h = new EtcdLeaseHandle(this, Number(res.ID), Number(res.TTL));
        this.leases.add(h);
        return h;
      } catch (e) {
        // A random ID taken by another lease (2^-53 odds): pick another.
        if (attempt < 3 && /lease already exists/.test(String((e as StoreError).cause))) continue;
        throw e;
      }
    }
  }

  /** One keep-alive round trip; the lease's remaining TTL (0: it no longer exists). @internal */
  async keepAliveOnce(id: number, timeoutMs: number): Promise<number> {
    this.checkOpen('lease keep-alive');
    const stream = await this.client.leaseClient.leaseKeepAlive({ deadline: Date.now() + timeoutMs });
    return new Promise<number>((resolve, reject) => {
      stream.on('data', (res) => {
        resolve(Number(res.TTL));
        stream.end();
      });
      stream.on('error', (err: Error) => reject(castGrpcError(err)));
      stream.on('end', () => reject(new Error('keep-alive stream ended without an answer')));
      stream.write({ ID: id });
    });
  }

  /** @internal */
  async revokeLease(id: number): Promise<void> {
    try {
      await this.call('revoke lease', false, (o) => this.client.leaseClient.leaseRevoke({ ID: id }, o));
    } catch (e) {
      if ((e as StoreError).cause instanceof EtcdLeaseInvalidError) return; // already gone
      throw e;
    }
  }

  /** @internal */
  forgetLease(h: LeaseHandle): void {
    this.leases.delete(h);
  }

  async watch(prefix: string, fn: (e: WatchEvent) => void, fromRevision?: number): Promise<Unwatch> {
    const start = this.key(prefix);
    const from = fromRevision ?? await this.revision('watch');
    if (fromRevision !== undefined) {
      // etcd accepts a watch from a compacted revision and cancels it right after: ask first.
      try {
        await this.call('watch', true, (o) => this.client.kv.range({ key: start, range_end: prefixEnd(start), revision: from + 1, count_only: true }, o));
      } catch (e) {
        const m = String(((e as StoreError).cause as Error | undefined)?.message);
        if (/required revision has been compacted/.test(m)) {
          throw new StoreError(`${this.description}: watch failed: revision ${from} is compacted (etcd keeps the history after its last compaction)`, e);
        }
        if (!/required revision is a future revision/.test(m)) throw e;
      }
    }
    this.checkOpen('watch');
    const watcher = this.client.watch().inRange({ start, end: prefixEnd(start) }).startRevision(String(from + 1)).watcher();
    let active = true;
    /** etcd canceled the watch: the client dropped it already, a cancel request would crash it. */
    let canceledByEtcd = false;
    let delivered = from;
    // The client resumes after a reconnect from the last response header + 1; during a
    // catch-up from a past revision that skips events not yet delivered. Resume from the
    // last event we delivered instead (progress notifications, sent only to synced
    // watchers, may move it forward).
    const pin = () => {
      watcher.request.start_revision = String(delivered + 1);
    };
    watcher.on('put', (kv) => {
      if (!active) return;
      delivered = Math.max(delivered, Number(kv.mod_revision));
      fn({ type: 'put', key: this.unprefix(kv.key), value: kv.value.toString('utf8'), modRevision: Number(kv.mod_revision) });
    });
    watcher.on('delete', (kv) => {
      if (!active) return;
      delivered = Math.max(delivered, Number(kv.mod_revision));
      fn({ type: 'delete', key: this.unprefix(kv.key), value: undefined, modRevision: Number(kv.mod_revision) });
    });
    watcher.on('data', (res) => {
      if (res.events.length === 0 && !res.created) delivered = Math.max(delivered, Number(res.header.revision));
      pin();
    });
    watcher.on('connected', pin);

    const stop = async (): Promise<void> => {
      if (!active) return;
      active = false;
      this.watches.delete(stop);
      if (!canceledByEtcd) await watcher.cancel().catch(() => undefined);
    };
    this.watches.add(stop);
    const unwatch = () => {
      void stop();
    };
    watcher.on('error', () => {
      canceledByEtcd = true; // the client emits 'error' only for a watch etcd canceled
    });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new GRPCDeadlineExceededError('watch not established in time')), this.timeoutMs);
        watcher.once('connected', () => {
          clearTimeout(timer);
          resolve();
        });
        watcher.once('error', (err: Error) => {
          clearTimeout(timer);
          reject(err);
        });
      });
    } catch (e) {
      unwatch();
      throw this.error('watch', e);
    }
    // A watch that etcd cancels later (its revision compacted, ...) can only be reported.
    watcher.on('error', (err: Error) => {
      if (!active) return;
      unwatch();
      process.emitWarning(`${this.description}: watch of ${JSON.stringify(prefix)} stopped by etcd: ${tidy(err.message).replace(/:$/, '')}`, 'StoreWarning');
    });
    return unwatch;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const l of [...this.leases]) l.release();
    const cancels = [...this.watches].map((stop) => stop());
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(cancels), new Promise<void>((r) => (timer = setTimeout(r, 1000)))]);
    clearTimeout(timer);
    this.closed = true;
    this.client.close();
  }
}

/** A lease of the etcd store: keep-alive is one round trip on a LeaseKeepAlive stream. */
class EtcdLeaseHandle extends LeaseHandle<EtcdStore> {
  protected override async keepAlive(): Promise<boolean> {
    return (await this.store.keepAliveOnce(this.id, Math.min(this.store.timeoutMs, (this.ttlSeconds * 1000) / 3))) > 0;
  }

  protected override staleError(e: unknown): StoreError {
    return new StoreError(`${this.store.description}: lease ${this.id} was lost: no keep-alive acknowledged for ${this.ttlSeconds} s (${this.store.error('lease keep-alive', e).message})`, e);
  }
}
