/**
 * Conntrack and policy under BPF_PROG_TEST_RUN: a flow policy allows is recorded in sl_ct_v2,
 * its replies pass although the replying side's policy would deny a new flow, TCP states
 * move (NEW -> ESTABLISHED -> CLOSING, with their timeouts), a dead entry no longer lets
 * replies through, and verdicts are counted per policy in sl_policy_st.
 *
 * Pod A is isolated both ways; its egress may reach B's identity on TCP/80 (policy 7).
 * Pod B is selected by no policy.
 */
import t from 'tap';
import { bpfHarness } from '../helpers/bpf-harness.js';
import { IS_ROOT, uniquePrefix } from '../helpers/env.js';
import * as P from '../helpers/packets.js';

const REDIRECT = 7;
const SHOT = 2;
const A = { ip: '10.244.0.5', id: 1, mac: '0a:58:0a:f4:00:05', host_mac: 'ee:ee:0a:f4:00:05', identity: 300, flags: 0 };
const B = { ip: '10.244.0.6', id: 2, mac: '0a:58:0a:f4:00:06', host_mac: 'ee:ee:0a:f4:00:06', identity: 301, flags: 0 };
const SEC = 1_000_000_000n;

if (!IS_ROOT) {
  t.plan(0, 'needs root (BPF)');
} else {
  const h = bpfHarness(t, uniquePrefix('ct'));
  const fc = h.load('from_container', { sl_gateway_ip: '169.254.1.1' });
  const prog = fc.program('from_container');
  const endpoints = fc.map<{ ip: string }, { ifindex: number; id: number; mac: string; host_mac: string; identity: number; flags: number }>('sl_endpoints');
  const policy = fc.map<{ prefixlen: number; endpoint: number; identity: number; dir: number; protocol: number; dport: number }, { policy: number; flags: number }>('sl_policy');
  type CtKey = { saddr: string; daddr: string; sport: number; dport: number; protocol: number };
  type CtVal = { expires: bigint; packets: bigint; bytes: bigint; policy: number; state: number; src_ep: number; dst_ep: number; nat: number };
  const ct = fc.map<CtKey, CtVal>('sl_ct_v2');
  const stats = fc.map<{ policy: number; dir: number; allowed: number }, { packets: bigint; bytes: bigint }[]>('sl_policy_st');
  const metrics = fc.map<{ reason: string | number; dir: string | number }, { packets: bigint; bytes: bigint }[]>('sl_metrics');

  /** `sender` sits behind loopback (the test run's device), the other pod elsewhere. */
  const send = (sender: typeof A, frame: Buffer) => {
    for (const ep of [A, B]) {
      const { ip, ...v } = ep;
      endpoints.update({ ip }, { ...v, ifindex: ep === sender ? 1 : 4242 });
    }
    metrics.clear();
    const r = h.run(prog, frame);
    if (!r) throw new Error('refused');
    return { verdict: r.retval, counted: Object.keys(h.counters(metrics)) };
  };
  const tcpAB = (flags: number, dport = 80, sport = 40000) => P.tcpFrame({ srcMac: A.mac, dstMac: A.host_mac, src: A.ip, dst: B.ip }, sport, dport, Buffer.alloc(0), { flags });
  const tcpBA = (flags: number, sport = 80, dport = 40000) => P.tcpFrame({ srcMac: B.mac, dstMac: B.host_mac, src: B.ip, dst: A.ip }, sport, dport, Buffer.alloc(0), { flags });
  const flowKey: CtKey = { saddr: A.ip, daddr: B.ip, sport: 40000, dport: 80, protocol: 6 };
  const nowNs = () => process.hrtime.bigint();

  t.test('setup', async () => {
    policy.clear();
    ct.clear();
    stats.clear();
    const any = { identity: 0, protocol: 0, dport: 0 };
    policy.update({ prefixlen: 72, endpoint: A.id, dir: 0, ...any }, { policy: 7, flags: 0 }); // A egress isolated
    policy.update({ prefixlen: 72, endpoint: A.id, dir: 1, ...any }, { policy: 7, flags: 0 }); // A ingress isolated
    policy.update({ prefixlen: 96, endpoint: A.id, dir: 0, identity: B.identity, protocol: 6, dport: 80 }, { policy: 7, flags: 1 });
    policy.update({ prefixlen: 72, endpoint: B.id, dir: 0, ...any }, { policy: 0, flags: 2 });
    policy.update({ prefixlen: 72, endpoint: B.id, dir: 1, ...any }, { policy: 0, flags: 2 });
  });

  t.test('a new flow the policy allows is recorded, NEW, with a SYN timeout', async (tt) => {
    const r = send(A, tcpAB(P.TCP_SYN));
    tt.same(r, { verdict: REDIRECT, counted: ['forward_local/egress'] });
    const e = ct.lookup(flowKey)!;
    tt.match(e, { state: 0, policy: 7, packets: 1n });
    tt.ok(e.expires > nowNs() + 50n * SEC && e.expires < nowNs() + 61n * SEC, 'expires in about 60 s');
  });

  t.test("its reply passes though A's ingress allows nothing, and establishes it", async (tt) => {
    tt.same(send(B, tcpBA(P.TCP_SYN | P.TCP_ACK)), { verdict: REDIRECT, counted: ['forward_local/egress'] });
    const e = ct.lookup(flowKey)!;
    tt.match(e, { state: 1, packets: 2n });
    tt.ok(e.expires > nowNs() + 5n * 3600n * SEC, 'established: hours');
    tt.equal(ct.lookup({ ...flowKey, saddr: B.ip, daddr: A.ip, sport: 80, dport: 40000 }), undefined, 'one entry per flow, keyed by its first packet');
  });

  t.test('a new flow from B to A is denied by A\'s ingress, counted against policy 7', async (tt) => {
    tt.same(send(B, tcpBA(P.TCP_SYN, 5000, 22)), { verdict: SHOT, counted: ['drop_policy_ingress/egress'] });
    const denied = [...stats.entries()].find(([k]) => k.policy === 7 && k.dir === 1 && k.allowed === 0);
    tt.ok(denied && denied[1].reduce((a, v) => a + v.packets, 0n) === 1n, 'sl_policy_st: policy 7, ingress, denied: 1 packet');
  });

  t.test("A's egress to a port its policy does not list is denied", async (tt) => {
    tt.same(send(A, tcpAB(P.TCP_SYN, 81)), { verdict: SHOT, counted: ['drop_policy_egress/egress'] });
  });

  t.test('FIN moves the flow to CLOSING with a short timeout', async (tt) => {
    tt.same(send(A, tcpAB(P.TCP_FIN | P.TCP_ACK)).verdict, REDIRECT);
    const e = ct.lookup(flowKey)!;
    tt.equal(e.state, 2);
    tt.ok(e.expires < nowNs() + 11n * SEC, 'expires within 10 s');
  });

  t.test('a dead entry lets no reply through', async (tt) => {
    const e = ct.lookup(flowKey)!;
    ct.update(flowKey, { ...e, expires: 1n });
    tt.same(send(B, tcpBA(P.TCP_ACK)), { verdict: SHOT, counted: ['drop_policy_ingress/egress'] });
  });

  t.test('a mid-flow packet with no entry (a flow older than the table) is decided by policy and starts ESTABLISHED', async (tt) => {
    ct.clear();
    tt.equal(send(A, tcpAB(P.TCP_ACK)).verdict, REDIRECT);
    tt.equal(ct.lookup(flowKey)!.state, 1);
  });

  t.test('UDP: the reply of an allowed datagram passes; 60 s timeout', async (tt) => {
    policy.update({ prefixlen: 96, endpoint: A.id, dir: 0, identity: B.identity, protocol: 17, dport: 53 }, { policy: 7, flags: 1 });
    const q = P.udpFrame({ srcMac: A.mac, dstMac: A.host_mac, src: A.ip, dst: B.ip }, 33000, 53);
    const a = P.udpFrame({ srcMac: B.mac, dstMac: B.host_mac, src: B.ip, dst: A.ip }, 53, 33000);
    tt.equal(send(A, q).verdict, REDIRECT);
    tt.equal(send(B, a).verdict, REDIRECT, 'the answer passes');
    const e = ct.lookup({ saddr: A.ip, daddr: B.ip, sport: 33000, dport: 53, protocol: 17 })!;
    tt.match(e, { state: 1, packets: 2n });
    tt.ok(e.expires < nowNs() + 61n * SEC);
    const unsolicited = P.udpFrame({ srcMac: B.mac, dstMac: B.host_mac, src: B.ip, dst: A.ip }, 53, 33001);
    tt.equal(send(B, unsolicited).verdict, SHOT, 'a datagram to another port is a new flow, denied');
  });

  // A flow is admitted between pods, and its entry says which: a packet of it between
  // other endpoints is a new flow. Pod C (ingress isolated: allows nothing) at first is not
  // there; B is selected by no policy.
  const C = { ip: '10.244.0.7', id: 3, mac: '0a:58:0a:f4:00:07', host_mac: 'ee:ee:0a:f4:00:07', identity: 302, flags: 0 };
  const bToC = () => P.udpFrame({ srcMac: B.mac, dstMac: B.host_mac, src: B.ip, dst: C.ip }, 41000, 9000);
  const bcKey: CtKey = { saddr: B.ip, daddr: C.ip, sport: 41000, dport: 9000, protocol: 17 };
  const TC_ACT_OK = 0;

  t.test('the entry names the endpoints that admitted the flow, and no translation', async (tt) => {
    ct.clear();
    tt.equal(send(A, tcpAB(P.TCP_SYN)).verdict, REDIRECT);
    tt.match(ct.lookup(flowKey), { src_ep: A.id, dst_ep: B.id, nat: 0, policy: 7 });
  });

  t.test('a flow to an address that becomes a pod meets that pod\'s ingress policy from its next packet', async (tt) => {
    ct.clear();
    endpoints.delete({ ip: C.ip });
    policy.update({ prefixlen: 72, endpoint: C.id, dir: 1, identity: 0, protocol: 0, dport: 0 }, { policy: 9, flags: 0 });
    tt.equal(send(B, bToC()).verdict, TC_ACT_OK, 'no pod there: the stack routes it');
    tt.match(ct.lookup(bcKey), { src_ep: B.id, dst_ep: 0 }, 'recorded as a flow from B to no pod');
    const { ip, ...v } = C;
    endpoints.update({ ip }, { ...v, ifindex: 4343 });
    const r = h.run(prog, bToC());
    tt.equal(r?.retval, SHOT, 'the address is pod C\'s now: its ingress policy denies the flow');
    tt.equal(ct.lookup(bcKey), undefined, 'the stale entry is gone');
    endpoints.delete({ ip: C.ip });
  });

  t.test('a flow to an address that another endpoint holds now is a new flow', async (tt) => {
    ct.clear();
    policy.update({ prefixlen: 72, endpoint: 5, dir: 1, identity: 0, protocol: 0, dport: 0 }, { policy: 9, flags: 0 });
    policy.update({ prefixlen: 72, endpoint: C.id, dir: 1, identity: 0, protocol: 0, dport: 0 }, { policy: 0, flags: 2 });
    const { ip, ...v } = C;
    endpoints.update({ ip }, { ...v, ifindex: 4343 });
    tt.equal(h.run(prog, bToC())?.retval, REDIRECT, 'C (endpoint 3) is selected by no policy: delivered');
    tt.match(ct.lookup(bcKey), { src_ep: B.id, dst_ep: C.id });
    endpoints.update({ ip }, { ...v, id: 5, ifindex: 4344 });
    tt.equal(h.run(prog, bToC())?.retval, SHOT, 'endpoint 5 at the same address allows nothing in: denied');
    tt.equal(ct.lookup(bcKey), undefined);
    endpoints.delete({ ip: C.ip });
  });
}
