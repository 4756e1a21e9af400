/** sl_policy keys decoded for people: prefix lengths back to "any protocol", "any port", a port or a range. Pure. */
import t from 'tap';
import { policyRow } from '../../src/inspect/listings.js';
import type { Namer } from '../../src/inspect/names.js';
import { portPrefixes } from '../../src/policy/compile.js';

const names: Namer = {
  identity: (id) => (id === 0 ? 'any' : id === 300 ? 'app=client' : `identity ${id}`),
  policy: (id) => (id === 0 ? '-' : id === 7 ? 'shop/web' : `id ${id}`),
  endpoint: (id) => (id === 2 ? 'shop/web' : `endpoint ${id}`),
};
const key = (prefixlen: number, o: Partial<{ identity: number; dir: number; protocol: number; dport: number }> = {}) =>
  ({ prefixlen, endpoint: 2, identity: 0, dir: 1, protocol: 0, dport: 0, ...o });

t.test('prefix lengths', async (tt) => {
  tt.match(policyRow(key(72), { policy: 7, flags: 0 }, names), { endpoint: 'shop/web', direction: 'ingress', peer: 'any', protocol: 'any', ports: 'any', verdict: 'deny', policy: 'shop/web' });
  tt.match(policyRow(key(80, { identity: 300, protocol: 17 }), { policy: 7, flags: 1 }, names), { peer: 'app=client', protocol: 'UDP', ports: 'any', verdict: 'allow' });
  tt.match(policyRow(key(96, { protocol: 6, dport: 80 }), { policy: 7, flags: 1 }, names), { protocol: 'TCP', ports: '80' });
  tt.match(policyRow(key(83, { protocol: 6, dport: 8192 }), { policy: 7, flags: 1 }, names), { ports: '8192-16383' }, '3 port bits: an 8192-port block');
  tt.match(policyRow(key(72, { dir: 0 }), { policy: 0, flags: 2 }, names), { direction: 'egress', verdict: 'unisolated', policy: '-' });
});

t.test('a port range compiles to prefixes that list back as the range', async (tt) => {
  const blocks = portPrefixes(1000, 1999).map(([start, bits]) => policyRow(key(80 + bits, { protocol: 6, dport: start }), { policy: 7, flags: 1 }, names).ports);
  const covered = blocks.flatMap((b) => {
    const [lo, hi = lo] = b.split('-').map(Number) as [number, number?];
    return Array.from({ length: hi! - lo + 1 }, (_, i) => lo + i);
  });
  tt.same([covered[0], covered.at(-1), covered.length, new Set(covered).size], [1000, 1999, 1000, 1000], `${blocks.join(', ')} cover 1000-1999 once`);
});
