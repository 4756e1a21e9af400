/**
 * The embedded file store: the whole store of one node in one JSON file, shared by every
 * sluice process of the node (the agent, CLI commands).
 *
 *   <dir>/store.json   {format, stamp, revision, compacted, nextLease, keys, leases, events}
 *   <dir>/store.lock   flock(2) target; never replaced, so the lock survives the renames
 *
 * Every change is a read-modify-write of store.json under an exclusive flock on
 * store.lock, written with tmp + fsync + rename + fsync(dir): a crash at any point leaves
 * either the old or the new file, and a compare-and-swap is exact because the compare and
 * the write happen under the same lock, on a file read after the lock was taken. The
 * critical section is synchronous (no await inside), so two store instances of one
 * process never interleave either. Reads take no lock (the file is only ever replaced
 * whole); only when they find an expired lease do they take the lock to remove it.
 * File format, parsing and the per-write stamp: src/store/file-doc.ts.
 *
 * Parse cache (src/store/file-cache.ts): an instance keeps the document it last parsed
 * or wrote, with the file's identity (fstat dev, ino, size, mtimeNs, and the write's
 * random stamp in the first bytes), and reuses it while store.json is that same file:
 * a read of an unchanged 11 MB store costs an open, an fstat and a 128-byte pread instead
 * of a ~45-200 ms JSON.parse. Reads under the lock (read-modify-write) use it too; the
 * identity is checked on the file opened after the lock was taken, so a compare-and-swap
 * stays exact. The cached document is shared and read-only (DocView); a change works on
 * a copy (Changes: the key map copied on the first put/delete only, leases and the
 * bounded history copied whole, entries replaced and never changed in place), and the
 * written document becomes the cached one.
 *
 * Leases carry an absolute expiry (wall clock, ms). A lease's keep-alive timer (TTL/3)
 * extends it; expired leases and their keys are removed, as one revision with delete
 * events, by the next access from any process. A keep-alive is a read-modify-write of
 * the whole file: with the cache it no longer parses, but it still serializes and writes
 * the whole store (leases live in store.json so that an expiry and the deletion of its
 * keys are one atomic rename).
 *
 * Permissions: store.json and store.lock are mode 0600 (the store holds the cluster's
 * state: only root reads or changes it), and a store directory that anyone may write to
 * is refused (checkDirSafety), as is one in a parent anyone may write to without the
 * sticky bit (anyone could move the store directory away and put another in its place).
 *
 * Watches: changes made through this instance are delivered at once (in a microtask);
 * changes made by other processes (or other instances) are found by a poll (default
 * 150 ms: a stat of store.json, a read only when it changed) and taken from the bounded
 * event history kept in the file (default last 1000 events). If a watcher fell further
 * behind than the history, it gets the difference between the last state it saw and the
 * current one instead (intermediate values are lost, the final state is exact).
 */
import { readdirSync, statSync, unlinkSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from '../util/fsatomic.js';
import { lockFile, type FileLock } from '../util/lock.js';
import { CorruptFileError, DocCache } from './file-cache.js';
import { newStamp, serializeDoc, type DocView, type FileEvent, type FileKey, type FileLease } from './file-doc.js';
import { LeaseHandle } from './lease.js';
import {
  StoreError, type Compare, type KeyValue, type Lease, type Store, type TxnOp, type TxnResult, type Unwatch, type WatchEvent,
} from './types.js';

export interface FileStoreOptions {
  /** How long an operation waits for the lock held by another process (default 5000 ms). */
  timeoutMs?: number;
  /** Poll interval for changes made by other processes (default 150 ms). */
  pollMs?: number;
  /** Events kept in the file for watches from a past revision (default 1000). */
  historyLimit?: number;
}

const STORE_FILE = 'store.json';
const LOCK_FILE = 'store.lock';
const TMP_RE = /^store\.json\.\d+\.tmp$/;

/** Key order of etcd: bytewise on UTF-8 (differs from JS string order above U+FFFF). */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * Changes to a document, each group of them one revision (like one etcd write). The
 * document read is shared (the parse cache) and never changed: the changes go to a copy,
 * made copy-on-write for the key map (50,000 entries must not be copied by a keep-alive)
 * and whole for the small parts (leases, the bounded history). Entries are replaced,
 * never changed in place, so the copies share the unchanged ones.
 */
class Changes implements DocView {
  dirty = false;
  private rev = 0;
  revision: number;
  compacted: number;
  nextLease: number;
  private keyMap: ReadonlyMap<string, Readonly<FileKey>>;
  private ownKeys = false;
  readonly leases: Map<number, Readonly<FileLease>>;
  private eventList: Readonly<FileEvent>[];

  constructor(base: DocView) {
    this.revision = base.revision;
    this.compacted = base.compacted;
    this.nextLease = base.nextLease;
    this.keyMap = base.keys;
    this.leases = new Map(base.leases);
    this.eventList = [...base.events];
  }

  get keys(): ReadonlyMap<string, Readonly<FileKey>> {
    return this.keyMap;
  }

  get events(): readonly Readonly<FileEvent>[] {
    return this.eventList;
  }

  private writableKeys(): Map<string, Readonly<FileKey>> {
    if (!this.ownKeys) {
      this.keyMap = new Map(this.keyMap);
      this.ownKeys = true;
    }
    return this.keyMap as Map<string, Readonly<FileKey>>;
  }

  /** The changed document (a plain object: no accessors, nothing shared with this). */
  view(): DocView {
    return { revision: this.revision, compacted: this.compacted, nextLease: this.nextLease, keys: this.keyMap, leases: this.leases, events: this.eventList };
  }

  /** Starts a new revision: the changes until the next begin() share it. */
  begin(): void {
    this.rev = 0;
  }

  private bump(): number {
    if (this.rev === 0) this.rev = ++this.revision;
    this.dirty = true;
    return this.rev;
  }

  put(key: string, value: string, lease: number): void {
    const modRevision = this.bump();
    this.writableKeys().set(key, { value, modRevision, lease });
    this.eventList.push({ type: 'put', key, value, modRevision });
  }

  delete(key: string): boolean {
    if (!this.keyMap.has(key)) return false;
    const modRevision = this.bump();
    this.writableKeys().delete(key);
    this.eventList.push({ type: 'delete', key, modRevision });
    return true;
  }

  /** Sets lease `id` (a new object: the old one may be shared). No revision, like etcd. */
  setLease(id: number, l: FileLease): void {
    this.leases.set(id, l);
    this.dirty = true;
  }

  /** Removes leases that expired at `now` and their keys (one revision). */
  purgeExpired(now: number): void {
    const expired = [...this.leases].filter(([, l]) => l.expiresAt <= now).map(([id]) => id);
    if (expired.length === 0) return;
    this.begin();
    for (const id of expired) this.removeLease(id);
  }

  /** Removes lease `id` and deletes its keys (in the current revision); false if unknown. */
  removeLease(id: number): boolean {
    if (!this.leases.delete(id)) return false;
    this.dirty = true;
    const keys = [...this.keyMap].filter(([, v]) => v.lease === id).map(([k]) => k).sort(compareKeys);
    for (const k of keys) this.delete(k);
    return true;
  }

  trimHistory(limit: number): void {
    const ev = this.eventList;
    if (ev.length <= limit) return;
    let drop = ev.length - limit;
    const last = ev[drop - 1]!.modRevision;
    while (drop < ev.length && ev[drop]!.modRevision === last) drop++; // never keep half a revision
    this.eventList = ev.slice(drop);
    this.compacted = last;
  }
}

interface FileWatcher {
  prefix: string;
  fn: (e: WatchEvent) => void;
  /** Events up to this revision were queued. */
  lastRev: number;
  queue: WatchEvent[];
  scheduled: boolean;
  active: boolean;
}

const publicEvent = (e: Readonly<FileEvent>): WatchEvent => ({ type: e.type, key: e.key, value: e.type === 'put' ? e.value : undefined, modRevision: e.modRevision });

export class FileStore implements Store {
  readonly description: string;
  readonly dir: string;
  readonly file: string;
  private readonly lockPath: string;
  private readonly timeoutMs: number;
  private readonly pollMs: number;
  private readonly historyLimit: number;
  private closed = false;
  private readonly leases = new Set<LeaseHandle>();
  private readonly watchers = new Set<FileWatcher>();
  private poller: NodeJS.Timeout | undefined;
  /** What the watch dispatcher has seen: revision and key → modRevision (for gap diffs). */
  private seenRev = 0;
  private seenKeys = new Map<string, number>();
  private statSig = '';
  private nextExpiry = Infinity;
  private polling = false;
  private lastWarning = '';
  private readonly cache: DocCache;

  constructor(dir: string, o: FileStoreOptions = {}) {
    this.dir = resolve(dir);
    this.file = join(this.dir, STORE_FILE);
    this.lockPath = join(this.dir, LOCK_FILE);
    this.cache = new DocCache(this.file);
    this.description = `file:${this.dir}`;
    this.timeoutMs = o.timeoutMs ?? 5000;
    this.pollMs = o.pollMs ?? 150;
    this.historyLimit = Math.max(1, o.historyLimit ?? 1000);
    // Checked first: a refused directory gets nothing, not even a new subdirectory.
    const unsafe = dirSafetyProblem(this.dir);
    if (unsafe) throw new StoreError(`${this.description}: open failed: ${unsafe}`);
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw this.error('open', e);
    }
    // Leftover temporary files are from writers that crashed: under the lock nobody is writing.
    this.locked('open', () => {
      for (const f of readdirSync(this.dir)) {
        if (TMP_RE.test(f)) unlinkSync(join(this.dir, f));
      }
      this.read('open'); // a corrupt file fails now, not at the first operation
    });
  }

  private error(op: string, e: unknown): StoreError {
    if (e instanceof StoreError) return e;
    return new StoreError(`${this.description}: ${op} failed: ${(e as Error).message ?? String(e)}`, e);
  }

  private checkOpen(op: string): void {
    if (this.closed) throw new StoreError(`${this.description}: ${op} failed: the store is closed`);
  }

  /**
   * store.json as it is now (an empty store if it does not exist yet): parsed, or the
   * cached parse when the file did not change since (src/store/file-cache.ts). Shared:
   * never change it.
   */
  private read(op: string): DocView {
    try {
      return this.cache.read();
    } catch (e) {
      if (e instanceof CorruptFileError) {
        throw new StoreError(`${this.description}: ${op} failed: the store file ${this.file} is corrupt: ${e.message}`, e.cause);
      }
      throw this.error(op, e);
    }
  }

  /** store.json parses and cache hits of this instance so far. @internal (tests, measurements) */
  get parseStats(): { parses: number; hits: number } {
    return { parses: this.cache.parses, hits: this.cache.hits };
  }

  private locked<T>(op: string, fn: () => T): T {
    let lock: FileLock;
    try {
      lock = lockFile(this.lockPath, this.timeoutMs);
    } catch (e) {
      throw this.error(op, e);
    }
    try {
      return fn();
    } finally {
      lock.release();
    }
  }

  /**
   * The read-modify-write of every change: under the lock, on a fresh read, with expired
   * leases removed first; written (atomically) only when something changed.
   */
  private mutate<T>(op: string, fn: (c: Changes) => T): { result: T; doc: DocView } {
    this.checkOpen(op);
    const out = this.locked(op, () => {
      const base = this.read(op);
      const c = new Changes(base);
      c.purgeExpired(Date.now());
      c.begin();
      const result = fn(c);
      if (!c.dirty) return { result, doc: base };
      c.trimHistory(this.historyLimit);
      const doc = c.view();
      const stamp = newStamp();
      try {
        writeFileAtomic(this.file, serializeDoc(doc, stamp), 0o600);
      } catch (e) {
        this.cache.forget();
        throw this.error(op, e);
      }
      this.cache.wrote(doc, stamp);
      return { result, doc };
    });
    this.dispatch(out.doc);
    return out;
  }

  /** A current view for reads: lock-free unless an expired lease has to be removed. */
  private snapshot(op: string): DocView {
    this.checkOpen(op);
    const doc = this.read(op);
    const now = Date.now();
    for (const l of doc.leases.values()) {
      if (l.expiresAt <= now) return this.mutate(op, () => undefined).doc;
    }
    return doc;
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const v = this.snapshot('get').keys.get(key);
    return v && { key, value: v.value, modRevision: v.modRevision, lease: v.lease };
  }

  async list(prefix: string): Promise<KeyValue[]> {
    const out: KeyValue[] = [];
    for (const [key, v] of this.snapshot('list').keys) {
      if (key.startsWith(prefix)) out.push({ key, value: v.value, modRevision: v.modRevision, lease: v.lease });
    }
    return out.sort((a, b) => compareKeys(a.key, b.key));
  }

  async revision(): Promise<number> {
    return this.snapshot('revision').revision;
  }

  async txn(compares: readonly Compare[], ops: readonly TxnOp[]): Promise<TxnResult> {
    const seen = new Set<string>();
    for (const o of ops) {
      if (seen.has(o.key)) throw new StoreError(`${this.description}: txn failed: the key ${o.key} is changed twice in one transaction`);
      seen.add(o.key);
    }
    return this.mutate('txn', (c) => {
      for (const cmp of compares) {
        if ((c.keys.get(cmp.key)?.modRevision ?? 0) !== cmp.modRevision) return { succeeded: false, revision: c.revision };
      }
      for (const o of ops) {
        if (o.op === 'put' && o.lease) this.requireLease(c, o.lease, 'txn');
      }
      c.begin();
      for (const o of ops) {
        if (o.op === 'put') c.put(o.key, o.value, o.lease ?? 0);
        else c.delete(o.key);
      }
      return { succeeded: true, revision: c.revision };
    }).result;
  }

  async put(key: string, value: string, lease?: number): Promise<number> {
    return this.mutate('put', (c) => {
      if (lease) this.requireLease(c, lease, 'put');
      c.put(key, value, lease ?? 0);
      return c.revision;
    }).result;
  }

  async delete(key: string): Promise<boolean> {
    return this.mutate('delete', (c) => c.delete(key)).result;
  }

  private requireLease(doc: DocView, id: number, op: string): void {
    if (!doc.leases.has(id)) throw new StoreError(`${this.description}: ${op} failed: lease ${id} not found (expired or revoked)`);
  }

  async grantLease(ttlSeconds: number): Promise<Lease> {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
      throw new StoreError(`${this.description}: grant lease failed: the TTL must be a whole number of seconds ≥ 1, not ${ttlSeconds}`);
    }
    const id = this.mutate('grant lease', (c) => {
      const id = c.nextLease++;
      c.setLease(id, { ttlSeconds, expiresAt: Date.now() + ttlSeconds * 1000 });
      return id;
    }).result;
    const h = new FileLeaseHandle(this, id, ttlSeconds);
    this.leases.add(h);
    return h;
  }

  /** Extends lease `id` by its TTL; false when it no longer exists. @internal */
  keepAlive(id: number): boolean {
    return this.mutate('lease keep-alive', (c) => {
      const l = c.leases.get(id);
      if (!l) return false;
      c.setLease(id, { ttlSeconds: l.ttlSeconds, expiresAt: Date.now() + l.ttlSeconds * 1000 });
      return true;
    }).result;
  }

  /** @internal */
  async revokeLease(id: number): Promise<void> {
    this.mutate('revoke lease', (c) => c.removeLease(id));
  }

  /** @internal */
  forgetLease(h: LeaseHandle): void {
    this.leases.delete(h);
  }

  async watch(prefix: string, fn: (e: WatchEvent) => void, fromRevision?: number): Promise<Unwatch> {
    const doc = this.snapshot('watch');
    if (fromRevision !== undefined && fromRevision < doc.compacted) {
      throw new StoreError(`${this.description}: watch failed: revision ${fromRevision} is compacted: the history starts after revision ${doc.compacted}`);
    }
    if (this.watchers.size === 0) {
      this.seenRev = doc.revision;
      this.seenKeys = new Map([...doc.keys].map(([k, v]) => [k, v.modRevision]));
    } else {
      this.dispatch(doc);
    }
    const from = fromRevision ?? doc.revision;
    const w: FileWatcher = { prefix, fn, lastRev: Math.max(from, doc.revision), queue: [], scheduled: false, active: true };
    for (const e of doc.events) {
      if (e.modRevision > from && e.key.startsWith(prefix)) w.queue.push(publicEvent(e));
    }
    this.watchers.add(w);
    this.schedule(w);
    this.startPolling();
    return () => {
      w.active = false;
      w.queue = [];
      this.watchers.delete(w);
      if (this.watchers.size === 0) this.stopPolling();
    };
  }

  /** Queues the events of `doc` newer than what the watchers have seen. */
  private dispatch(doc: DocView): void {
    if (this.watchers.size === 0 || doc.revision <= this.seenRev) return;
    let events: WatchEvent[];
    if (doc.compacted <= this.seenRev) {
      events = doc.events.filter((e) => e.modRevision > this.seenRev).map(publicEvent);
    } else {
      // Fell behind the history: deliver the difference to the last state seen.
      events = [];
      for (const [k, v] of doc.keys) {
        if (this.seenKeys.get(k) !== v.modRevision) events.push({ type: 'put', key: k, value: v.value, modRevision: v.modRevision });
      }
      for (const k of this.seenKeys.keys()) {
        if (!doc.keys.has(k)) events.push({ type: 'delete', key: k, value: undefined, modRevision: doc.revision });
      }
      events.sort((a, b) => a.modRevision - b.modRevision || compareKeys(a.key, b.key));
    }
    this.seenRev = doc.revision;
    this.seenKeys = new Map([...doc.keys].map(([k, v]) => [k, v.modRevision]));
    for (const w of this.watchers) {
      for (const e of events) {
        if (e.modRevision > w.lastRev && e.key.startsWith(w.prefix)) w.queue.push(e);
      }
      w.lastRev = Math.max(w.lastRev, doc.revision);
      this.schedule(w);
    }
  }

  private schedule(w: FileWatcher): void {
    if (w.scheduled || w.queue.length === 0) return;
    w.scheduled = true;
    queueMicrotask(() => {
      w.scheduled = false;
      while (w.active && w.queue.length > 0) {
        const e = w.queue.shift()!;
        try {
          w.fn(e);
        } catch (err) {
          // Like an EventEmitter listener: a throwing callback is a bug of the caller.
          setImmediate(() => {
            throw err;
          });
        }
      }
    });
  }

  private startPolling(): void {
    if (this.poller) return;
    this.statSig = ''; // the first tick reads the file: lease expiries are not known yet
    this.poller = setInterval(() => this.poll(), this.pollMs);
    this.poller.unref();
  }

  private stopPolling(): void {
    if (this.poller) clearInterval(this.poller);
    this.poller = undefined;
  }

  private sig(): string {
    try {
      const st = statSync(this.file, { bigint: true });
      return `${st.ino}:${st.mtimeNs}:${st.size}`;
    } catch {
      return 'none';
    }
  }

  /** Picks up changes of other processes, and removes expired leases so watchers see it. */
  private poll(): void {
    if (this.closed || this.polling) return;
    this.polling = true;
    try {
      const sig = this.sig();
      if (sig === this.statSig && Date.now() < this.nextExpiry) return;
      this.statSig = sig;
      const doc = this.snapshot('watch');
      this.nextExpiry = Math.min(Infinity, ...[...doc.leases.values()].map((l) => l.expiresAt));
      this.dispatch(doc);
      this.lastWarning = '';
    } catch (e) {
      const msg = `${(e as Error).message} (watch poll; retrying)`;
      if (msg !== this.lastWarning) process.emitWarning(msg, 'StoreWarning'); // once, not every second
      this.lastWarning = msg;
      this.nextExpiry = Date.now() + 1000; // retry a failed read/purge, but not in a tight loop
    } finally {
      this.polling = false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopPolling();
    for (const w of this.watchers) {
      w.active = false;
      w.queue = [];
    }
    this.watchers.clear();
    for (const l of [...this.leases]) l.release();
  }
}

/** A lease of the file store: keep-alive extends its expiry in store.json. */
class FileLeaseHandle extends LeaseHandle<FileStore> {
  protected override keepAlive(): boolean {
    return this.store.keepAlive(this.id);
  }

  /** After keep-alives that failed for a whole TTL (a lock held too long, a read error). */
  protected override staleError(e: unknown): StoreError {
    return new StoreError(`${this.store.description}: lease ${this.id} was lost: no keep-alive for ${this.ttlSeconds} s: ${(e as Error).message}`, e);
  }
}

/** The mode of `p`, or undefined when it does not exist (yet). */
function modeOf(p: string): number | undefined {
  try {
    return statSync(p).mode;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * Why the store directory `dir` is not safe to keep cluster state in, or undefined: it is
 * writable by anyone, or one of its (existing) parents is writable by anyone without the
 * sticky bit.
 */
export function dirSafetyProblem(dir: string): string | undefined {
  const mode = modeOf(dir);
  if (mode !== undefined && mode & 0o002) {
    return `the store directory ${dir} is writable by anyone (mode ${(mode & 0o7777).toString(8).padStart(4, '0')}): anyone could change the cluster's state; chmod o-w ${dir} (or 0700)`;
  }
  for (let p = dirname(dir); ; p = dirname(p)) {
    const m = modeOf(p);
    if (m !== undefined && m & 0o002 && !(m & 0o1000)) {
      return `the store directory's parent ${p} is writable by anyone and not sticky (mode ${(m & 0o7777).toString(8).padStart(4, '0')}): anyone could replace ${dir}; chmod o-w ${p}`;
    }
    if (p === dirname(p)) return undefined;
  }
}
