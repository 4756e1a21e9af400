/** NAT pairs of service flows as the agent pairs them (src/maps/nat.ts), and `sluice bpf services` rows (src/inspect/listings.ts). Pure. */
import t from 'tap';
import { SVC_FLAGS } from '../../src/maps/services.js';
import { natRows, serviceRows } from '../../src/inspect/listings.js';
import { NAT_FLAGS, pairInvolves, pairsOf, type NatEntry, type NatKey } from '../../src/maps/nat.js';

const svcPair = (client: string, cport: number, vip: string, vport: number, backend: string, bport: number, hairpin = false): [NatKey, NatEntry][] => {
  const e = (addr: string, port: number, flags: number): NatEntry => ({ expires: 10n, packets: 1n, bytes: 60n, addr, port, flags, state: 1 });
  const h = hairpin ? NAT_FLAGS.hairpin : 0;
  return [
    [{ saddr: client, daddr: vip, sport: cport, dport: vport, protocol: 6, dir: 0 }, e(backend, bport, NAT_FLAGS.svc | h)],
    [{ saddr: backend, daddr: hairpin ? '169.254.1.1' : client, sport: bport, dport: cport, protocol: 6, dir: 1 }, e(vip, vport, NAT_FLAGS.svc | NAT_FLAGS.src | h)],
  ];
};

t.test('service NAT pairs: paired by the reverse entry, hairpin included, and found by either pod', async (tt) => {
  const pairs = pairsOf([...svcPair('10.244.0.5', 40000, '10.96.0.10', 80, '10.244.1.5', 8080), ...svcPair('10.244.0.6', 41000, '10.96.0.10', 80, '10.244.0.6', 8080, true)]);
  tt.equal(pairs.length, 2, 'two pairs');
  tt.ok(pairs.every((p) => p.forward && p.reverse), 'both whole');
  const hp = pairs.find((p) => p.key.saddr === '10.244.0.6')!;
  tt.equal(hp.reverseKey.daddr, '169.254.1.1', 'the hairpin reply goes to the gateway address');
  const plain = pairs.find((p) => p.key.saddr === '10.244.0.5')!;
  tt.ok(pairInvolves(plain, '10.244.1.5'), 'involves its backend');
  tt.ok(pairInvolves(plain, '10.244.0.5'), 'and its client');
  tt.notOk(pairInvolves(plain, '10.96.0.10'), 'not the frontend');
  const half = pairsOf([svcPair('10.244.0.5', 40000, '10.96.0.10', 80, '10.244.1.5', 8080)[1]!]);
  tt.match(half, [{ key: { saddr: '10.244.0.5', daddr: '10.96.0.10', sport: 40000, dport: 80, dir: 0 } }], 'a reverse entry alone names its forward key');
  const rows = natRows(pairs, 0n);
  tt.match(rows.find((r) => r.pod === '10.244.0.5:40000'), { kind: 'service', node: '10.244.1.5:8080', remote: '10.96.0.10:80', entries: 'both' },
    'sluice bpf nat: the client, the backend it went to, the frontend');
});

t.test('sluice bpf services rows', async (tt) => {
  const rows = serviceRows([
    { key: { addr: '10.96.0.10', port: 80, protocol: 6 }, flags: 0, affinity: 0, id: 7, rev: 3, backends: [{ addr: '10.244.0.5', port: 8080 }] },
    { key: { addr: '198.18.0.1', port: 30080, protocol: 17 }, flags: SVC_FLAGS.nodePort | SVC_FLAGS.local, affinity: 600, id: 8, rev: 0, backends: [] },
  ], new Map([[7, 'shop/web http']]), new Map([['198.18.0.1:30080/17', 2]]));
  tt.match(rows[0], { frontend: '10.96.0.10:80', protocol: 'TCP', kind: 'ClusterIP', service: 'shop/web http', backends: ['10.244.0.5:8080'], clients: 0 });
  tt.match(rows[1], { frontend: '198.18.0.1:30080', protocol: 'UDP', kind: 'NodePort (Local)', service: '', backends: [], affinity: 600, clients: 2 });
});
