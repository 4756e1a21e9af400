import t from 'tap';
import { FileStore } from '../../src/store/file.js';
import { FIRST_POD_IDENTITY, IdentityAllocator, identityLabels, NAMESPACE_LABEL } from '../../src/identity/identity.js';
import { tempDir } from '../helpers/env.js';

t.test('identity labels are canonical and carry the namespace', async (t) => {
  t.same(Object.keys(identityLabels('shop', { b: '1', a: '2' })), ['a', 'b', NAMESPACE_LABEL]);
  t.equal(identityLabels('shop', { [NAMESPACE_LABEL]: 'x' })[NAMESPACE_LABEL], 'shop', 'a pod cannot claim another namespace');
});

t.test('allocation: one identity per (namespace, labels), shared, concurrent-safe, collected when unused', async (t) => {
  const store = new FileStore(tempDir(t, 'sltid'));
  t.teardown(() => store.close());
  const a = new IdentityAllocator(store);
  const b = new IdentityAllocator(store);
  const web = await a.allocate('shop', { app: 'web' });
  t.equal(web, FIRST_POD_IDENTITY);
  t.equal(await b.allocate('shop', { app: 'web' }), web, 'another allocator (node) gets the same number');
  t.not(await a.allocate('other', { app: 'web' }), web, 'the namespace is part of the identity');
  t.not(await a.allocate('shop', { app: 'web', tier: 'x' }), web);
  const many = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).allocate('ns', { n: String(i % 20) })));
  t.equal(new Set(many).size, 20, '40 concurrent allocations of 20 label sets: 20 identities');
  for (let i = 0; i < 20; i++) t.equal(many[i], many[i + 20], `label set ${i}: the same identity both times`);
  const all = await a.list();
  t.equal(all.size, 23);
  t.same(all.get(web), { app: 'web', [NAMESPACE_LABEL]: 'shop' });
  t.same(await a.collect(new Set([web])), [], 'nothing is collected within the grace period');
  const freed = await a.collect(new Set([web]), 0);
  t.equal(freed.length, 22, 'everything but the identity in use');
  t.same([...(await a.list()).keys()], [web]);
  t.not(await a.allocate('ns', { n: '0' }), undefined, 'a collected label set can be allocated again');
});
