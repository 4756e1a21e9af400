/** sl_policy keys decoded for people: prefix lengths back to "any protocol", "any port", a port or a range. Pure. */
import t from 'tap';
import { natRows, policyRow } from '../../src/inspect/listings.js';
import { NAT_FLAGS, pairsOf, type NatEntry, type NatKey } from '../../src/maps/nat.js';
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

t.test('sl_nat pairs as rows: a pair the pod reset shows state reset', async (tt) => {
  const fk: NatKey = { saddr: '10.244.0.5', daddr: '203.0.113.10', sport: 40000, dport: 443, protocol: 6, dir: 0 };
  const rk: NatKey = { saddr: '203.0.113.10', daddr: '198.18.0.1', sport: 443, dport: 61000, protocol: 6, dir: 1 };
  const entry = (o: Partial<NatEntry>): NatEntry => ({ expires: 20_000_000_000n, packets: 1n, bytes: 60n, addr: '0.0.0.0', port: 0, flags: NAT_FLAGS.masq, state: 2, ...o });
  const rows = (revFlags: number) => natRows(pairsOf([
    [fk, entry({ addr: '198.18.0.1', port: 61000, flags: NAT_FLAGS.src | NAT_FLAGS.masq })],
    [rk, entry({ addr: '10.244.0.5', port: 40000, flags: revFlags })],
  ]), 10_000_000_000n);
  tt.match(rows(NAT_FLAGS.masq), [{ pod: '10.244.0.5:40000', node: '198.18.0.1:61000', remote: '203.0.113.10:443', state: 'closing', entries: 'both', expiresIn: 10 }]);
  tt.match(rows(NAT_FLAGS.masq | NAT_FLAGS.reset), [{ state: 'reset', entries: 'both' }], 'the reverse entry marked reset');
});
