import t from 'tap';
import { allocate, release, type BlockAllocations } from '../../src/ipam/block.js';

const fresh = (block = '10.244.1.0/29'): BlockAllocations => ({ block, allocations: {} });

t.test('allocates the lowest free usable address, idempotently per owner', async (t) => {
  const s = fresh();
  t.equal(allocate(s, 'a'), '10.244.1.1');
  t.equal(allocate(s, 'b'), '10.244.1.2');
  t.equal(allocate(s, 'a'), '10.244.1.1', 'same owner, same address');
  t.same(s.allocations, { '10.244.1.1': 'a', '10.244.1.2': 'b' });
});

t.test('requested addresses are checked', async (t) => {
  const s = fresh();
  t.equal(allocate(s, 'a', '10.244.1.5'), '10.244.1.5');
  t.throws(() => allocate(s, 'b', '10.244.1.5'), { message: /10.244.1.5 is already allocated \(to a\)/ });
  t.throws(() => allocate(s, 'b', '10.244.2.1'), { message: /outside this node's pod block 10.244.1.0\/29/ });
  t.throws(() => allocate(s, 'b', '10.244.1.0'), { message: /network or broadcast address/ });
  t.throws(() => allocate(s, 'b', '10.244.1.7'), { message: /network or broadcast address/ });
  t.throws(() => allocate(s, 'b', 'nope'), { message: /not an IPv4 address/ });
  t.same(s.allocations, { '10.244.1.5': 'a' }, 'failed requests change nothing');
});

t.test('a full block is a clear error; release frees', async (t) => {
  const s = fresh();
  for (let i = 0; i < 6; i++) allocate(s, `o${i}`);
  t.throws(() => allocate(s, 'x'), { message: /pod block 10.244.1.0\/29 is full \(6 addresses in use\)/ });
  t.notOk(release(s, '10.244.1.3', 'someone-else'), 'release checks the owner');
  t.ok(release(s, '10.244.1.3', 'o2'));
  t.notOk(release(s, '10.244.1.3'), 'second release is a no-op');
  t.equal(allocate(s, 'x'), '10.244.1.3', 'the freed address is reused');
});
