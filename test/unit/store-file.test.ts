/**
 * The file store: the shared Store suite (test/store/suite.ts), then what only a file can
 * do wrong (crash leftovers, corruption, other processes, a watcher behind the history),
 * and store specs (parseStoreSpec / openStore).
 */
import t from 'tap';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileStore } from '../../src/store/file.js';
import { openStore, parseStoreSpec } from '../../src/store/open.js';
import { StoreError, type Store } from '../../src/store/types.js';
import { lockFile } from '../../src/util/lock.js';
import { tempDir } from '../helpers/env.js';
import { allocateSlot, collector, increment, runChild, sleep, storeSuite, waitFor, type Backend } from '../store/suite.js';

function opened(t: { teardown(fn: () => unknown): void }, s: Store): Store {
  t.teardown(() => s.close());
  return s;
}

const fileBackend: Backend = {
  name: 'file',
  async fresh(t) {
    const dir = tempDir(t, 'sluice-store');
    const store = opened(t, new FileStore(dir));
    return { store, spec: `file:${dir}`, other: async () => opened(t, new FileStore(dir)) };
  },
};

storeSuite(t, fileBackend);

t.test('file: a leftover temporary file of a crashed writer breaks nothing', async (t) => {
  const dir = tempDir(t, 'sluice-store');
  const a = opened(t, new FileStore(dir));
  await a.put('k', 'v');
  // Crashed writers: one of another pid, one with our own pid (the name we write next).
  writeFileSync(join(dir, 'store.json.999999.tmp'), '{"format": "sluice-st');
  writeFileSync(join(dir, `store.json.${process.pid}.tmp`), '\0garbage\0');
  t.equal((await a.get('k'))?.value, 'v', 'reads ignore it');
  await a.put('k2', 'v2');
  t.equal((await a.get('k2'))?.value, 'v2', 'writes replace it');
  const b = opened(t, new FileStore(dir));
  t.same((await b.list('')).map((kv) => kv.key), ['k', 'k2'], 'a new instance reads the data');
  t.same(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'opening removed the leftovers');
});

t.test('file: a corrupt store.json is a clear error naming the file', async (t) => {
  const dir = tempDir(t, 'sluice-store');
  const file = join(dir, 'store.json');
  const a = opened(t, new FileStore(dir));
  await a.put('k', 'v');
  const good = readFileSync(file, 'utf8');
  writeFileSync(file, good.slice(0, good.length / 2));
  const msg = new RegExp(`corrupt`);
  await t.rejects(a.get('k'), { name: 'StoreError', message: msg }, 'an open store reports it');
  await t.rejects(a.get('k'), { message: new RegExp(`^file:${dir}: get failed: the store file ${file} is corrupt: `) });
  await t.rejects(a.put('k', 'w'), { message: /put failed: the store file .*store\.json is corrupt/ }, 'and refuses writes');
  t.throws(() => new FileStore(dir), { name: 'StoreError', message: /open failed: the store file .*store\.json is corrupt/ }, 'opening fails');
  await t.rejects(openStore(`file:${dir}`, { stateDir: '/unused' }), StoreError);
  writeFileSync(file, JSON.stringify({ format: 'sluice-store/1', revision: 'three' }));
  await t.rejects(a.list(''), { message: /corrupt: revision, compacted and nextLease must be positive integers/ }, 'valid JSON of the wrong shape');
  writeFileSync(file, JSON.stringify({ hello: 'world' }));
  await t.rejects(a.list(''), { message: /corrupt: unknown format/ });
  writeFileSync(file, good);
  t.equal((await a.get('k'))?.value, 'v', 'a repaired file works again');
});

t.test('file: data and revisions survive a restart', async (t) => {
  const dir = tempDir(t, 'sluice-store');
  const a = new FileStore(dir);
  const l = await a.grantLease(30);
  await a.put('x', '1');
  const rev = await a.put('y', '2', l.id);
  await a.close();
  const b = opened(t, new FileStore(dir));
  t.equal(await b.revision(), rev);
  t.same(await b.get('y'), { key: 'y', value: '2', modRevision: rev, lease: l.id }, 'the lease outlives the process until it expires');
  const l2 = await b.grantLease(30);
  t.ok(l2.id > l.id, 'lease ids are never reused');
  await l2.revoke();
});

t.test('file: an operation waiting for a lock held elsewhere gives up with a clear error', async (t) => {
  const dir = tempDir(t, 'sluice-store');
  const s = opened(t, new FileStore(dir, { timeoutMs: 300 }));
  await s.put('a', '1');
  const held = lockFile(join(dir, 'store.lock')); // another open file: conflicts like another process
  t.teardown(() => held.release());
  const t0 = Date.now();
  await t.rejects(s.put('a', '2'), { name: 'StoreError', message: new RegExp(`^file:${dir}: put failed: timed out after 300 ms waiting for the lock`) });
  t.ok(Date.now() - t0 < 2000, 'bounded');
  held.release();
  await s.put('a', '3');
  t.equal((await s.get('a'))?.value, '3', 'works once the lock is free');
});

t.test('file: a lease whose keep-alives fail for a whole TTL is reported lost, once', async (t) => {
  const dir = tempDir(t, 'sluice-store');
  const s = opened(t, new FileStore(dir, { timeoutMs: 100 }));
  const l = await s.grantLease(1);
  const lost: Error[] = [];
  l.onLost((e) => lost.push(e));
  const held = lockFile(join(dir, 'store.lock')); // every keep-alive now fails after 100 ms
  t.teardown(() => held.release());
  const ms = await waitFor('onLost', () => lost.length > 0, 4000);
  t.ok(ms >= 900, `reported after ${ms} ms, not at the first failed keep-alive`);
  t.type(lost[0], StoreError);
  t.match(lost[0]!.message, new RegExp(`^file:${dir}: lease ${l.id} was lost: no keep-alive for 1 s: .*timed out after 100 ms waiting for the lock`));
  held.release();
  await sleep(1000);
  t.equal(lost.length, 1, 'reported once: keep-alives stopped');
  const late: Error[] = [];
  l.onLost((e) => late.push(e));
  await sleep(0);
  t.same(late, lost, 'a listener added later gets the same error');
  l.release(); // idempotent after the loss
  await l.revoke();
  t.equal((await s.list('')).length, 0);
});

t.test('file: separate processes sharing the store never lose an update', async (t) => {
  const dir = tempDir(t, 'sluice-store');
  const s = opened(t, new FileStore(dir));
  const child = (tag: string) => runChild(`
    const s = await openStore(${JSON.stringify(`file:${dir}`)}, { stateDir: '/unused' });
    const got = await Promise.all(Array.from({ length: 20 }, (_, i) => allocateSlot(s, '${tag}' + i)));
    await Promise.all(Array.from({ length: 20 }, () => increment(s)));
    await s.close();
    console.log(JSON.stringify(got));
  `, 60_000);
  const mine = async () => {
    await sleep(300); // let the children start, so the three really overlap
    const got: number[] = [];
    for (let i = 0; i < 10; i++) {
      got.push(...await Promise.all([0, 1].map((j) => allocateSlot(s, `p${i}.${j}`))));
      await Promise.all([0, 1].map(() => increment(s)));
    }
    return got;
  };
  const [c1, c2, p] = await Promise.all([child('a'), child('b'), mine()]);
  t.equal(c1.code, 0, c1.stderr);
  t.equal(c2.code, 0, c2.stderr);
  const all = [...JSON.parse(c1.stdout) as number[], ...JSON.parse(c2.stdout) as number[], ...p];
  t.equal(all.length, 60);
  t.same([...all].sort((x, y) => x - y), Array.from({ length: 60 }, (_, i) => i), '60 distinct slots from three processes');
  t.equal((await s.get('counter'))?.value, '60', '60 increments from three processes');
});

t.test("file: a dead process's lease expires and other processes see its keys go", async (t) => {
  const dir = tempDir(t, 'sluice-store');
  const s = opened(t, new FileStore(dir));
  const w = collector();
  await s.watch('agent/', w.fn);
  const r = await runChild(`
    const s = await openStore(${JSON.stringify(`file:${dir}`)}, { stateDir: '/unused' });
    const l = await s.grantLease(2);
    await s.put('agent/node1', 'up', l.id);
    process.exit(0); // no revoke, no close: a crash
  `);
  t.equal(r.code, 0, r.stderr);
  await w.waitN(1);
  t.same(w.brief(), ['put agent/node1=up'], 'the registration is seen (by polling)');
  const ms = await waitFor('the delete event of the expired lease', () => w.events.length >= 2, 6000);
  t.same(w.brief()[1], 'delete agent/node1', `deleted ${ms} ms later, without any other access`);
  t.equal(await s.get('agent/node1'), undefined);

  // The same when the lease was already in the file before the watch began.
  const x = opened(t, new FileStore(dir));
  const l = await x.grantLease(1);
  await x.put('agent/node2', 'up', l.id);
  l.release();
  const late = opened(t, new FileStore(dir));
  const w2 = collector();
  await late.watch('agent/', w2.fn);
  await w2.waitN(1, 4000);
  t.same(w2.brief(), ['delete agent/node2'], 'a watcher that started later sees the expiry too');
});

t.test('file: a watcher further behind than the history gets the difference', async (t) => {
  const dir = tempDir(t, 'sluice-store');
  const a = opened(t, new FileStore(dir));
  const b = opened(t, new FileStore(dir, { historyLimit: 5 }));
  await a.put('g/keep', '0');
  await a.put('g/del', '0');
  await a.put('g/n', '0');
  const w = collector();
  await a.watch('g/', w.fn);
  // Many changes by another instance between two polls (no timer runs inside this loop).
  for (let i = 1; i <= 20; i++) await b.put('g/n', String(i));
  await b.delete('g/del');
  await b.put('g/new', 'x');
  await b.put('other/x', 'y');
  await waitFor('the catch-up', () => w.events.length >= 3);
  await sleep(400);
  // A delete found by the diff carries the current revision (its own is unknown): last.
  t.same(w.brief(), ['put g/n=20', 'put g/new=x', 'delete g/del'], 'the final state, intermediate values skipped');
  const state = new Map<string, string>([['g/keep', '0'], ['g/del', '0'], ['g/n', '0']]);
  for (const e of w.events) {
    if (e.type === 'put') state.set(e.key, e.value!);
    else state.delete(e.key);
  }
  t.same([...state].sort(), (await a.list('g/')).map((kv) => [kv.key, kv.value]), 'replaying the events gives the store');
  await t.rejects(a.watch('g/', () => undefined, 2), { name: 'StoreError', message: /watch failed: revision 2 is compacted/ },
    'a watch from before the history is refused');
});

t.test('file: reads of an unchanged store.json reuse the parse; any write elsewhere is seen', async (t) => {
  const dir = tempDir(t, 'sluice-store');
  const a = new FileStore(dir);
  const b = new FileStore(dir);
  t.teardown(() => Promise.all([a.close(), b.close()]));
  await a.put('k', 'v1');
  const p0 = a.parseStats.parses;
  for (let i = 0; i < 5; i++) t.equal((await a.get('k'))?.value, 'v1');
  await a.list('');
  await a.revision();
  t.equal(a.parseStats.parses, p0, 'no parse for reads of a file this instance wrote and nobody changed');
  await a.put('k', 'v2');
  t.equal((await a.get('k'))?.value, 'v2');
  t.equal(a.parseStats.parses, p0, 'its own write becomes the cached document');

  await b.put('k', 'v3');
  t.equal((await a.get('k'))?.value, 'v3', 'a write by another instance is seen');
  t.equal(a.parseStats.parses, p0 + 1, 'parsed once');
  t.equal((await a.get('k'))?.value, 'v3');
  t.equal(a.parseStats.parses, p0 + 1, 'then cached again');
  t.ok(a.parseStats.hits > 0);

  // A compare-and-swap under the lock on the cached document is still exact.
  const kv = await a.get('k');
  await b.put('k', 'v4');
  t.equal((await a.txn([{ key: 'k', modRevision: kv!.modRevision }], [{ op: 'put', key: 'k', value: 'lost' }])).succeeded, false,
    "a CAS against another instance's newer write fails");
  t.equal((await b.get('k'))?.value, 'v4');

  // Another file renamed over store.json, of the same size and carrying the same stamp (the
  // worst case): only the inode tells it apart.
  const file = join(dir, 'store.json');
  const before = readFileSync(file, 'utf8');
  t.match(before, /^\{\n {2}"format": "sluice-store\/1",\n {2}"stamp": "[0-9a-f]{16}",/, 'the stamp is in the first bytes');
  t.equal((await a.get('k'))?.value, 'v4');
  const after = before.replace('"value": "v4"', '"value": "v5"');
  t.equal(after.length, before.length);
  writeFileSync(`${file}.new`, after);
  renameSync(`${file}.new`, file);
  t.equal(statSync(file).size, Buffer.byteLength(before));
  t.equal((await a.get('k'))?.value, 'v5', 'an external rename of a same-size file is seen');
  t.equal((await b.get('k'))?.value, 'v5');

  // Hand-made files without a stamp are read, and not cached.
  writeFileSync(file, JSON.stringify({ format: 'sluice-store/1', revision: 9, compacted: 1, nextLease: 1,
    keys: { k: { value: 'hand', modRevision: 9, lease: 0 } }, leases: {}, events: [] }));
  const p1 = a.parseStats.parses;
  t.equal((await a.get('k'))?.value, 'hand');
  t.equal((await a.get('k'))?.value, 'hand');
  t.equal(a.parseStats.parses, p1 + 2, 'a file without a stamp is parsed at every read');
  await a.put('k', 'again');
  t.equal((await b.get('k'))?.value, 'again', 'and the next write stamps it');
});

t.test('file: changing returned values or a failed write does not corrupt the cached document', async (t) => {
  const dir = tempDir(t, 'sluice-store');
  const a = opened(t, new FileStore(dir));
  await a.put('p/a', '1');
  await a.put('p/b', '2');
  const got = (await a.get('p/a'))!;
  got.value = 'changed';
  got.modRevision = 999;
  const listed = await a.list('p/');
  listed[0]!.value = 'changed';
  listed.pop();
  t.same(await a.get('p/a'), { key: 'p/a', value: '1', modRevision: 2, lease: 0 }, 'get');
  t.same((await a.list('p/')).map((kv) => kv.value), ['1', '2'], 'list');

  // A transaction that fails its compare changes nothing, in the file or the cache.
  const r = await a.txn([{ key: 'p/a', modRevision: 1 }], [{ op: 'put', key: 'p/a', value: 'no' }]);
  t.equal(r.succeeded, false);
  t.equal((await a.get('p/a'))?.value, '1');

  // A write that fails after the change was made in memory (the temporary file cannot be
  // created): neither the cache nor a later write keeps it.
  const rev = await a.revision();
  const tmp = join(dir, `store.json.${process.pid}.tmp`);
  mkdirSync(tmp);
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  await t.rejects(a.put('p/c', 'half'), { name: 'StoreError', message: /put failed/ });
  t.equal(await a.get('p/c'), undefined, 'the failed put is not read back');
  t.equal(await a.revision(), rev, 'nor its revision');
  rmdirSync(tmp);
  await a.put('p/d', '4');
  t.same((await a.list('p/')).map((kv) => kv.key), ['p/a', 'p/b', 'p/d'], 'the next write does not carry it either');
  const b = opened(t, new FileStore(dir));
  t.same((await b.list('p/')).map((kv) => `${kv.key}=${kv.value}`), ['p/a=1', 'p/b=2', 'p/d=4'], 'and the file agrees');

  // Leases: a keep-alive replaces the lease entry; an expiry seen through the cache purges.
  const l = await a.grantLease(1);
  await a.put('p/l', 'x', l.id);
  l.release();
  t.equal((await a.get('p/l'))?.value, 'x');
  await sleep(1100);
  t.equal(await a.get('p/l'), undefined, 'an expired lease in the cached document is purged at the next read');
  t.equal(await b.get('p/l'), undefined);
});

t.test('parseStoreSpec', async (t) => {
  t.same(parseStoreSpec('file'), { kind: 'file' });
  t.same(parseStoreSpec(' file '), { kind: 'file' });
  t.same(parseStoreSpec('file:/var/lib/sluice/store'), { kind: 'file', path: '/var/lib/sluice/store' });
  t.same(parseStoreSpec('file:/var/lib//sluice/'), { kind: 'file', path: '/var/lib/sluice/' });
  t.same(parseStoreSpec('file:///srv/store'), { kind: 'file', path: '/srv/store' });
  t.same(parseStoreSpec('etcd://127.0.0.1:2379'), { kind: 'etcd', endpoints: ['127.0.0.1:2379'], prefix: '/sluice/', tls: false });
  t.same(parseStoreSpec('etcd://127.0.0.1:2379/'), { kind: 'etcd', endpoints: ['127.0.0.1:2379'], prefix: '/sluice/', tls: false });
  t.same(parseStoreSpec('etcd://10.0.0.1:2379,10.0.0.2:22379/cluster-a'),
    { kind: 'etcd', endpoints: ['10.0.0.1:2379', '10.0.0.2:22379'], prefix: '/cluster-a/', tls: false });
  t.same(parseStoreSpec('etcd://etcd-0.etcd.kube-system.svc:2379/a/b/'),
    { kind: 'etcd', endpoints: ['etcd-0.etcd.kube-system.svc:2379'], prefix: '/a/b/', tls: false });
  t.same(parseStoreSpec('etcd://etcd'), { kind: 'etcd', endpoints: ['etcd:2379'], prefix: '/sluice/', tls: false }, 'the port defaults to 2379');
  t.same(parseStoreSpec('etcd://[::1]:2379,[fd00::2]'), { kind: 'etcd', endpoints: ['[::1]:2379', '[fd00::2]:2379'], prefix: '/sluice/', tls: false });
  t.same(parseStoreSpec('ETCD://h:1'), { kind: 'etcd', endpoints: ['h:1'], prefix: '/sluice/', tls: false });
  t.same(parseStoreSpec('etcds://10.0.0.1:2379,etcd-1/c'), { kind: 'etcd', endpoints: ['10.0.0.1:2379', 'etcd-1:2379'], prefix: '/c/', tls: true }, 'etcds://: TLS');
  t.same(parseStoreSpec('ETCDS://[::1]'), { kind: 'etcd', endpoints: ['[::1]:2379'], prefix: '/sluice/', tls: true });

  const bad: [string, RegExp][] = [
    ['file:', /missing path after "file:"/],
    ['file:relative/dir', /the path "relative\/dir" is not absolute/],
    ['file://host/dir', /file:\/\/ takes no host/],
    ['etcd://', /missing hosts/],
    ['etcd:///sluice', /missing hosts/],
    ['etcd://a,,b', /empty host/],
    ['etcd://:2379', /missing host in ":2379"/],
    ['etcd://bad_host:2379', /bad host "bad_host"/],
    ['etcd://999.1.1.1:2379', /bad host "999.1.1.1"/],
    ['etcd://-x.example:2379', /bad host "-x.example"/],
    ['etcd://::1:2379', /bad host "::1" \(write IPv6 addresses in brackets/],
    ['etcd://[zz]:2379', /bad host "\[zz\]" \(not an IPv6 address\)/],
    ['etcd://10.0.0.1:0', /bad port "0" of "10.0.0.1:0" \(expected 1-65535\)/],
    ['etcd://10.0.0.1:65536', /bad port "65536"/],
    ['etcd://10.0.0.1:http', /bad port "http"/],
    ['etcd://10.0.0.1:', /bad port ""/],
    ['etcd://h:1,h:x', /bad port "x" of "h:x"/],
    ['etcd://h:1/a b', /bad prefix "\/a b"/],
    ['etcd:/h:1', /expected etcd:\/\/host:port/],
    ['etcds:/h:1', /expected etcd:\/\/host:port\[,host:port…\]\[\/prefix\] \(or etcds:\/\/ for TLS\)/],
    ['etcds://', /missing hosts: expected etcds:\/\/host:port/],
    ['etcds://h:99999', /bad port "99999"/],
    ['etcdss://h', /unknown scheme "etcdss"/],
    ['consul://10.0.0.1:8500', /unknown scheme "consul" \(expected file, file:\/abs\/dir or etcd:\/\/host:port/],
    ['https://10.0.0.1:2379', /unknown scheme "https"/],
    ['sqlite', /unknown kind of store/],
    ['', /unknown kind of store/],
  ];
  for (const [spec, message] of bad) {
    t.throws(() => parseStoreSpec(spec), { name: 'StoreError', message }, JSON.stringify(spec));
    t.throws(() => parseStoreSpec(spec), { message: new RegExp(`^bad store ${JSON.stringify(spec).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: `) });
  }
});

t.test('openStore', async (t) => {
  const stateDir = tempDir(t, 'sluice-state');
  const s = opened(t, await openStore('file', { stateDir }));
  t.equal(s.description, `file:${join(stateDir, 'store')}`, 'file: <stateDir>/store');
  await s.put('a', '1');
  t.ok(existsSync(join(stateDir, 'store', 'store.json')));
  const other = tempDir(t, 'sluice-other');
  const o = opened(t, await openStore(`file:${other}`, { stateDir }));
  t.equal(o.description, `file:${other}`);
  t.equal(await o.get('a'), undefined, 'a different directory is a different store');
  const e = opened(t, await openStore('etcd://127.0.0.1:1,127.0.0.1:2/x', { stateDir, timeoutMs: 500 }));
  t.equal(e.description, 'etcd://127.0.0.1:1,127.0.0.1:2/x', 'etcd is opened lazily');
  await t.rejects(openStore('nope://x', { stateDir }), { name: 'StoreError', message: /unknown scheme "nope"/ });
});

t.test('permissions: store.json and store.lock are 0600; a directory anyone may write to is refused', async (t) => {
  const dir = join(tempDir(t, 'sluice-perm'), 'store');
  const s = opened(t, new FileStore(dir));
  await s.put('a', '1');
  t.equal(statSync(join(dir, 'store.json')).mode & 0o777, 0o600, 'store.json 0600');
  t.equal(statSync(join(dir, 'store.lock')).mode & 0o777, 0o600, 'store.lock 0600');
  t.equal(statSync(dir).mode & 0o777, 0o700, 'a directory it makes: 0700');
  chmodSync(join(dir, 'store.json'), 0o644); // as an older sluice left it
  await s.put('b', '2');
  t.equal(statSync(join(dir, 'store.json')).mode & 0o777, 0o600, 'the next write makes it 0600 again');

  const open = join(tempDir(t, 'sluice-perm'), 'store');
  mkdirSync(open);
  chmodSync(open, 0o777);
  t.throws(() => new FileStore(open), {
    name: 'StoreError',
    message: `file:${open}: open failed: the store directory ${open} is writable by anyone (mode 0777): anyone could change the cluster's state; chmod o-w ${open} (or 0700)`,
  });
  chmodSync(open, 0o1777);
  t.throws(() => new FileStore(open), { message: /writable by anyone \(mode 1777\)/ }, 'sticky or not');
  t.notOk(existsSync(join(open, 'store.json')), 'and nothing was written there');
  await t.rejects(openStore(`file:${open}`, { stateDir: '/unused' }), { message: /is writable by anyone/ }, 'through openStore too');

  const parent = tempDir(t, 'sluice-perm');
  chmodSync(parent, 0o777);
  const inside = join(parent, 'store');
  t.throws(() => new FileStore(inside), {
    message: `file:${inside}: open failed: the store directory's parent ${parent} is writable by anyone and not sticky (mode 0777): anyone could replace ${inside}; chmod o-w ${parent}`,
  });
  t.notOk(existsSync(inside), 'the store directory was not made');
  chmodSync(parent, 0o1777);
  const ok = opened(t, new FileStore(inside));
  await ok.put('k', 'v');
  t.equal((await ok.get('k'))?.value, 'v', 'a sticky world-writable parent (as /tmp) is fine');
});
