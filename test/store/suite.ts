/**
 * The behavioural suite of the Store interface, run against every backend:
 * test/unit/store-file.test.ts (file store) and test/e2e/store.test.ts (a real etcd).
 * A backend gives a fresh, isolated store per subtest (a temporary directory, a unique
 * etcd prefix), a way to open a second instance on the same data (another "process"),
 * and the spec a child process passes to openStore().
 */
import { spawn } from 'node:child_process';
import type { Test } from 'tap';
import type { Store, WatchEvent } from '../../src/store/types.js';
import type { StoreTlsFiles } from '../../src/store/tls.js';
import { REPO } from '../helpers/env.js';

export interface StoreFixture {
  store: Store;
  /** Another instance on the same data (closed at teardown). */
  other(): Promise<Store>;
  /** The spec of this data for openStore() in a child process. */
  spec: string;
  /** The TLS files that go with `spec` (etcds://). */
  tls?: StoreTlsFiles;
}

export interface Backend {
  name: string;
  /** A fresh, empty store; everything it opens is closed at teardown of `t`. */
  fresh(t: Test): Promise<StoreFixture>;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `cond` until it holds; fails with `what` after `timeoutMs`. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 5000, stepMs = 50): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await cond()) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

export function collector() {
  const events: WatchEvent[] = [];
  return {
    events,
    fn: (e: WatchEvent) => {
      events.push(e);
    },
    /** Short form for t.same: "put k=v" / "delete k". */
    brief: () => events.map((e) => (e.type === 'put' ? `put ${e.key}=${e.value}` : `delete ${e.key}`)),
    waitN: (n: number, timeoutMs = 5000) => waitFor(`${n} watch events`, () => events.length >= n, timeoutMs),
  };
}

/** Claims the lowest free slot under slots/ with a create-only CAS; retries lost races. */
export async function allocateSlot(s: Store, who: string): Promise<number> {
  for (let race = 0; race < 1000; race++) {
    const taken = new Set((await s.list('slots/')).map((kv) => Number(kv.key.slice('slots/'.length))));
    let i = 0;
    while (taken.has(i)) i++;
    const key = `slots/${i}`;
    const r = await s.txn([{ key, modRevision: 0 }], [{ op: 'put', key, value: who }]);
    if (r.succeeded) return i;
  }
  throw new Error(`${who}: no slot after 1000 races`);
}

/** counter += 1 by CAS on its modRevision. */
export async function increment(s: Store, key = 'counter'): Promise<void> {
  for (let race = 0; race < 1000; race++) {
    const kv = await s.get(key);
    const n = kv ? Number(kv.value) : 0;
    const r = await s.txn([{ key, modRevision: kv?.modRevision ?? 0 }], [{ op: 'put', key, value: String(n + 1) }]);
    if (r.succeeded) return;
  }
  throw new Error('no increment after 1000 races');
}

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Runs `body` (an async ES module body) in a separate node process with `openStore`,
 * `allocateSlot` and `increment` in scope; killed after `timeoutMs`.
 */
export function runChild(body: string, timeoutMs = 30_000): Promise<ChildResult> {
  const loader = process.execArgv.find((a) => a.includes('@tapjs/typescript'))
    ?? `--import=${new URL('node_modules/@tapjs/typescript/dist/esm/import.mjs', `file://${REPO}`).href}`;
  const src = (p: string) => JSON.stringify(new URL(p, `file://${REPO}`).href);
  const code = [
    `import { openStore } from ${src('src/store/open.js')};`,
    // (transpiled already: we run under tap's TypeScript loader; saves a slow import)
    allocateSlot.toString(),
    increment.toString(),
    body,
  ].join('\n');
  const env: NodeJS.ProcessEnv = { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' };
  delete env.NODE_OPTIONS; // tap's process-info hook: not wanted in our children
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [loader, '--input-type=module', '-e', code], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

export function storeSuite(top: Test, b: Backend): void {
  const n = b.name;

  top.test(`${n}: get, put, delete and list with prefix semantics and key order`, async (t) => {
    const { store: s } = await b.fresh(t);
    t.equal(await s.get('a'), undefined, 'absent key');
    t.same(await s.list(''), [], 'empty store');
    // Inserted out of order; etcd orders bytewise on UTF-8 (U+FF5E before U+1F600,
    // unlike JS string order).
    const keys = ['k/b', 'k/a/x', 'k/é', 'k/\u{1F600}', 'k/\uFF5E', 'k', 'k/a', 'k/Z', 'kz', 'j/1'];
    const revs: number[] = [];
    for (const k of keys) revs.push(await s.put(k, `v:${k}`));
    const sorted = ['j/1', 'k', 'k/Z', 'k/a', 'k/a/x', 'k/b', 'k/é', 'k/\uFF5E', 'k/\u{1F600}', 'kz'];
    t.same((await s.list('')).map((kv) => kv.key), sorted, 'everything, in byte order');
    t.same((await s.list('k/')).map((kv) => kv.key), sorted.filter((k) => k.startsWith('k/')), 'a prefix');
    t.same((await s.list('k')).map((kv) => kv.key), ['k', ...sorted.filter((k) => k.startsWith('k/')), 'kz'], 'a prefix is a string prefix, not a path');
    t.same((await s.list('k/a')).map((kv) => kv.key), ['k/a', 'k/a/x']);
    t.same(await s.list('nothing/'), []);
    const ka = await s.get('k/a');
    t.same(ka, { key: 'k/a', value: 'v:k/a', modRevision: revs[keys.indexOf('k/a')], lease: 0 }, 'get: value, modRevision from put, no lease');
    const json = JSON.stringify({ ip: '10.0.0.1', note: 'ünïcode ✓', nested: { a: [1, 2] } });
    await s.put('k/a', json);
    t.equal((await s.get('k/a'))?.value, json, 'values round-trip exactly');
    await s.put('empty', '');
    t.equal((await s.get('empty'))?.value, '', 'an empty value is a value');
    t.equal(await s.delete('k/a'), true, 'delete of an existing key');
    t.equal(await s.delete('k/a'), false, 'delete of an absent key');
    t.equal(await s.get('k/a'), undefined);
    t.same((await s.list('k/a')).map((kv) => kv.key), ['k/a/x'], 'delete removes exactly one key');
  });

  top.test(`${n}: revisions increase with every change and only then`, async (t) => {
    const { store: s } = await b.fresh(t);
    const r0 = await s.revision();
    t.ok(r0 >= 1, `starts at a positive revision (${r0})`);
    const r1 = await s.put('a', '1');
    t.ok(r1 > r0, 'put bumps the revision');
    t.equal(await s.revision(), r1, 'revision() is the last change');
    t.equal((await s.get('a'))?.modRevision, r1, "the key's modRevision is the put's revision");
    const r2 = await s.put('a', '2');
    t.ok(r2 > r1, 'overwriting bumps it again');
    t.equal(await s.delete('absent'), false);
    t.equal(await s.revision(), r2, 'deleting an absent key changes nothing');
    const f = await s.txn([{ key: 'a', modRevision: r1 }], [{ op: 'put', key: 'a', value: 'x' }]);
    t.same(f, { succeeded: false, revision: r2 }, 'a failed txn reports the current revision and changes nothing');
    await s.delete('a');
    t.ok((await s.revision()) > r2, 'a delete bumps it');
  });

  top.test(`${n}: txn applies its ops only when every compare holds`, async (t) => {
    const { store: s } = await b.fresh(t);
    const create = () => s.txn([{ key: 'x', modRevision: 0 }], [{ op: 'put', key: 'x', value: 'first' }]);
    const ok = await create();
    t.equal(ok.succeeded, true, 'compare with 0: the key is absent');
    const x = await s.get('x');
    t.equal(x?.modRevision, ok.revision, 'txn revision is the new modRevision');
    t.equal((await create()).succeeded, false, 'compare with 0 fails once the key exists');
    t.equal((await s.get('x'))?.value, 'first');

    const stale = x!.modRevision;
    await s.put('x', 'second');
    const before = await s.revision();
    const r = await s.txn([{ key: 'x', modRevision: stale }], [{ op: 'put', key: 'x', value: 'lost' }, { op: 'put', key: 'y', value: 'lost' }]);
    t.same(r, { succeeded: false, revision: before }, 'a stale modRevision fails');
    t.equal((await s.get('x'))?.value, 'second', 'and changes nothing');
    t.equal(await s.get('y'), undefined, 'not even the other ops');

    const cur = (await s.get('x'))!.modRevision;
    const both = await s.txn([{ key: 'x', modRevision: cur }, { key: 'y', modRevision: 1 }], [{ op: 'put', key: 'z', value: '1' }]);
    t.equal(both.succeeded, false, 'one failing compare of several fails the txn');
    t.equal(await s.get('z'), undefined);

    await s.put('gone', 'soon');
    const all = await s.txn([{ key: 'x', modRevision: cur }, { key: 'y', modRevision: 0 }], [
      { op: 'put', key: 'x', value: 'third' }, { op: 'put', key: 'y', value: 'new' }, { op: 'delete', key: 'gone' },
      { op: 'delete', key: 'never-existed' },
    ]);
    t.equal(all.succeeded, true, 'every compare holds');
    const [nx, ny] = [await s.get('x'), await s.get('y')];
    t.equal(nx?.value, 'third');
    t.equal(ny?.value, 'new');
    t.equal(await s.get('gone'), undefined, 'deletes are applied too');
    t.equal(nx?.modRevision, all.revision, 'all ops of one txn share one revision');
    t.equal(ny?.modRevision, all.revision);
    t.equal(await s.revision(), all.revision);

    const empty = await s.txn([{ key: 'x', modRevision: all.revision }], []);
    t.same(empty, { succeeded: true, revision: all.revision }, 'a txn without ops succeeds without a new revision');
    await t.rejects(s.txn([], [{ op: 'put', key: 'd', value: '1' }, { op: 'delete', key: 'd' }]),
      { name: 'StoreError', message: /txn failed: .*d.* twice/ }, 'one key changed twice in a txn is an error');
    t.equal(await s.get('d'), undefined);
  });

  top.test(`${n}: concurrent CAS from many promises and two instances never loses an update`, async (t) => {
    const { store: a, other } = await b.fresh(t);
    const c = await other();
    const slots = await Promise.all(Array.from({ length: 50 }, (_, i) => allocateSlot(i % 2 ? c : a, `w${i}`)));
    t.same([...slots].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i), '50 allocations, 50 distinct slots 0..49');
    const stored = await a.list('slots/');
    t.equal(stored.length, 50);
    t.same(new Set(stored.map((kv) => kv.value)).size, 50, 'every worker holds exactly one slot');

    await Promise.all(Array.from({ length: 40 }, (_, i) => increment(i % 2 ? c : a)));
    t.equal((await a.get('counter'))?.value, '40', '40 concurrent increments: 40');
    t.equal((await c.get('counter'))?.value, '40', 'the other instance agrees');
  });

  top.test(`${n}: leases: keys vanish on revoke, and on expiry once keep-alive stops`, async (t) => {
    const { store: s, other } = await b.fresh(t);
    const o = await other();
    const w = collector();
    await o.watch('l/', w.fn);
    const l = await s.grantLease(2);
    t.ok(l.id > 0 && Number.isSafeInteger(l.id), `lease id ${l.id} is a positive safe integer`);
    t.ok(l.ttlSeconds >= 2, `granted TTL ${l.ttlSeconds} s`);
    await s.put('l/a', '1', l.id);
    await s.txn([{ key: 'l/b', modRevision: 0 }], [{ op: 'put', key: 'l/b', value: '2', lease: l.id }]);
    await s.put('l/free', '3');
    t.equal((await s.get('l/a'))?.lease, l.id, 'the key carries the lease');
    t.equal((await o.get('l/b'))?.lease, l.id, 'seen from the other instance too');
    await l.revoke();
    t.equal(await s.get('l/a'), undefined, 'revoke deletes its keys');
    t.equal(await o.get('l/b'), undefined);
    t.equal((await s.get('l/free'))?.value, '3', 'keys without the lease stay');
    await w.waitN(5);
    t.same(w.brief(), ['put l/a=1', 'put l/b=2', 'put l/free=3', 'delete l/a', 'delete l/b'], 'revocation is seen as deletes');
    t.equal(w.events[3]!.modRevision, w.events[4]!.modRevision, 'in one revision');
    await t.rejects(s.put('l/c', 'x', l.id), { name: 'StoreError', message: /lease/ }, 'a revoked lease cannot take keys');
    await t.rejects(s.put('l/c', 'x', 123456789), { name: 'StoreError', message: /lease/ }, 'nor can an unknown one');

    const k = await s.grantLease(2);
    await s.put('l/kept', 'alive', k.id);
    await sleep(k.ttlSeconds * 1000 + 1500);
    t.equal((await o.get('l/kept'))?.value, 'alive', 'keep-alive holds the lease beyond its TTL');
    k.release();
    const ms = await waitFor('the key of the released lease to expire', async () => (await o.get('l/kept')) === undefined, k.ttlSeconds * 1000 + 4000, 100);
    t.pass(`gone ${ms} ms after release`);
    await waitFor('the expiry delete event', () => w.brief().includes('delete l/kept'));
  });

  top.test(`${n}: a lease whose keep-alive stalls past its TTL is reported lost`, async (t) => {
    const { store: s } = await b.fresh(t);
    const l = await s.grantLease(2);
    await s.put('lost/a', '1', l.id);
    const lost: Error[] = [];
    l.onLost((e) => lost.push(e));
    // Freeze this process (as a stopped agent would be) for longer than the TTL.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, l.ttlSeconds * 1000 + 1500);
    await waitFor('onLost', () => lost.length > 0, l.ttlSeconds * 1000 + 3000);
    t.match(lost[0]!.message, /lease .*lost/, `onLost: ${lost[0]!.message}`);
    await waitFor('the key to be gone', async () => (await s.get('lost/a')) === undefined, 3000);
    const late: Error[] = [];
    l.onLost((e) => late.push(e));
    await sleep(10);
    t.equal(late.length, 1, 'onLost after the fact is called too');
  });

  top.test(`${n}: watch delivers puts and deletes in order, from other instances and from the past`, async (t) => {
    const { store: s, other } = await b.fresh(t);
    const o = await other();
    const w = collector();
    const unwatch = await s.watch('w/', w.fn);
    const r1 = await s.put('w/a', '1');
    await s.put('w/b', '2');
    await s.delete('w/a');
    await s.put('x/ignored', 'no');
    const tr = await s.txn([], [{ op: 'put', key: 'w/c', value: '3' }, { op: 'delete', key: 'w/b' }]);
    await w.waitN(5);
    t.same(w.brief(), ['put w/a=1', 'put w/b=2', 'delete w/a', 'put w/c=3', 'delete w/b'], 'own changes, in order, only under the prefix');
    t.equal(w.events[0]!.modRevision, r1, 'event modRevision is the revision of the change');
    t.equal(w.events[2]!.value, undefined, 'a delete has no value');
    t.same(w.events.slice(3).map((e) => e.modRevision), [tr.revision, tr.revision], 'a txn: one revision');
    const revs = w.events.map((e) => e.modRevision);
    t.same(revs, [...revs].sort((x, y) => x - y), 'revision order');

    const ro = await o.put('w/d', 'from the other instance');
    await o.delete('w/c');
    await w.waitN(7);
    t.same(w.brief().slice(5), ['put w/d=from the other instance', 'delete w/c'], "another instance's changes");
    t.equal(w.events[5]!.modRevision, ro);

    // From a past revision: exactly the changes after it, then live ones.
    const past = collector();
    const unPast = await o.watch('w/', past.fn, r1);
    await past.waitN(6);
    t.same(past.brief(), ['put w/b=2', 'delete w/a', 'put w/c=3', 'delete w/b', 'put w/d=from the other instance', 'delete w/c'],
      'the history after the revision');
    await s.put('w/e', 'live');
    await past.waitN(7);
    t.same(past.brief().slice(6), ['put w/e=live'], 'then live changes');
    await w.waitN(8);

    unwatch();
    unPast();
    await s.put('w/f', 'unwatched');
    await o.put('w/g', 'unwatched');
    await sleep(600);
    t.equal(w.events.length, 8, 'nothing after unwatch');
    t.equal(past.events.length, 7);
  });

  top.test(`${n}: a closed store refuses work and a closing process exits`, async (t) => {
    const { store: s, spec, tls, other } = await b.fresh(t);
    const c = await other();
    await c.put('k', 'v');
    await c.grantLease(5);
    await c.watch('', () => undefined);
    await c.close();
    await c.close();
    await t.rejects(c.get('k'), { name: 'StoreError', message: /closed/ }, 'operations after close fail');
    t.ok(await s.get('k'), 'other instances are unaffected');

    // A separate process with a lease (keep-alive timer), a watch and operations must end
    // on its own after close(): no timers or connections left behind.
    const r = await runChild(`
      const s = await openStore(${JSON.stringify(spec)}, { stateDir: '/nonexistent', tls: ${JSON.stringify(tls ?? {})} });
      const lease = await s.grantLease(2);
      await s.put('child/leased', 'x', lease.id);
      let seen = 0;
      const un = await s.watch('child/', () => { seen++; });
      await s.put('child/a', '1');
      await s.txn([{ key: 'child/b', modRevision: 0 }], [{ op: 'put', key: 'child/b', value: '2' }]);
      while (seen < 2) await new Promise((r) => setTimeout(r, 20));
      await s.close();
      console.log('closed', seen);
    `, 90_000);
    t.equal(r.code, 0, `the child exited by itself (${r.signal ?? ''} ${r.stderr.trim()})`);
    t.match(r.stdout, /closed 2/);
    // Generous: under a loaded CI machine node start-up alone can take seconds; a timer or
    // connection left open would keep the child alive for good, not for a few seconds more.
    t.ok(r.ms < 45_000, `and promptly (${r.ms} ms, node startup included)`);
    t.equal((await s.get('child/a'))?.value, '1', "the child's writes are visible");
  });
}
