/** The masquerade plan (src/routing/masq.ts) and the NAT table's pairs (src/maps/nat.ts): pure. */
import t from 'tap';
import { resolveConfig } from '../../src/config/config.js';
import { deadPairs, pairsOf, type NatEntry, type NatKey } from '../../src/maps/nat.js';
import { parseLocalPortRange, planMasquerade } from '../../src/routing/masq.js';

const cfg = (o: Record<string, unknown> = {}) => resolveConfig({ nodeName: 'n1', ...o }, {});
const inputs = { uplinkIp: '198.18.0.1', localPorts: { min: 32768, max: 60999 }, vxlanPort: 8472 };

t.test('defaults: on, the uplink\'s address, 61000-65535, the pool exempt', async (t) => {
  const p = planMasquerade(cfg(), inputs);
  t.same(p.config, { addr: '198.18.0.1', port_min: 61000, port_max: 65535, flags: 1 });
  t.same([...p.nonMasq], ['10.244.0.0/16']);
  t.same(p.problems, []);
});

t.test('masqueradeAddress and nonMasqueradeCIDRs; the pool is exempt whatever the key says', async (t) => {
  const p = planMasquerade(cfg({ masqueradeAddress: '192.0.2.7', nonMasqueradeCIDRs: ['10.96.0.0/12'] }), inputs);
  t.equal(p.config.addr, '192.0.2.7');
  t.same([...p.nonMasq].sort(), ['10.244.0.0/16', '10.96.0.0/12']);
});

t.test('off by config: flags 0, no problem', async (t) => {
  const p = planMasquerade(cfg({ masquerade: false }), inputs);
  t.equal(p.config.flags, 0);
  t.same(p.problems, []);
});

t.test('settings that would misdeliver the node\'s replies turn it off, naming the key', async (t) => {
  const overlap = planMasquerade(cfg({ masqueradePortRange: '60000-61000' }), inputs);
  t.equal(overlap.config.flags, 0);
  t.match(overlap.problems, [/^masqueradePortRange: 60000-61000 overlaps the node's ephemeral ports \(net\.ipv4\.ip_local_port_range 32768-60999\)/]);
  const vx = planMasquerade(cfg({ masqueradePortRange: '8000-9000' }), inputs);
  t.equal(vx.config.flags, 0);
  t.match(vx.problems, [/^masqueradePortRange: 8000-9000 holds the overlay's port 8472/]);
  const noAddr = planMasquerade(cfg(), { ...inputs, uplinkIp: '' });
  t.same([noAddr.config.flags, noAddr.config.addr], [0, '0.0.0.0']);
  t.same(noAddr.problems, [], 'without an uplink address masquerade is off, and that is no problem to report every pass (nothing leaves for the world)');
  t.same(planMasquerade(cfg({ masqueradePortRange: '40000-50000' }), { ...inputs, localPorts: undefined }).problems, [], 'an unknown ephemeral range is not checked');
});

t.test('parseLocalPortRange', async (t) => {
  t.same(parseLocalPortRange('32768\t60999\n'), { min: 32768, max: 60999 });
  t.equal(parseLocalPortRange('garbage'), undefined);
});

t.test('NAT pairs: grouped, half pairs found, dead pairs are those whose entries all expired', async (t) => {
  const e = (addr: string, port: number, expires: bigint): NatEntry => ({ expires, packets: 1n, bytes: 60n, addr, port, flags: 0, state: 0 });
  const fwd = (sport: number): NatKey => ({ saddr: '10.244.0.5', daddr: '203.0.113.10', sport, dport: 443, protocol: 6, dir: 0 });
  const rev = (dport: number): NatKey => ({ saddr: '203.0.113.10', daddr: '198.18.0.1', sport: 443, dport, protocol: 6, dir: 1 });
  const entries: [NatKey, NatEntry][] = [
    [fwd(40000), e('198.18.0.1', 61000, 100n)], [rev(61000), e('10.244.0.5', 40000, 50n)], // live (forward)
    [fwd(40001), e('198.18.0.1', 61001, 10n)], [rev(61001), e('10.244.0.5', 40001, 10n)], // dead
    [fwd(40002), e('198.18.0.1', 61002, 10n)], // half: no reverse
    [rev(61003), e('10.244.0.5', 40003, 100n)], // half: no forward, live
    [{ ...fwd(40004), protocol: 1, dport: 40004 }, e('198.18.0.1', 61004, 10n)],
    [{ ...rev(61004), protocol: 1, sport: 61004 }, e('10.244.0.5', 40004, 10n)], // ICMP echo pair, dead
  ];
  const pairs = pairsOf(entries);
  t.equal(pairs.length, 5);
  t.same(pairs.map((p) => [p.key.sport, !!p.forward, !!p.reverse]), [[40000, true, true], [40001, true, true], [40002, true, false], [40004, true, true], [40003, false, true]]);
  t.same(deadPairs(pairs, 20n).map((p) => p.key.sport), [40001, 40002, 40004], 'at 20: the two dead pairs and the dead half');
  t.same(deadPairs(pairs, 200n).length, 5, 'at 200: all');
});
