/**
 * Cluster IPAM on the store (src/ipam/pool.ts) against the embedded file store: block
 * carving and ownership, address allocation, idempotency, release, block growth and
 * pool exhaustion, and concurrent allocations from several Pool objects (the CNI plugin
 * and the agent of one node each have their own) that must never hand out an address or
 * a block twice nor claim blocks they do not need.
 */
import t, { type Test } from 'tap';
import { IpamError } from '../../src/ipam/block.js';
import { Pool, type PoolConfig } from '../../src/ipam/pool.js';
import { FileStore } from '../../src/store/file.js';
import type { Store } from '../../src/store/types.js';
import { tempDir } from '../helpers/env.js';

type T = { teardown(fn: () => unknown): void };

const CFG: PoolConfig = { clusterCIDR: '10.244.0.0/16', blockSize: 24 };

/** A FileStore on `dir` (a new temporary directory if none), closed at teardown. */
function fileStore(t: T, dir?: string): FileStore {
  const s = new FileStore(dir ?? tempDir(t, 'sluice-ipam'));
  t.teardown(() => s.close());
  return s;
}

const keys = async (s: Store, prefix: string) => (await s.list(prefix)).map((kv) => kv.key);
const ipNum = (ip: string) => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
const byIp = <A extends { ip: string }>(xs: A[]) => [...xs].sort((a, b) => ipNum(a.ip) - ipNum(b.ip));
/** Every host address of `base`/`len` except network and broadcast, as strings. */
function hosts(base: string, len: number): string[] {
  const b = ipNum(base);
  const out: string[] = [];
  for (let i = b + 1; i < b + 2 ** (32 - len) - 1; i++) out.push([24, 16, 8, 0].map((s) => (i >>> s) & 255).join('.'));
  return out;
}

async function rejectsIpam(t: Test, p: Promise<unknown>, message: RegExp, what: string): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  t.type(err, IpamError, `${what}: an IpamError`);
  t.match((err as Error | undefined)?.message, message, `${what}: ${(err as Error | undefined)?.message}`);
}

t.test('the constructor rejects block sizes that do not fit the pool', async (t) => {
  const s = fileStore(t);
  t.throws(() => new Pool(s, { clusterCIDR: '10.244.0.0/16', blockSize: 15 }, 'a'),
    { name: 'IpamError', message: 'block size /15 does not fit the pool 10.244.0.0/16' });
  t.throws(() => new Pool(s, { clusterCIDR: '10.244.0.0/16', blockSize: 31 }, 'a'),
    { name: 'IpamError', message: 'block size /31 does not fit the pool 10.244.0.0/16' });
  t.throws(() => new Pool(s, { clusterCIDR: '10.244.0.0/16', blockSize: 24.5 }, 'a'), { name: 'IpamError', message: /block size/ });
  t.throws(() => new Pool(s, { clusterCIDR: '10.244.0.1/16', blockSize: 24 }, 'a'), { name: 'IpamError', message: /host bits set/ });
  t.same(await keys(s, ''), [], 'nothing written');
});

t.test('blocks are consecutive blocks of the pool, lowest free first, each with one owner', async (t) => {
  const s = fileStore(t);
  const a = new Pool(s, CFG, 'node-a');
  const b = new Pool(s, CFG, 'node-b');
  t.equal(await a.claimBlock(), '10.244.0.0/24');
  t.equal(await b.claimBlock(), '10.244.1.0/24');
  t.equal(await a.claimBlock(), '10.244.2.0/24');
  t.equal(await a.ensureBlock('10.244.10.0/24'), '10.244.10.0/24');
  t.equal(await b.claimBlock(), '10.244.3.0/24', 'the lowest free block, not after the highest claimed');
  t.same(await a.nodeBlocks(), ['10.244.0.0/24', '10.244.2.0/24', '10.244.10.0/24'], 'in address order, not string order');
  t.same(await b.nodeBlocks(), ['10.244.1.0/24', '10.244.3.0/24']);
  t.same(await a.blocks(), [
    { block: '10.244.0.0/24', node: 'node-a' },
    { block: '10.244.1.0/24', node: 'node-b' },
    { block: '10.244.2.0/24', node: 'node-a' },
    { block: '10.244.3.0/24', node: 'node-b' },
    { block: '10.244.10.0/24', node: 'node-a' },
  ]);
  t.same(await keys(s, 'ipam/blocks/'),
    ['ipam/blocks/10.244.0.0-24', 'ipam/blocks/10.244.1.0-24', 'ipam/blocks/10.244.10.0-24', 'ipam/blocks/10.244.2.0-24', 'ipam/blocks/10.244.3.0-24']);
  t.equal((await s.get('ipam/blocks/10.244.1.0-24'))?.value, JSON.stringify({ node: 'node-b' }));
});

t.test('ensureBlock() claims once and keeps the block across restarts', async (t) => {
  const dir = tempDir(t, 'sluice-ipam');
  const first = new Pool(fileStore(t, dir), CFG, 'node-a');
  t.equal(await first.ensureBlock(), '10.244.0.0/24');
  t.equal(await first.ensureBlock(), '10.244.0.0/24', 'again: the same block');
  // A restart: a new store client and a new Pool on the same data.
  const again = new Pool(fileStore(t, dir), CFG, 'node-a');
  t.equal(await again.ensureBlock(), '10.244.0.0/24');
  const other = new Pool(fileStore(t, dir), CFG, 'node-b');
  t.equal(await other.ensureBlock(), '10.244.1.0/24', 'another node gets the next block');
  t.same(await again.blocks(), [{ block: '10.244.0.0/24', node: 'node-a' }, { block: '10.244.1.0/24', node: 'node-b' }]);
  // With a second block the first stays "the" block.
  t.equal(await again.claimBlock(), '10.244.2.0/24');
  t.equal(await new Pool(fileStore(t, dir), CFG, 'node-a').ensureBlock(), '10.244.0.0/24');
});

t.test('ensureBlock(wanted) claims that block or confirms it; errors are clear and change nothing', async (t) => {
  const dir = tempDir(t, 'sluice-ipam');
  const s = fileStore(t, dir);
  const a = new Pool(s, CFG, 'node-a');
  const b = new Pool(s, CFG, 'node-b');
  t.equal(await a.ensureBlock('10.244.3.0/24'), '10.244.3.0/24');
  t.equal(await a.ensureBlock('10.244.3.0/24'), '10.244.3.0/24', 'confirmed as this node’s');
  t.equal(await new Pool(fileStore(t, dir), CFG, 'node-a').ensureBlock('10.244.3.0/24'), '10.244.3.0/24', 'after a restart too');
  t.equal(await a.ensureBlock(), '10.244.3.0/24', 'and it is the node’s block for ensureBlock()');
  await rejectsIpam(t, b.ensureBlock('10.244.3.0/24'), /^the pod block 10\.244\.3\.0\/24 belongs to node node-a, not node-b$/, 'owned by another node');
  await rejectsIpam(t, b.ensureBlock('10.245.3.0/24'), /^10\.245\.3\.0\/24 is not a \/24 block of the pool 10\.244\.0\.0\/16$/, 'outside the pool');
  await rejectsIpam(t, b.ensureBlock('10.244.3.0/25'), /^10\.244\.3\.0\/25 is not a \/24 block of the pool 10\.244\.0\.0\/16$/, 'wrong size');
  await rejectsIpam(t, b.ensureBlock('10.244.0.0/16'), /^10\.244\.0\.0\/16 is not a \/24 block of the pool 10\.244\.0\.0\/16$/, 'the whole pool');
  await rejectsIpam(t, b.ensureBlock('10.244.4.1/24'), /10\.244\.4\.1\/24.*host bits set/, 'host bits set');
  await rejectsIpam(t, b.ensureBlock('banana'), /banana/, 'not a CIDR');
  t.same(await a.blocks(), [{ block: '10.244.3.0/24', node: 'node-a' }], 'no failed call claimed anything');
  t.equal(await b.claimBlock(), '10.244.0.0/24', 'the blocks below stay free');
});

t.test('allocation: lowest free host, never network or broadcast, requested addresses checked', async (t) => {
  const s = fileStore(t);
  const a = new Pool(s, CFG, 'node-a');
  t.same(await a.allocate('c1/eth0'), { ip: '10.244.0.1', block: '10.244.0.0/24', handle: 'c1/eth0' }, 'claims the first block on demand');
  t.same(await a.allocate('c2/eth0'), { ip: '10.244.0.2', block: '10.244.0.0/24', handle: 'c2/eth0' });
  t.same(await a.allocate('c3/eth0', '10.244.0.77'), { ip: '10.244.0.77', block: '10.244.0.0/24', handle: 'c3/eth0' }, 'requested');
  t.same(await a.allocate('c4/eth0', '10.244.0.3'), { ip: '10.244.0.3', block: '10.244.0.0/24', handle: 'c4/eth0' });
  t.same(await a.allocate('c5/eth0'), { ip: '10.244.0.4', block: '10.244.0.0/24', handle: 'c5/eth0' }, 'skips the requested one');
  t.same(await a.allocate('c6/eth0', '10.244.0.254'), { ip: '10.244.0.254', block: '10.244.0.0/24', handle: 'c6/eth0' }, 'the last host');

  const before = await s.list('ipam/');
  await rejectsIpam(t, a.allocate('x/eth0', '10.244.1.5'), /^10\.244\.1\.5 is outside this node's pod block 10\.244\.0\.0\/24$/, 'outside the block');
  await rejectsIpam(t, a.allocate('x/eth0', '10.244.0.77'), /^10\.244\.0\.77 is already allocated \(to c3\/eth0\)$/, 'taken');
  await rejectsIpam(t, a.allocate('x/eth0', '10.244.0.0'), /^10\.244\.0\.0 is the network or broadcast address of 10\.244\.0\.0\/24$/, 'network address');
  await rejectsIpam(t, a.allocate('x/eth0', '10.244.0.255'), /^10\.244\.0\.255 is the network or broadcast address of 10\.244\.0\.0\/24$/, 'broadcast address');
  await rejectsIpam(t, a.allocate('x/eth0', '10.244.0.300'), /'10\.244\.0\.300' is not an IPv4 address/, 'not an address');
  await rejectsIpam(t, new Pool(s, CFG, 'node-b').allocate('y/eth0', '10.244.0.9'), /^10\.244\.0\.9 is outside this node's pod block 10\.244\.1\.0\/24$/,
    'another node’s block (node-b has just claimed its own)');
  t.same((await s.list('ipam/')).filter((kv) => !kv.key.startsWith('ipam/blocks/')), before.filter((kv) => !kv.key.startsWith('ipam/blocks/')),
    'failed allocations wrote no address or handle');
  t.equal(await a.lookup('x/eth0'), undefined);

  t.same(byIp(await a.allocations()), [
    { ip: '10.244.0.1', block: '10.244.0.0/24', handle: 'c1/eth0' },
    { ip: '10.244.0.2', block: '10.244.0.0/24', handle: 'c2/eth0' },
    { ip: '10.244.0.3', block: '10.244.0.0/24', handle: 'c4/eth0' },
    { ip: '10.244.0.4', block: '10.244.0.0/24', handle: 'c5/eth0' },
    { ip: '10.244.0.77', block: '10.244.0.0/24', handle: 'c3/eth0' },
    { ip: '10.244.0.254', block: '10.244.0.0/24', handle: 'c6/eth0' },
  ], 'allocations() lists exactly what is held');
  t.same(await new Pool(s, CFG, 'node-b').allocations(), [], 'another node holds nothing');
  t.same(await keys(s, 'ipam/addrs/10.244.0.0-24/'), ['1', '2', '254', '3', '4', '77'].map((x) => `ipam/addrs/10.244.0.0-24/10.244.0.${x}`));
  t.equal((await s.get('ipam/addrs/10.244.0.0-24/10.244.0.77'))?.value, JSON.stringify({ handle: 'c3/eth0', node: 'node-a' }));
  t.equal((await s.get(`ipam/handles/${encodeURIComponent('c3/eth0')}`))?.value, JSON.stringify({ ip: '10.244.0.77', block: '10.244.0.0/24' }));
});

t.test('a requested address with a node that has several blocks', async (t) => {
  const s = fileStore(t);
  const a = new Pool(s, CFG, 'node-a');
  await a.ensureBlock('10.244.5.0/24');
  await a.ensureBlock('10.244.7.0/24');
  t.same(await a.allocate('h1', '10.244.7.9'), { ip: '10.244.7.9', block: '10.244.7.0/24', handle: 'h1' });
  await rejectsIpam(t, a.allocate('h2', '10.244.6.9'), /^10\.244\.6\.9 is outside this node's pod blocks 10\.244\.5\.0\/24, 10\.244\.7\.0\/24$/, 'in no block');
  t.same(await a.allocate('h3'), { ip: '10.244.5.1', block: '10.244.5.0/24', handle: 'h3' }, 'lowest free over all blocks');
});

t.test('idempotency: a handle keeps its address', async (t) => {
  const dir = tempDir(t, 'sluice-ipam');
  const s = fileStore(t, dir);
  const a = new Pool(s, CFG, 'node-a');
  const first = await a.allocate('ctr-1/eth0');
  t.same(first, { ip: '10.244.0.1', block: '10.244.0.0/24', handle: 'ctr-1/eth0' });
  t.same(await a.allocate('ctr-1/eth0'), first, 'again: the same address');
  t.same(await a.allocate('ctr-1/eth0', '10.244.0.1'), first, 'again with its own address requested');
  t.same(await new Pool(fileStore(t, dir), CFG, 'node-a').allocate('ctr-1/eth0'), first, 'after a restart');
  await rejectsIpam(t, a.allocate('ctr-1/eth0', '10.244.0.8'), /^ctr-1\/eth0 already holds 10\.244\.0\.1, not 10\.244\.0\.8$/, 'another requested address');
  t.same(await a.lookup('ctr-1/eth0'), first, 'lookup');
  t.equal(await a.lookup('ctr-2/eth0'), undefined);
  t.same(await a.allocate('ctr-2/eth0'), { ip: '10.244.0.2', block: '10.244.0.0/24', handle: 'ctr-2/eth0' });
  t.same(await keys(s, 'ipam/handles/'), ['ipam/handles/ctr-1%2Feth0', 'ipam/handles/ctr-2%2Feth0'], 'one handle key each');
  t.same(await keys(s, 'ipam/addrs/'), ['ipam/addrs/10.244.0.0-24/10.244.0.1', 'ipam/addrs/10.244.0.0-24/10.244.0.2'], 'one address each');
  // Handles are opaque: odd characters are fine and distinct.
  const odd = ['a b', 'a%2Fb', 'a/b', '__proto__', 'ünï/€'];
  const got = await Promise.all(odd.map((h) => a.allocate(h)));
  t.same(new Set(got.map((g) => g.ip)).size, odd.length);
  for (const [i, h] of odd.entries()) t.same(await a.lookup(h), got[i], `lookup ${h}`);
});

t.test('release frees the address; twice is false; the address is reused', async (t) => {
  const s = fileStore(t);
  const a = new Pool(s, CFG, 'node-a');
  for (const h of ['h1', 'h2', 'h3']) await a.allocate(h);
  t.equal(await a.release('h2'), true);
  t.equal(await a.lookup('h2'), undefined, 'the handle is gone');
  t.equal(await s.get('ipam/addrs/10.244.0.0-24/10.244.0.2'), undefined, 'the address is free');
  t.equal(await a.release('h2'), false, 'released twice');
  t.equal(await a.release('never'), false, 'never allocated');
  t.same(byIp(await a.allocations()).map((x) => `${x.ip}=${x.handle}`), ['10.244.0.1=h1', '10.244.0.3=h3']);
  t.same(await a.allocate('h4'), { ip: '10.244.0.2', block: '10.244.0.0/24', handle: 'h4' }, 'the freed address is the lowest free again');
  t.same(await a.allocate('h2'), { ip: '10.244.0.4', block: '10.244.0.0/24', handle: 'h2' }, 'a released handle starts afresh');
  for (const h of ['h1', 'h2', 'h3', 'h4']) t.equal(await a.release(h), true, `release ${h}`);
  t.same(await keys(s, 'ipam/addrs/'), []);
  t.same(await keys(s, 'ipam/handles/'), []);
  t.same(await a.nodeBlocks(), ['10.244.0.0/24'], 'the node keeps its block');
});

t.test('a full block makes the node claim the next one; an exhausted pool is a clear error', async (t) => {
  const s = fileStore(t);
  const small: PoolConfig = { clusterCIDR: '10.9.0.0/28', blockSize: 30 };
  const a = new Pool(s, small, 'node-a');
  const got: string[] = [];
  for (let i = 0; i < 6; i++) got.push((await a.allocate(`h${i}`)).ip);
  t.same(got, ['10.9.0.1', '10.9.0.2', '10.9.0.5', '10.9.0.6', '10.9.0.9', '10.9.0.10'], 'two hosts per /30, never .0/.3/.4/.7/.8/.11');
  t.same(await a.nodeBlocks(), ['10.9.0.0/30', '10.9.0.4/30', '10.9.0.8/30']);
  const b = new Pool(s, small, 'node-b');
  t.same(await b.allocate('b0'), { ip: '10.9.0.13', block: '10.9.0.12/30', handle: 'b0' }, 'node-b gets the last block');
  await rejectsIpam(t, a.allocate('h6'), /^the pool 10\.9\.0\.0\/28 is exhausted: all 4 blocks of \/30 are claimed$/, 'node-a: exhausted');
  t.same(await b.allocate('b1'), { ip: '10.9.0.14', block: '10.9.0.12/30', handle: 'b1' }, 'node-b still has room in its block');
  await rejectsIpam(t, b.allocate('b2'), /^the pool 10\.9\.0\.0\/28 is exhausted/, 'node-b: exhausted');
  await rejectsIpam(t, a.claimBlock(), /^the pool 10\.9\.0\.0\/28 is exhausted/, 'claimBlock');
  t.equal(await a.lookup('h6'), undefined, 'a failed allocation holds nothing');
  t.equal(await a.release('h2'), true);
  t.same(await a.allocate('h6'), { ip: '10.9.0.5', block: '10.9.0.4/30', handle: 'h6' }, 'a released address makes room again');
});

t.test('200 concurrent allocations from several Pool objects of one node', async (t) => {
  const dir = tempDir(t, 'sluice-ipam');
  const shared = fileStore(t, dir);
  // Two Pools share a store client, two have their own (like separate processes).
  const pools = [new Pool(shared, CFG, 'node-a'), new Pool(shared, CFG, 'node-a'),
    new Pool(fileStore(t, dir), CFG, 'node-a'), new Pool(fileStore(t, dir), CFG, 'node-a')];
  const handles = Array.from({ length: 200 }, (_, i) => `ctr-${i}/eth0`);
  const got = await Promise.all(handles.map((h, i) => pools[i % pools.length]!.allocate(h)));
  t.same(got.map((g) => g.handle), handles, 'each call got its own handle back');
  t.equal(new Set(got.map((g) => g.ip)).size, 200, 'all 200 addresses distinct');
  t.ok(got.every((g) => g.block === '10.244.0.0/24'), 'all in the first block');
  const usable = new Set(hosts('10.244.0.0', 24));
  t.same(got.filter((g) => !usable.has(g.ip)), [], 'all usable hosts of the block (no .0, no .255)');
  t.same(await pools[0]!.blocks(), [{ block: '10.244.0.0/24', node: 'node-a' }], 'exactly one block claimed: 200 addresses fit in it');
  t.same(byIp(await pools[3]!.allocations()), byIp(got), 'allocations() lists exactly those');
  for (const g of got) t.same(await pools[1]!.lookup(g.handle), g);

  const released = await Promise.all(handles.map((h, i) => pools[(i + 1) % pools.length]!.release(h)));
  t.ok(released.every((r) => r === true), 'every release returned true');
  t.equal(released.length, 200);
  t.same(await pools[0]!.allocations(), []);
  t.same(await keys(shared, 'ipam/addrs/'), []);
  t.same(await keys(shared, 'ipam/handles/'), []);
});

t.test('concurrent allocations on one Pool object queue: call order, no lost race, a failure fails only its own call', async (t) => {
  const store = fileStore(t);
  let lostTxns = 0;
  const txn = store.txn.bind(store);
  store.txn = async (...args: Parameters<Store['txn']>) => {
    const r = await txn(...args);
    if (!r.succeeded) lostTxns++;
    return r;
  };
  const pool = new Pool(store, CFG, 'node-a');
  const calls = Array.from({ length: 60 }, (_, i) => i === 30
    ? pool.allocate('bad/eth0', '10.244.9.9').then(() => undefined, (e: Error) => e.message)
    : pool.allocate(`q-${i}/eth0`));
  const got = await Promise.all(calls);
  t.match(got[30], /10\.244\.9\.9 is outside this node's pod block 10\.244\.0\.0\/24/, 'the bad request fails alone');
  const ok = got.filter((g, i) => i !== 30) as { ip: string }[];
  t.same(ok.map((g) => g.ip), hosts('10.244.0.0', 24).slice(0, 59), 'the lowest free address each, in call order');
  t.equal(lostTxns, 0, 'no transaction lost a race: one object never races itself');
});

t.test('concurrent calls for one handle agree on one address', async (t) => {
  const dir = tempDir(t, 'sluice-ipam');
  const pools = [0, 1, 2, 3].map(() => new Pool(fileStore(t, dir), CFG, 'node-a'));
  const same = await Promise.all(Array.from({ length: 20 }, (_, i) => pools[i % 4]!.allocate('one/eth0')));
  t.same(new Set(same.map((g) => g.ip)), new Set(['10.244.0.1']));
  const req = await Promise.all(Array.from({ length: 20 }, (_, i) => pools[i % 4]!.allocate('two/eth0', '10.244.0.50')));
  t.same(new Set(req.map((g) => g.ip)), new Set(['10.244.0.50']), 'the same requested address, concurrently: no false "already allocated"');
  t.same(await keys(fileStore(t, dir), 'ipam/addrs/'),
    ['ipam/addrs/10.244.0.0-24/10.244.0.1', 'ipam/addrs/10.244.0.0-24/10.244.0.50']);
  const rel = await Promise.all(Array.from({ length: 8 }, (_, i) => pools[i % 4]!.release('one/eth0')));
  t.same(rel.filter(Boolean).length, 1, 'concurrent releases: exactly one true');
});

t.test('concurrent ensureBlock() of one node claims one block', async (t) => {
  const dir = tempDir(t, 'sluice-ipam');
  const pools = [0, 1, 2, 3, 4, 5].map(() => new Pool(fileStore(t, dir), CFG, 'node-a'));
  const got = await Promise.all(pools.map((p) => p.ensureBlock()));
  t.same(got, pools.map(() => '10.244.0.0/24'));
  t.same(await pools[0]!.blocks(), [{ block: '10.244.0.0/24', node: 'node-a' }]);
});

t.test('two nodes filling a small pool concurrently claim no block they do not need', async (t) => {
  // 8 blocks of /29 (6 hosts each) = 48 addresses: 24 per node need exactly 4 blocks each.
  const dir = tempDir(t, 'sluice-ipam');
  const cfg: PoolConfig = { clusterCIDR: '10.9.0.0/26', blockSize: 29 };
  const pools = ['node-a', 'node-b'].flatMap((n) => [0, 1, 2].map(() => new Pool(fileStore(t, dir), cfg, n)));
  const got = await Promise.all(Array.from({ length: 48 }, (_, i) => pools[i % pools.length]!.allocate(`h${i}`)));
  t.equal(new Set(got.map((g) => g.ip)).size, 48, 'every address of the pool handed out once');
  const owners = new Map((await pools[0]!.blocks()).map((b) => [b.block, b.node]));
  t.equal(owners.size, 8);
  for (const [i, g] of got.entries()) {
    t.equal(owners.get(g.block), pools[i % pools.length]!.node, `${g.handle}=${g.ip}: in a block of its node`);
  }
  t.equal([...owners.values()].filter((n) => n === 'node-a').length, 4, 'node-a: 4 blocks');
  await rejectsIpam(t, pools[0]!.allocate('more'), /exhausted/, 'and then the pool is exhausted');
});
