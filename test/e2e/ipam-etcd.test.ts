/**
 * Cluster IPAM (src/ipam/pool.ts) on a real etcd (test/helpers/etcd.ts) shared by two
 * nodes, each with its own etcd client: concurrent allocations racing for addresses and
 * blocks, release of everything, and an etcd outage (clear StoreErrors, no half-written
 * allocation, recovery on the same clients).
 */
import t from 'tap';
import { EtcdStore } from '../../src/store/etcd.js';
import { Pool, type Allocation, type PoolConfig } from '../../src/ipam/pool.js';
import { StoreError, type Store } from '../../src/store/types.js';
import { uniquePrefix } from '../helpers/env.js';
import { HAVE_ETCD, etcdForFile } from '../helpers/etcd.js';

type T = { teardown(fn: () => unknown): void };

function opened<S extends Store>(t: T, s: S): S {
  t.teardown(() => s.close());
  return s;
}

const keys = async (s: Store, prefix: string) => (await s.list(prefix)).map((kv) => kv.key);
const ipNum = (ip: string) => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
/** Address order of CIDRs. */
const byNet = (x: string, y: string) => ipNum(x.split('/')[0]!) - ipNum(y.split('/')[0]!);
const inBlock = (ip: string, block: string) => {
  const [base, len] = block.split('/');
  const size = 2 ** (32 - Number(len));
  return ipNum(ip) >= ipNum(base!) && ipNum(ip) < ipNum(base!) + size;
};

/**
 * Every handle key points at an address key held by that handle, and every address key
 * is pointed at by its handle: an allocation is either wholly there or not at all.
 * Returns the problems found (none: []).
 */
async function halfWritten(s: Store): Promise<string[]> {
  const problems: string[] = [];
  const addrs = new Map((await s.list('ipam/addrs/')).map((kv) => [kv.key, (JSON.parse(kv.value) as { handle: string }).handle]));
  const handles = new Map<string, string>();
  for (const kv of await s.list('ipam/handles/')) {
    const handle = decodeURIComponent(kv.key.slice('ipam/handles/'.length));
    const { ip, block } = JSON.parse(kv.value) as { ip: string; block: string };
    const ak = `ipam/addrs/${block.replace('/', '-')}/${ip}`;
    handles.set(ak, handle);
    if (addrs.get(ak) !== handle) problems.push(`handle ${handle} -> ${ip}, but ${ak} is ${addrs.get(ak) ?? 'missing'}`);
  }
  for (const [ak, handle] of addrs) {
    if (handles.get(ak) !== handle) problems.push(`${ak} held by ${handle}, but that handle does not point at it`);
  }
  return problems;
}

if (!HAVE_ETCD) {
  t.plan(0, 'etcd is not installed');
} else {
  const etcdOf = etcdForFile(t);
  const newStore = (tt: T, prefix: string, timeoutMs = 15000) =>
    opened(tt, new EtcdStore({ endpoints: [etcdOf().endpoint], prefix, timeoutMs, tls: etcdOf().tlsMaterial }));

  t.test('two nodes allocating concurrently: distinct addresses, one owner per block, no spare blocks', async (t) => {
    const prefix = `/${uniquePrefix('ipam')}/`;
    // /28 blocks: 14 hosts each, so 150 allocations per node need exactly 11 blocks and
    // the nodes race each other for blocks all along. node-a runs two processes (two
    // Pool objects with their own etcd clients), which race each other for addresses too.
    const cfg: PoolConfig = { clusterCIDR: '10.96.0.0/20', blockSize: 28 };
    const a = new Pool(newStore(t, prefix), cfg, 'node-a');
    const a2 = new Pool(newStore(t, prefix), cfg, 'node-a');
    const b = new Pool(newStore(t, prefix), cfg, 'node-b');
    const check = newStore(t, prefix);
    const N = 150;
    const jobs: Promise<Allocation>[] = [];
    for (let i = 0; i < N; i++) jobs.push((i % 2 ? a2 : a).allocate(`a-${i}/eth0`), b.allocate(`b-${i}/eth0`));
    const got = await Promise.all(jobs);
    const ofA = got.filter((_, i) => i % 2 === 0);
    const ofB = got.filter((_, i) => i % 2 === 1);
    t.same(ofA.map((g) => g.handle), Array.from({ length: N }, (_, i) => `a-${i}/eth0`));
    t.same(ofB.map((g) => g.handle), Array.from({ length: N }, (_, i) => `b-${i}/eth0`));
    t.equal(new Set(got.map((g) => g.ip)).size, 2 * N, `all ${2 * N} addresses distinct across both nodes`);

    const blocks = await check.list('ipam/blocks/');
    const owner = new Map<string, string>();
    for (const kv of blocks) {
      const block = kv.key.slice('ipam/blocks/'.length).replace('-', '/');
      t.notOk(owner.has(block), `${block} recorded once`);
      owner.set(block, (JSON.parse(kv.value) as { node: string }).node);
    }
    t.same(await a.blocks(), [...owner].map(([block, node]) => ({ block, node })).sort((x, y) => byNet(x.block, y.block)));
    const blocksOf = (n: string) => [...owner].filter(([, o]) => o === n).map(([bl]) => bl).sort(byNet);
    t.same(await a.nodeBlocks(), blocksOf('node-a'));
    t.same(await b.nodeBlocks(), blocksOf('node-b'));
    t.equal(blocksOf('node-a').length, 11, 'node-a claimed exactly the 11 blocks it needs');
    t.equal(blocksOf('node-b').length, 11, 'node-b claimed exactly the 11 blocks it needs');
    t.same([...owner.keys()].sort(byNet),
      Array.from({ length: 22 }, (_, i) => `10.96.${i >> 4}.${(i & 15) * 16}/28`), 'the 22 lowest blocks of the pool');
    const outside = (n: string, gs: Allocation[]) => gs.filter((g) => owner.get(g.block) !== n || !inBlock(g.ip, g.block)).map((g) => `${g.handle}=${g.ip}`);
    t.same(outside('node-a', ofA), [], 'node-a’s addresses are in node-a’s blocks');
    t.same(outside('node-b', ofB), [], 'node-b’s addresses are in node-b’s blocks');
    const ends = got.filter((g) => [0, 15].includes(ipNum(g.ip) & 15)).map((g) => g.ip);
    t.same(ends, [], 'no network or broadcast address of a /28');
    const sortIp = (xs: Allocation[]) => [...xs].sort((x, y) => ipNum(x.ip) - ipNum(y.ip));
    t.same(sortIp(await a.allocations()), sortIp(ofA), 'node-a’s allocations() lists exactly its addresses');
    t.same(sortIp(await b.allocations()), sortIp(ofB), 'node-b’s allocations() lists exactly its addresses');
    t.same(await halfWritten(check), []);
    t.equal((await check.list('ipam/addrs/')).length, 2 * N);
    t.equal((await check.list('ipam/handles/')).length, 2 * N);

    const rel: Promise<boolean>[] = [];
    for (let i = 0; i < N; i++) rel.push(b.release(`a-${i}/eth0`), a.release(`b-${i}/eth0`), a.release(`a-${i}/eth0`));
    const released = await Promise.all(rel);
    t.equal(released.filter((r) => r).length, 2 * N, 'each handle released exactly once (the node does not matter)');
    t.same(await keys(check, 'ipam/addrs/'), [], 'no address left');
    t.same(await keys(check, 'ipam/handles/'), [], 'no handle left');
    t.equal((await keys(check, 'ipam/blocks/')).length, 22, 'the nodes keep their blocks');
    t.same(await a.allocations(), []);
    t.same(await b.allocations(), []);
  });

  t.test('a stopped etcd: allocate fails with a StoreError in bounded time, writes nothing; a retry succeeds', async (t) => {
    const etcd = etcdOf();
    const prefix = `/${uniquePrefix('ipout')}/`;
    const cfg: PoolConfig = { clusterCIDR: '10.97.0.0/16', blockSize: 24 };
    const s = newStore(t, prefix, 3000);
    const check = newStore(t, prefix);
    const a = new Pool(s, cfg, 'node-a');
    t.same(await a.allocate('before/eth0'), { ip: '10.97.0.1', block: '10.97.0.0/24', handle: 'before/eth0' });
    const before = await check.list('ipam/');

    await etcd.stop();
    t.teardown(() => etcd.start()); // the rest of the file needs it, also if this test fails
    const who = `^etcds://127\\.0\\.0\\.1:${etcd.clientPort}${prefix.slice(0, -1)}: \\w+ failed: etcd unavailable: `;
    // [name, call, store timeouts it may take]: a Pool runs its allocations one at a
    // time, so the second allocation waits for the first to fail before it tries.
    const calls: [string, () => Promise<unknown>, number][] = [
      ['allocate', () => a.allocate('during/eth0'), 1],
      ['allocate (requested), queued behind it', () => a.allocate('during2/eth0', '10.97.0.9'), 2],
      ['release', () => a.release('before/eth0'), 1],
      ['ensureBlock', () => a.ensureBlock(), 1],
      ['lookup', () => a.lookup('before/eth0'), 1],
      ['allocations', () => a.allocations(), 1],
    ];
    const results = await Promise.all(calls.map(async ([name, call, timeouts]) => {
      const t0 = Date.now();
      const err = await call().then(() => undefined, (e: unknown) => e);
      return { name, err, ms: Date.now() - t0, timeouts };
    }));
    for (const { name, err, ms, timeouts } of results) {
      t.type(err, StoreError, `${name}: a StoreError`);
      t.match((err as Error | undefined)?.message, new RegExp(who), `${name}: ${(err as Error | undefined)?.message}`);
      t.ok(ms < timeouts * 3000 + 2000, `${name}: failed after ${ms} ms (store timeout 3000 ms, ${timeouts} of them)`);
    }

    await etcd.start();
    t.same(await check.list('ipam/'), before, 'nothing was written during the outage');
    t.equal(await a.lookup('during/eth0'), undefined, 'the failed allocation holds no address');
    t.same(await a.allocate('during/eth0'), { ip: '10.97.0.2', block: '10.97.0.0/24', handle: 'during/eth0' }, 'a retry on the same client succeeds');
    t.same(await a.allocate('during2/eth0', '10.97.0.9'), { ip: '10.97.0.9', block: '10.97.0.0/24', handle: 'during2/eth0' });
    for (const h of ['before/eth0', 'during/eth0', 'during2/eth0']) t.equal(await a.release(h), true, `release ${h}`);
    t.same(await keys(check, 'ipam/addrs/'), []);
    t.same(await keys(check, 'ipam/handles/'), []);
  });

  t.test('etcd killed in the middle of concurrent allocations: each is whole or absent, and retries finish them', async (t) => {
    const etcd = etcdOf();
    const prefix = `/${uniquePrefix('ipkill')}/`;
    const cfg: PoolConfig = { clusterCIDR: '10.98.0.0/20', blockSize: 28 };
    // Three nodes with two processes each: a Pool runs its allocations one at a time, so
    // six are in flight when etcd dies, the rest queued behind them.
    const pools = [0, 1, 2, 0, 1, 2].map((i) => new Pool(newStore(t, prefix, 3000), cfg, `node-${i}`));
    const check = newStore(t, prefix);
    const N = 36;
    const handles = Array.from({ length: N }, (_, i) => `k-${i}/eth0`);
    // Kill etcd once a third of them are done: the rest are in every stage of their rounds.
    let done = 0;
    let third: () => void = () => undefined;
    const aThird = new Promise<void>((r) => (third = r));
    const running = Promise.all(handles.map((h, i) => pools[i % 6]!.allocate(h).then((g) => {
      if (++done === N / 3) third();
      return g;
    }, (e: unknown) => e as Error)));
    await Promise.race([aThird, running]);
    await etcd.stop();
    t.teardown(() => etcd.start());
    const outcome = await running;
    await etcd.start();
    const failed = outcome.filter((o): o is Error => o instanceof Error);
    t.same(failed.filter((e) => !(e instanceof StoreError)).map((e) => e.message), [], 'every failure is a StoreError');
    t.comment(`${N - failed.length} allocations done before the kill, ${failed.length} failed`);
    t.ok(failed.length > 0 && failed.length < N, 'the kill interrupted the run (some done, some failed)');
    t.same(await halfWritten(check), [], 'no half-written allocation');

    // The callers retry (as the CNI runtime does); an allocation whose reply was lost is found again.
    const retried = await Promise.all(handles.map((h, i) => pools[i % 6]!.allocate(h)));
    t.equal(new Set(retried.map((g) => g.ip)).size, N, 'all distinct');
    for (const [i, o] of outcome.entries()) {
      if (!(o instanceof Error)) t.same(retried[i], o, `${handles[i]}: the same address as before the outage`);
    }
    const owner = new Map((await pools[0]!.blocks()).map((x) => [x.block, x.node]));
    t.same(retried.filter((g, i) => owner.get(g.block) !== `node-${i % 3}`).map((g) => g.handle), [], 'each in a block of its node');
    t.same(await halfWritten(check), []);
    const released = await Promise.all(handles.map((h, i) => pools[(i + 1) % 6]!.release(h)));
    t.ok(released.every((r) => r), 'all released');
    t.same(await keys(check, 'ipam/addrs/'), []);
    t.same(await keys(check, 'ipam/handles/'), []);
  });
}
