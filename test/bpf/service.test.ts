/**
 * The service stage under BPF_PROG_TEST_RUN (include/sluice/lib/service.h;
 * docs/architecture.md, "Services"): from_container translating a pod's packet to a
 * frontend into one to a backend, byte for byte with every checksum checked, and the
 * backend's reply back (from_container for a backend on the node, to_container for one
 * that came through the stack); a frontend without backends answered with ICMP port
 * unreachable quoting the packet; a flow keeping its backend; affinity; hairpin; policy
 * judging the real pods; a conflicting tuple refused by name; the pairs the agent's
 * collection and endpoint removal see.
 *
 * The sender sits behind loopback (ifindex 1, the test run's device), the other pods
 * elsewhere, as in conntrack.test.ts.
 */
import t, { type Test } from 'tap';
import { IS_ROOT, uniquePrefix } from '../helpers/env.js';
import { bpfHarness, TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT } from '../helpers/bpf-harness.js';
import * as P from '../helpers/packets.js';
import { NAT_FLAGS, pairsOf, pairInvolves, type NatEntry, type NatKey } from '../../src/maps/nat.js';
import type { SvcBackend, SvcBackendKey, SvcEntry, SvcKey, SvcAffinity, SvcAffinityKey } from '../../src/maps/services.js';

type Ep = { ip: string; ifindex: number; id: number; mac: string; host_mac: string; identity: number; flags: number };
const A: Ep = { ip: '10.244.0.5', ifindex: 4241, id: 5, mac: '0a:58:0a:f4:00:05', host_mac: 'ee:ee:0a:f4:00:05', identity: 1005, flags: 0 };
const B: Ep = { ip: '10.244.0.6', ifindex: 4242, id: 6, mac: '0a:58:0a:f4:00:06', host_mac: 'ee:ee:0a:f4:00:06', identity: 1006, flags: 0 };
const C: Ep = { ip: '10.244.0.7', ifindex: 4243, id: 7, mac: '0a:58:0a:f4:00:07', host_mac: 'ee:ee:0a:f4:00:07', identity: 1007, flags: 0 };
/** A backend that is no pod of this node and has no ipcache entry: the stack routes it. */
const FAR = '10.244.9.9';
const GATEWAY = '169.254.1.1';
const VIP = '10.96.0.10';
const VIP2 = '10.96.0.11';
const TCP = 6;
const UDP = 17;
const CT_NAT_SERVICE = 1;

type CtKey = { saddr: string; daddr: string; sport: number; dport: number; protocol: number };
type CtVal = { expires: bigint; packets: bigint; bytes: bigint; policy: number; state: number; src_ep: number; dst_ep: number; nat: number };
type PolicyKey = { prefixlen: number; endpoint: number; identity: number; dir: number; protocol: number; dport: number };

if (!IS_ROOT) {
  t.plan(0, 'needs root (BPF)');
} else {
  const h = bpfHarness(t, uniquePrefix('svc'));
  const fc = h.load('from_container', { sl_gateway_ip: GATEWAY });
  const tc = h.load('to_container');
  const fromPod = fc.program('from_container');
  const toPod = tc.program('to_container');
  const m = {
    endpoints: fc.map<{ ip: string }, Omit<Ep, 'ip'>>('sl_endpoints'),
    policy: fc.map<PolicyKey, { policy: number; flags: number }>('sl_policy'),
    ct: fc.map<CtKey, CtVal>('sl_ct_v2'),
    nat: fc.map<NatKey, NatEntry>('sl_nat'),
    svc: fc.map<SvcKey, SvcEntry>('sl_svc'),
    be: fc.map<SvcBackendKey, SvcBackend>('sl_svc_be'),
    aff: fc.map<SvcAffinityKey, SvcAffinity>('sl_svc_aff'),
    metrics: fc.map<{ reason: string | number; dir: string | number }, { packets: bigint; bytes: bigint }[]>('sl_metrics'),
  };
  const any = { identity: 0, protocol: 0, dport: 0 };

  /** A fresh node: A, B, C allow everything; frontends as given (address:port/proto → backends). */
  const reset = (frontends: { addr?: string; port?: number; protocol?: number; backends: SvcBackend[]; affinity?: number }[] = []) => {
    for (const mp of [m.endpoints, m.policy, m.ct, m.nat, m.svc, m.be, m.aff, m.metrics]) mp.clear();
    for (const ep of [A, B, C]) {
      const { ip, ...v } = ep;
      m.endpoints.update({ ip }, v);
      m.policy.update({ prefixlen: 72, endpoint: ep.id, dir: 0, ...any }, { policy: 0, flags: 2 });
      m.policy.update({ prefixlen: 72, endpoint: ep.id, dir: 1, ...any }, { policy: 0, flags: 2 });
    }
    frontends.forEach((f, i) => {
      const rev = i + 1;
      f.backends.forEach((b, slot) => m.be.update({ rev, slot }, b));
      m.svc.update({ addr: f.addr ?? VIP, port: f.port ?? 80, protocol: f.protocol ?? TCP },
        { rev: f.backends.length ? rev : 0, count: f.backends.length, flags: 0, affinity: f.affinity ?? 0, id: rev });
    });
  };
  /** Runs `prog` with `sender`'s veth as the device (loopback, ifindex 1). */
  const run = (sender: Ep, frame: Buffer, prog = fromPod) => {
    for (const ep of [A, B, C]) {
      const { ip, ...v } = ep;
      m.endpoints.update({ ip }, { ...v, ifindex: ep === sender ? 1 : ep.ifindex });
    }
    m.metrics.clear();
    const r = h.run(prog, frame);
    if (!r) throw new Error('the kernel refused the frame');
    return { verdict: r.retval, data: r.data, get frame() { return P.parseFrame(r.data); }, counted: Object.keys(h.counters(m.metrics)).sort() };
  };
  const tcpFrom = (ep: Ep, dst: string, sport: number, dport: number, flags = P.TCP_SYN, payload = 'GET / HTTP/1.1\r\n\r\n') =>
    P.tcpFrame({ srcMac: ep.mac, dstMac: ep.host_mac, src: ep.ip, dst }, sport, dport, Buffer.from(payload), { flags, seq: 1000, ack: flags & P.TCP_ACK ? 1 : 0 });
  const udpFrom = (ep: Ep, dst: string, sport: number, dport: number) =>
    P.udpFrame({ srcMac: ep.mac, dstMac: ep.host_mac, src: ep.ip, dst }, sport, dport, Buffer.from('query'));
  /** As the stack hands a packet to a pod's veth (to_container). */
  const fromStack = (src: string, to: Ep, sport: number, dport: number) =>
    P.tcpFrame({ srcMac: '02:00:00:00:00:01', dstMac: to.host_mac, src, dst: to.ip, ttl: 63 }, sport, dport, Buffer.from('ok'), { flags: P.TCP_SYN | P.TCP_ACK, seq: 9000, ack: 1001 });
  const checksumsValid = (tt: Test, f: P.ParsedFrame, what: string) => {
    tt.ok(f.ipv4!.checksumValid, `${what}: IPv4 checksum valid`);
    tt.ok(f.l4!.checksumValid, `${what}: L4 checksum valid`);
  };
  const span = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
  const onlyChanged = (tt: Test, a: Buffer, b: Buffer, allowed: number[], what: string) =>
    tt.same(P.diffBytes(a, b).filter((i) => !allowed.includes(i)), [], `${what}: nothing else changed`);
  const L4 = 14 + 20;
  const MACS = span(0, 12);
  const IP_CSUM = span(24, 2);
  const TTL = [22];
  const SRC_IP = span(26, 4);
  const DST_IP = span(30, 4);
  const SPORT = span(L4, 2);
  const DPORT = span(L4 + 2, 2);
  const TCP_CSUM = span(L4 + 16, 2);
  const nowNs = () => process.hrtime.bigint();

  t.test('TCP to a ClusterIP: destination translated to the backend on this node, checksums valid, nothing else changed', async (tt) => {
    reset([{ backends: [{ addr: B.ip, port: 8080 }] }]);
    const syn = tcpFrom(A, VIP, 40000, 80);
    const r = run(A, syn);
    tt.equal(r.verdict, TC_ACT_REDIRECT, 'redirected into the backend');
    checksumsValid(tt, r.frame, 'translated');
    tt.match(r.frame.ipv4!, { src: A.ip, dst: B.ip, ttl: 63 }, 'to the backend, from the client');
    tt.same([r.frame.l4!.sport, r.frame.l4!.dport], [40000, 8080], 'to the backend\'s port');
    tt.same([r.frame.eth.dst, r.frame.eth.src], [B.mac, B.host_mac], 'MACs for the backend');
    onlyChanged(tt, r.data, syn, [...MACS, ...TTL, ...IP_CSUM, ...DST_IP, ...DPORT, ...TCP_CSUM], 'translated');
    tt.same(r.counted, ['forward_local/egress', 'service/egress'], 'counted as a service translation and a local forward');
    const fwd = m.nat.lookup({ saddr: A.ip, daddr: VIP, sport: 40000, dport: 80, protocol: TCP, dir: 0 });
    const rev = m.nat.lookup({ saddr: B.ip, daddr: A.ip, sport: 8080, dport: 40000, protocol: TCP, dir: 1 });
    tt.match(fwd, { addr: B.ip, port: 8080, flags: NAT_FLAGS.svc, state: 0 }, 'forward entry: the backend');
    tt.match(rev, { addr: VIP, port: 80, flags: NAT_FLAGS.svc | NAT_FLAGS.src, state: 0 }, 'reverse entry: the frontend, as source');
    const ct = m.ct.lookup({ saddr: A.ip, daddr: B.ip, sport: 40000, dport: 8080, protocol: TCP });
    tt.match(ct, { nat: CT_NAT_SERVICE, src_ep: A.id, dst_ep: B.id }, 'conntrack: the flow between the real pods, under a service translation');
    const pairs = pairsOf(m.nat.entries());
    tt.equal(pairs.length, 1, 'the agent sees one pair');
    tt.ok(pairs[0]!.forward && pairs[0]!.reverse, 'a whole pair');
    tt.ok(pairInvolves(pairs[0]!, B.ip) && pairInvolves(pairs[0]!, A.ip), 'it involves the client and the backend (removed with either)');
    tt.notOk(pairInvolves(pairs[0]!, C.ip), 'and no other pod');

    // the backend's reply, on this node: from the frontend again
    const synack = tcpFrom(B, A.ip, 8080, 40000, P.TCP_SYN | P.TCP_ACK, '');
    const b = run(B, synack);
    tt.equal(b.verdict, TC_ACT_REDIRECT, 'reply redirected into the client');
    checksumsValid(tt, b.frame, 'reply');
    tt.match(b.frame.ipv4!, { src: VIP, dst: A.ip }, 'reply: from the frontend');
    tt.same([b.frame.l4!.sport, b.frame.l4!.dport], [80, 40000], 'reply: from the frontend\'s port');
    onlyChanged(tt, b.data, synack, [...MACS, ...TTL, ...IP_CSUM, ...SRC_IP, ...SPORT, ...TCP_CSUM], 'reply');
    tt.equal(m.ct.lookup({ saddr: A.ip, daddr: B.ip, sport: 40000, dport: 8080, protocol: TCP })!.state, 1, 'the reply established the flow');
    tt.equal(m.nat.lookup({ saddr: B.ip, daddr: A.ip, sport: 8080, dport: 40000, protocol: TCP, dir: 1 })!.state, 1, 'and its translation');
  });

  t.test('a flow keeps its backend; new flows spread over the set', async (tt) => {
    reset([{ backends: [{ addr: B.ip, port: 8080 }, { addr: C.ip, port: 8080 }] }]);
    const first = run(A, tcpFrom(A, VIP, 41000, 80)).frame.ipv4!.dst;
    const again = new Set<string>();
    for (let i = 0; i < 10; i++) again.add(run(A, tcpFrom(A, VIP, 41000, 80, P.TCP_ACK)).frame.ipv4!.dst);
    tt.same([...again], [first], 'every packet of the flow to one backend');
    const seen = new Map<string, number>();
    for (let port = 42000; port < 42064; port++) {
      const d = run(A, tcpFrom(A, VIP, port, 80)).frame.ipv4!.dst;
      seen.set(d, (seen.get(d) ?? 0) + 1);
    }
    tt.same([...seen.keys()].sort(), [B.ip, C.ip], '64 flows reach both backends');
    tt.ok(Math.min(...seen.values()) >= 10, `neither backend starved: ${JSON.stringify(Object.fromEntries(seen))}`);
  });

  t.test('a SYN on a closed flow\'s tuple is a new connection: a removed backend gets no new flow', async (tt) => {
    reset([{ backends: [{ addr: B.ip, port: 8080 }] }]);
    tt.equal(run(A, tcpFrom(A, VIP, 43000, 80)).frame.ipv4!.dst, B.ip);
    run(A, tcpFrom(A, VIP, 43000, 80, P.TCP_FIN | P.TCP_ACK));
    // the set changes to C only (as the agent writes it: the new set, then the entry)
    m.be.update({ rev: 7, slot: 0 }, { addr: C.ip, port: 8080 });
    m.svc.update({ addr: VIP, port: 80, protocol: TCP }, { rev: 7, count: 1, flags: 0, affinity: 0, id: 1 });
    tt.equal(run(A, tcpFrom(A, VIP, 44000, 80, P.TCP_ACK)).frame.ipv4!.dst, C.ip, 'a new flow: the new set');
    tt.equal(run(A, tcpFrom(A, VIP, 43000, 80)).frame.ipv4!.dst, C.ip, 'a SYN reusing the closed tuple: the new set too');
  });

  t.test('UDP both ways, checksums valid', async (tt) => {
    reset([{ port: 53, protocol: UDP, backends: [{ addr: B.ip, port: 5353 }] }]);
    const q = run(A, udpFrom(A, VIP, 33000, 53));
    tt.equal(q.verdict, TC_ACT_REDIRECT);
    checksumsValid(tt, q.frame, 'query');
    tt.same([q.frame.ipv4!.dst, q.frame.l4!.dport], [B.ip, 5353]);
    const a = run(B, udpFrom(B, A.ip, 5353, 33000));
    checksumsValid(tt, a.frame, 'answer');
    tt.same([a.frame.ipv4!.src, a.frame.l4!.sport, a.frame.ipv4!.dst], [VIP, 53, A.ip], 'answer from the frontend');
  });

  t.test('a backend elsewhere: the translated packet goes on as to that address; the reply through the stack is translated back in to_container', async (tt) => {
    reset([{ port: 443, backends: [{ addr: FAR, port: 8443 }] }]);
    const s = run(A, tcpFrom(A, VIP, 45000, 443));
    tt.equal(s.verdict, TC_ACT_OK, 'to the stack, which routes the backend\'s address');
    checksumsValid(tt, s.frame, 'translated');
    tt.same([s.frame.ipv4!.dst, s.frame.l4!.dport], [FAR, 8443]);
    tt.same(s.counted, ['service/egress', 'to_stack/egress']);
    const back = run(A, fromStack(FAR, A, 8443, 45000), toPod);
    tt.equal(back.verdict, TC_ACT_OK, 'to_container delivers the reply');
    checksumsValid(tt, back.frame, 'reply');
    tt.same([back.frame.ipv4!.src, back.frame.l4!.sport, back.frame.ipv4!.dst, back.frame.l4!.dport], [VIP, 443, A.ip, 45000], 'from the frontend');
    tt.equal(back.frame.eth.dst, A.mac, 'to the pod\'s MAC');
  });

  t.test('no backends: ICMP port unreachable from the frontend, back into the pod, quoting the packet', async (tt) => {
    reset([{ backends: [] }, { addr: VIP, port: 53, protocol: UDP, backends: [] }]);
    for (const [what, frame] of [['TCP SYN', tcpFrom(A, VIP, 46000, 80)], ['UDP', udpFrom(A, VIP, 46001, 53)]] as const) {
      const r = run(A, frame);
      tt.equal(r.verdict, TC_ACT_REDIRECT, `${what}: sent back`);
      tt.same([r.frame.eth.dst, r.frame.eth.src], [A.mac, A.host_mac], `${what}: to the pod, from its gateway's MAC`);
      tt.match(r.frame.ipv4!, { src: VIP, dst: A.ip, protocol: 1, ttl: 64, totalLength: 56 }, `${what}: ICMP from the frontend to the pod`);
      tt.ok(r.frame.ipv4!.checksumValid, `${what}: IPv4 checksum valid`);
      tt.match(r.frame.l4!, { type: 3, code: 3, checksumValid: true }, `${what}: destination unreachable, port unreachable, checksum valid`);
      tt.same(r.frame.l4!.payload.subarray(0, 28), frame.subarray(14, 42), `${what}: quotes the IPv4 header and 8 bytes as the pod sent them`);
      tt.same(r.counted, ['service_reject/egress'], `${what}: counted as refused`);
    }
    tt.equal(m.nat.count(), 0, 'no translation recorded');
    tt.equal(m.ct.count(), 0, 'no flow recorded');
  });

  t.test('sessionAffinity: a client\'s new flows keep its backend while the affinity holds', async (tt) => {
    reset([{ backends: [{ addr: B.ip, port: 8080 }, { addr: C.ip, port: 8080 }], affinity: 100 }]);
    const first = run(A, tcpFrom(A, VIP, 47000, 80)).frame.ipv4!.dst;
    const all = new Set<string>();
    for (let port = 47001; port < 47033; port++) all.add(run(A, tcpFrom(A, VIP, port, 80)).frame.ipv4!.dst);
    tt.same([...all], [first], '32 more flows: the same backend');
    const a = m.aff.lookup({ client: A.ip, addr: VIP, port: 80, protocol: TCP });
    tt.match(a, { addr: first, port: 8080 }, 'the affinity entry names it');
    const left = Number(a!.expires - nowNs()) / 1e9;
    tt.ok(left > 95 && left <= 100, `for the timeout (${left.toFixed(1)} s left)`);
    // expired: a new flow chooses again (and is remembered anew)
    m.aff.update({ client: A.ip, addr: VIP, port: 80, protocol: TCP }, { expires: nowNs() - 1n, addr: first, port: 8080 });
    const other = first === B.ip ? C.ip : B.ip;
    let moved = false;
    for (let port = 48000; port < 48032 && !moved; port++) {
      m.aff.update({ client: A.ip, addr: VIP, port: 80, protocol: TCP }, { expires: nowNs() - 1n, addr: first, port: 8080 });
      moved = run(A, tcpFrom(A, VIP, port, 80)).frame.ipv4!.dst === other;
    }
    tt.ok(moved, 'after the timeout a new flow may go to another backend');
  });

  t.test('hairpin: a pod reaching itself through its service, from the gateway address, and its reply back', async (tt) => {
    reset([{ backends: [{ addr: A.ip, port: 8080 }] }]);
    const syn = tcpFrom(A, VIP, 49000, 80);
    const r = run(A, syn);
    tt.equal(r.verdict, TC_ACT_REDIRECT, 'back into the pod');
    checksumsValid(tt, r.frame, 'hairpin');
    tt.match(r.frame.ipv4!, { src: GATEWAY, dst: A.ip }, 'from the gateway address (the pod would drop its own address as source)');
    tt.same([r.frame.l4!.sport, r.frame.l4!.dport], [49000, 8080]);
    tt.same([r.frame.eth.dst, r.frame.eth.src], [A.mac, A.host_mac]);
    const reply = run(A, tcpFrom(A, GATEWAY, 8080, 49000, P.TCP_SYN | P.TCP_ACK, ''));
    tt.equal(reply.verdict, TC_ACT_REDIRECT, 'the reply back into the pod');
    checksumsValid(tt, reply.frame, 'hairpin reply');
    tt.match(reply.frame.ipv4!, { src: VIP, dst: A.ip }, 'from the frontend, to the pod');
    tt.same([reply.frame.l4!.sport, reply.frame.l4!.dport], [80, 49000]);
    const pairs = pairsOf(m.nat.entries());
    tt.equal(pairs.length, 1, 'one pair for the agent (found by its reverse entry)');
    tt.ok(pairs[0]!.forward && pairs[0]!.reverse && pairs[0]!.reverseKey.daddr === GATEWAY, 'whole, its reply to the gateway address');
    tt.equal(run(A, tcpFrom(A, GATEWAY, 8081, 49000, P.TCP_ACK)).verdict, TC_ACT_OK, 'to the gateway address without a translation: the stack\'s');
  });

  t.test('policy judges the real pods: the backend\'s ingress sees the client, the client\'s egress the backend', async (tt) => {
    reset([{ backends: [{ addr: B.ip, port: 8080 }] }]);
    m.policy.update({ prefixlen: 72, endpoint: B.id, dir: 1, ...any }, { policy: 9, flags: 0 }); // B ingress isolated
    m.policy.update({ prefixlen: 96, endpoint: B.id, dir: 1, identity: A.identity, protocol: TCP, dport: 8080 }, { policy: 9, flags: 1 });
    tt.equal(run(A, tcpFrom(A, VIP, 50000, 80)).verdict, TC_ACT_REDIRECT, 'B allows A on 8080 (the backend port): through the service too');
    tt.equal(run(C, tcpFrom(C, VIP, 50001, 80)).verdict, TC_ACT_SHOT, 'B does not allow C');
    tt.same(run(C, tcpFrom(C, VIP, 50002, 80)).counted, ['drop_policy_ingress/egress', 'service/egress'], 'dropped by B\'s ingress policy after the translation');
    m.policy.update({ prefixlen: 72, endpoint: A.id, dir: 0, ...any }, { policy: 10, flags: 0 }); // A egress isolated
    m.policy.update({ prefixlen: 96, endpoint: A.id, dir: 0, identity: B.identity, protocol: TCP, dport: 8080 }, { policy: 10, flags: 1 });
    tt.equal(run(A, tcpFrom(A, VIP, 50003, 80)).verdict, TC_ACT_REDIRECT, 'A\'s egress allows B on 8080: the service to B is allowed');
    m.policy.delete({ prefixlen: 96, endpoint: A.id, dir: 0, identity: B.identity, protocol: TCP, dport: 8080 });
    tt.equal(run(A, tcpFrom(A, VIP, 50004, 80)).verdict, TC_ACT_SHOT, 'without it: dropped, though nothing names the frontend');
  });

  t.test('one client tuple to two frontends of one backend: the second is refused by name, the first keeps working', async (tt) => {
    reset([{ backends: [{ addr: B.ip, port: 8080 }] }, { addr: VIP2, backends: [{ addr: B.ip, port: 8080 }] }]);
    tt.equal(run(A, tcpFrom(A, VIP, 51000, 80)).verdict, TC_ACT_REDIRECT);
    const r = run(A, tcpFrom(A, VIP2, 51000, 80));
    tt.equal(r.verdict, TC_ACT_SHOT, 'the same tuple at the backend: dropped');
    tt.same(r.counted, ['drop_svc_conflict/egress']);
    tt.equal(run(A, tcpFrom(A, VIP, 51000, 80, P.TCP_ACK)).frame.ipv4!.dst, B.ip, 'the first flow is untouched');
  });

  t.test('a lost reverse entry is written again by the flow\'s next packet', async (tt) => {
    reset([{ backends: [{ addr: B.ip, port: 8080 }] }]);
    run(A, tcpFrom(A, VIP, 52000, 80));
    m.nat.delete({ saddr: B.ip, daddr: A.ip, sport: 8080, dport: 52000, protocol: TCP, dir: 1 });
    tt.equal(run(A, tcpFrom(A, VIP, 52000, 80, P.TCP_ACK)).frame.ipv4!.dst, B.ip);
    tt.match(m.nat.lookup({ saddr: B.ip, daddr: A.ip, sport: 8080, dport: 52000, protocol: TCP, dir: 1 }), { addr: VIP, port: 80 }, 'healed');
    tt.equal(run(B, tcpFrom(B, A.ip, 8080, 52000, P.TCP_ACK, '')).frame.ipv4!.src, VIP, 'the reply is translated again');
  });

  t.test('not a frontend: ICMP and other ports pass untouched', async (tt) => {
    reset([{ backends: [{ addr: B.ip, port: 8080 }] }]);
    const ping = P.icmpFrame({ srcMac: A.mac, dstMac: A.host_mac, src: A.ip, dst: VIP }, Buffer.from('ping'), { id: 7, seq: 1 });
    const r = run(A, ping);
    tt.equal(r.frame.ipv4!.dst, VIP, 'an echo to the ClusterIP is not translated');
    tt.notOk(r.counted.includes('service/egress'));
    tt.equal(run(A, tcpFrom(A, VIP, 53000, 81)).frame.ipv4!.dst, VIP, 'another port: not translated');
    tt.equal(m.nat.count(), 0);
  });

  t.test('truncated TCP to a frontend is dropped as malformed before any lookup', async (tt) => {
    reset([{ backends: [{ addr: B.ip, port: 8080 }] }]);
    const syn = tcpFrom(A, VIP, 54000, 80);
    const r = run(A, P.truncate(syn, L4 + 10));
    tt.equal(r.verdict, TC_ACT_SHOT);
    tt.same(r.counted, ['drop_malformed/egress']);
    tt.equal(m.nat.count(), 0);
  });
}
