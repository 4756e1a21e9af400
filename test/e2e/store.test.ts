/**
 * The etcd store against a real etcd started for this file (test/helpers/etcd.ts): the
 * shared Store suite (test/store/suite.ts), then what only etcd does: prefixes, its
 * minimum lease TTL, outages (stopped and hung etcd) and recovery of the same Store.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { EtcdStore } from '../../src/store/etcd.js';
import { openStore } from '../../src/store/open.js';
import { StoreError, type Store } from '../../src/store/types.js';
import { uniquePrefix } from '../helpers/env.js';
import { HAVE_ETCD, etcdForFile, type EtcdServer } from '../helpers/etcd.js';
import { collector, sleep, storeSuite, waitFor, type Backend } from '../store/suite.js';

function opened<S extends Store>(t: { teardown(fn: () => unknown): void }, s: S): S {
  t.teardown(() => s.close());
  return s;
}

/** The scheduler state ("R", "S", "T", ...) of every thread of process `pid`. */
function threadStates(pid: number): string[] {
  const states: string[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      states.push(stat.slice(stat.lastIndexOf(')') + 2).charAt(0)); // "tid (comm) S ..."
    } catch {
      /* the thread exited meanwhile */
    }
  }
  return states;
}

/**
 * SIGSTOPs `pid` and waits until every one of its threads has stopped. kill(2) returns
 * before that: the stop starts only when one of the process's threads takes the signal,
 * and meanwhile the others keep running. On a busy machine etcd then still answers a
 * request sent right after kill(): a get "against the hung etcd" was answered 65 ms later.
 */
async function hang(pid: number): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  await waitFor(`etcd (pid ${pid}) to stop`, () => threadStates(pid).every((s) => s === 'T' || s === 't' || s === 'Z' || s === 'X'), 5000, 5);
}

function etcdctl(etcd: EtcdServer, args: string[]): string {
  const r = spawnSync('etcdctl', [...etcd.etcdctlArgs(), '--command-timeout=3s', ...args], {
    encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' },
  });
  if (r.status !== 0) throw new Error(`etcdctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

if (!HAVE_ETCD) {
  t.plan(0, 'etcd is not installed');
} else {
  const etcdOf = etcdForFile(t);
  const newStore = (tt: Parameters<Backend['fresh']>[0], prefix: string, timeoutMs = 5000) =>
    opened(tt, new EtcdStore({ endpoints: [etcdOf().endpoint], prefix, timeoutMs, tls: etcdOf().tlsMaterial }));

  const etcdBackend: Backend = {
    name: 'etcd',
    async fresh(tt) {
      const prefix = `/${uniquePrefix('st')}/`;
      return { store: newStore(tt, prefix), spec: etcdOf().spec(prefix), tls: etcdOf().tls, other: async () => newStore(tt, prefix) };
    },
  };

  storeSuite(t, etcdBackend);

  t.test('etcd: keys live under the prefix, invisible to other prefixes', async (t) => {
    const etcd = etcdOf();
    const p = `/${uniquePrefix('px')}/`;
    const s = newStore(t, p);
    const q = newStore(t, `${p}q/`);
    await s.put('a', '1');
    await s.put('q/b', '2');
    t.equal(etcdctl(etcd, ['get', '--prefix', p, '--print-value-only=false', '--keys-only']).split('\n').filter(Boolean).join(' '),
      `${p}a ${p}q/b`, 'stored as <prefix><key>');
    t.same((await q.list('')).map((kv) => kv.key), ['b'], 'a store on a deeper prefix sees only its part, unprefixed');
    t.equal(await q.get('a'), undefined);
    t.equal(s.description, `etcds://${etcd.endpoint}${p.slice(0, -1)}`);
    const viaSpec = opened(t, await openStore(etcd.spec(p), { stateDir: '/unused', tls: etcd.tls }));
    t.equal((await viaSpec.get('a'))?.value, '1', 'openStore reaches the same data');
  });

  t.test('etcd: lease TTLs below etcd’s minimum are raised, and reported', async (t) => {
    const etcd = etcdOf();
    const s = newStore(t, `/${uniquePrefix('tl')}/`);
    const l = await s.grantLease(1);
    t.equal(l.ttlSeconds, 2, 'etcd 3.4 with a 1 s election timeout grants at least 2 s');
    const ttl = etcdctl(etcd, ['lease', 'timetolive', l.id.toString(16)]);
    t.match(ttl, /granted with TTL\(2s\)/, 'etcd agrees, and the lease id is ours (below 2^53)');
    await l.revoke();
  });

  t.test('etcd: a lease revoked behind our back is reported lost', async (t) => {
    const etcd = etcdOf();
    const s = newStore(t, `/${uniquePrefix('lr')}/`);
    const l = await s.grantLease(3);
    await s.put('k', 'v', l.id);
    const lost: Error[] = [];
    l.onLost((e) => lost.push(e));
    etcdctl(etcd, ['lease', 'revoke', l.id.toString(16)]);
    await waitFor('onLost', () => lost.length > 0, 5000);
    t.match(lost[0]!.message, new RegExp(`lease ${l.id} was lost: it expired or was revoked`));
    t.equal(await s.get('k'), undefined);
  });

  t.test('etcd: a stopped etcd fails operations within the timeout; the same store recovers', async (t) => {
    const etcd = etcdOf();
    const p = `/${uniquePrefix('out')}/`;
    const s = newStore(t, p, 1500);
    const o = newStore(t, p);
    const w = collector();
    await s.watch('o/', w.fn);
    const lease = await s.grantLease(10);
    await s.put('o/leased', 'kept', lease.id);
    const lost: Error[] = [];
    lease.onLost((e) => lost.push(e));
    await s.put('o/before', '1');
    await w.waitN(2);

    await etcd.stop();
    t.teardown(() => etcd.start()); // the rest of the file needs it, also if this test fails
    const who = `^etcds://127\\.0\\.0\\.1:${etcd.clientPort}${p.slice(0, -1)}`;
    const ops: [string, () => Promise<unknown>][] = [
      ['get', () => s.get('o/before')],
      ['list', () => s.list('o/')],
      ['revision', () => s.revision()],
      ['put', () => s.put('o/x', '1')],
      ['delete', () => s.delete('o/before')],
      ['txn', () => s.txn([{ key: 'o/y', modRevision: 0 }], [{ op: 'put', key: 'o/y', value: '1' }])],
      ['grant lease', () => s.grantLease(5)],
      ['watch', () => s.watch('o/', () => undefined)],
    ];
    const results = await Promise.all(ops.map(async ([name, op]) => {
      const t0 = Date.now();
      const err = await op().then(() => undefined, (e: unknown) => e);
      return { name, err, ms: Date.now() - t0 };
    }));
    for (const { name, err, ms } of results) {
      t.type(err, StoreError, `${name}: a StoreError`);
      // Reads and puts retry until the deadline ("No connection established … ECONNREFUSED");
      // txn and delete fail at once when the request may have been sent ("Connection dropped").
      t.match((err as Error).message, new RegExp(`${who}: ${name} failed: etcd unavailable: 14 UNAVAILABLE: `), `${name}: ${(err as Error).message}`);
      t.ok(ms < 1500 + 1000, `${name}: failed after ${ms} ms (timeout 1500 ms)`);
    }

    await etcd.start();
    t.equal((await s.get('o/before'))?.value, '1', 'the same Store object works again');
    const rev = await s.put('o/after', '2');
    t.ok(rev > 0);
    await o.put('o/other', '3');
    await w.waitN(4, 10_000);
    t.same(w.brief(), ['put o/leased=kept', 'put o/before=1', 'put o/after=2', 'put o/other=3'],
      'the watch from before the outage resumed, nothing lost or repeated');
    await sleep(1000);
    t.same(lost, [], 'a lease (TTL 10 s) survives a short outage');
    t.equal((await o.get('o/leased'))?.value, 'kept');
    await lease.revoke();
    t.equal(await o.get('o/leased'), undefined);
  });

  t.test('etcd: a hung etcd (SIGSTOP) fails operations at the deadline, not never', async (t) => {
    const etcd = etcdOf();
    const p = `/${uniquePrefix('hang')}/`;
    const s = newStore(t, p, 1000);
    await s.put('a', '1');
    const lease = await s.grantLease(2);
    const lost: Error[] = [];
    lease.onLost((e) => lost.push(e));
    const pid = etcd.pid!;
    let resumed = false;
    const resume = () => {
      if (!resumed) process.kill(pid, 'SIGCONT');
      resumed = true;
    };
    t.teardown(resume);
    await hang(pid);
    for (const [name, op] of [['get', () => s.get('a')], ['txn', () => s.txn([], [{ op: 'put', key: 'b', value: '1' }])]] as const) {
      const t0 = Date.now();
      // Not t.rejects: when the operation succeeds or fails otherwise, show what it gave.
      const got = await op().then((value) => ({ resolved: value }), (e: unknown) => e);
      const ms = Date.now() - t0;
      t.match(got, { name: 'StoreError', message: new RegExp(`: ${name} failed: timed out after 1000 ms`) }, `${name} rejects`);
      t.ok(ms >= 900 && ms < 2500, `${name}: ${ms} ms`);
    }
    await waitFor('onLost', () => lost.length > 0, 5000);
    t.match(lost[0]!.message, new RegExp(`: lease ${lease.id} was lost: no keep-alive acknowledged for 2 s \\(.*: lease keep-alive failed: `),
      'a lease without acknowledged keep-alives for a whole TTL is reported lost');
    resume();
    t.equal((await s.get('a'))?.value, '1', 'answers again once etcd runs');
  });

  t.test('etcd: a watch from a compacted revision is refused with a StoreError', async (t) => {
    const etcd = etcdOf();
    const s = newStore(t, `/${uniquePrefix('cp')}/`);
    const r = await s.put('a', '1');
    await s.put('a', '2');
    etcdctl(etcd, ['compact', String(r + 1)]);
    await t.rejects(s.watch('', () => undefined, r - 1), { name: 'StoreError', message: /watch failed: .*compacted/ });
    const w = collector();
    await s.watch('', w.fn, r + 1);
    await s.put('b', '3');
    await w.waitN(1);
    t.same(w.brief(), ['put b=3'], 'from the compaction revision on it works');
  });
}
