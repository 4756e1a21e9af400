/**
 * Datapath events under BPF_PROG_TEST_RUN, read back from the real ring buffer with the
 * decoder the agent uses (layout and enum names from BTF): a drop names its reason and the
 * packet's 5-tuple; a policy drop and a policy-allowed new flow name the identities and the
 * policy; forwarded packets are traced only while sl_monitor says so; the per-CPU rate
 * limit lets a burst of `rate` events through and counts the rest; a full ring counts what
 * it lost. Pod A is isolated for egress and may reach B on TCP/80 (policy 7).
 */
import t from 'tap';
import { bpfHarness } from '../helpers/bpf-harness.js';
import { IS_ROOT, uniquePrefix } from '../helpers/env.js';
import * as P from '../helpers/packets.js';
import { possibleCpus } from '../../src/bpf/map.js';
import { RingBufferReader } from '../../src/bpf/ringbuf.js';
import { EventDecoder, type RawEvent } from '../../src/maps/events.js';

const A = { ip: '10.244.0.5', id: 1, mac: '0a:58:0a:f4:00:05', host_mac: 'ee:ee:0a:f4:00:05', identity: 300, flags: 0 };
const B = { ip: '10.244.0.6', id: 2, mac: '0a:58:0a:f4:00:06', host_mac: 'ee:ee:0a:f4:00:06', identity: 301, flags: 0 };

if (!IS_ROOT) {
  t.plan(0, 'needs root (BPF)');
} else {
  const h = bpfHarness(t, uniquePrefix('ev'));
  const fc = h.load('from_container', { sl_gateway_ip: '169.254.1.1' });
  const prog = fc.program('from_container');
  const endpoints = fc.map<{ ip: string }, { ifindex: number; id: number; mac: string; host_mac: string; identity: number; flags: number }>('sl_endpoints');
  const policy = fc.map<{ prefixlen: number; endpoint: number; identity: number; dir: number; protocol: number; dport: number }, { policy: number; flags: number }>('sl_policy');
  const ct = fc.map('sl_ct_v2');
  const monitor = fc.map<number, { trace: number; rate: number }>('sl_monitor');
  const state = fc.map<number, { last: bigint; tokens: bigint; sent: bigint; rate_limited: bigint; ring_full: bigint }[]>('sl_monitor_st');
  const decoder = new EventDecoder(h.objects[0]!.btf);
  const events: RawEvent[] = [];
  const ring = RingBufferReader.openPinned(`${h.root}/sl_events`, (r) => events.push(decoder.decode(r)));
  t.teardown(() => ring.close());

  for (const ep of [A, B]) {
    const { ip, ...v } = ep;
    endpoints.update({ ip }, { ...v, ifindex: ep === A ? 1 : 4242 });
  }
  const any = { identity: 0, protocol: 0, dport: 0 };
  policy.update({ prefixlen: 72, endpoint: A.id, dir: 0, ...any }, { policy: 7, flags: 0 });
  policy.update({ prefixlen: 96, endpoint: A.id, dir: 0, identity: B.identity, protocol: 6, dport: 80 }, { policy: 7, flags: 1 });
  policy.update({ prefixlen: 72, endpoint: B.id, dir: 1, ...any }, { policy: 0, flags: 2 });

  const tcpAB = (dport: number, sport = 40000) => P.tcpFrame({ srcMac: A.mac, dstMac: A.host_mac, src: A.ip, dst: B.ip }, sport, dport, Buffer.alloc(0), { flags: P.TCP_SYN });
  const counters = () => {
    const per = state.lookup(0) ?? [];
    const sum = (f: (v: (typeof per)[number]) => bigint) => Number(per.reduce((a, v) => a + f(v), 0n));
    return { sent: sum((v) => v.sent), rateLimited: sum((v) => v.rate_limited), ringFull: sum((v) => v.ring_full) };
  };
  /** Fresh state: default rate, tracing off, empty conntrack, drained ring, zeroed counters. */
  const reset = (cfg = { trace: 0, rate: 0 }) => {
    monitor.update(0, cfg);
    const zero = { last: 0n, tokens: 0n, sent: 0n, rate_limited: 0n, ring_full: 0n };
    state.update(0, Array.from({ length: possibleCpus() }, () => zero));
    ct.clear();
    ring.consume();
    events.length = 0;
  };
  const run = (frame: Buffer, repeat = 1) => {
    const r = h.run(prog, frame, { repeat });
    if (!r) throw new Error('the kernel refused the frame');
    ring.consume();
    return r.retval;
  };

  t.test('the layout comes from BTF', async (tt) => {
    tt.equal(decoder.size, 56, 'struct sl_event is 56 bytes');
  });

  t.test('a drop: reason in words and the packet\'s 5-tuple', async (tt) => {
    reset();
    const spoofed = P.udpFrame({ srcMac: A.mac, dstMac: A.host_mac, src: '10.244.0.99', dst: B.ip }, 5353, 53);
    tt.equal(run(spoofed), 2, 'dropped');
    tt.equal(events.length, 1, 'one event');
    tt.match(events[0], {
      type: 'drop', reason: 'drop_spoofed_ip', direction: 'egress', protocol: 'UDP',
      saddr: '10.244.0.99', daddr: B.ip, sport: 5353, dport: 53, ifindex: 1, len: spoofed.length, policyId: 0,
    });
    tt.ok(Math.abs(events[0]!.time - Date.now()) < 5000, 'the time is now, in wall-clock milliseconds');
    const cut = P.truncate(P.ethernet({ dst: A.host_mac, src: A.mac, type: P.ETH_P_IP },
      P.ipv4({ src: A.ip, dst: B.ip, protocol: P.IPPROTO_UDP, ihl: 15 }, P.udp({ src: A.ip, dst: B.ip, sport: 1, dport: 2 }, Buffer.alloc(64)))), 14 + 40);
    run(cut);
    tt.match(events[1], { type: 'drop', reason: 'drop_malformed', protocol: 'UDP', saddr: A.ip, daddr: B.ip, sport: 0, dport: 0 },
      'a header that runs past the packet: addresses, but no ports read from beyond it');
  });

  t.test('policy: a denied flow names the policy and both identities; an allowed new flow is a verdict', async (tt) => {
    reset();
    tt.equal(run(tcpAB(81)), 2, 'A -> B TCP/81 dropped by A\'s egress policy');
    tt.match(events, [{ type: 'drop', reason: 'drop_policy_egress', srcIdentity: A.identity, dstIdentity: B.identity, policyId: 7, dport: 81 }]);
    events.length = 0;
    tt.equal(run(tcpAB(80)), 7, 'A -> B TCP/80 allowed (redirected)');
    tt.match(events, [{ type: 'policy-verdict', reason: '', srcIdentity: A.identity, dstIdentity: B.identity, policyId: 7, dport: 80, protocol: 'TCP' }]);
    events.length = 0;
    run(tcpAB(80));
    tt.same(events, [], 'the same flow again: conntrack, no new verdict');
  });

  t.test('trace events only while sl_monitor turns tracing on', async (tt) => {
    reset();
    run(tcpAB(80, 41000));
    tt.same(events.map((e) => e.type), ['policy-verdict'], 'tracing off: the verdict only');
    reset({ trace: 1, rate: 0 });
    run(tcpAB(80, 41001));
    tt.same(events.map((e) => `${e.type}/${e.reason}`), ['policy-verdict/', 'trace/forward_local'], 'tracing on: the forwarded packet too');
  });

  t.test('the rate limit lets a burst of `rate` events through and counts the rest', async (tt) => {
    reset({ trace: 0, rate: 5 });
    const spoofed = P.udpFrame({ srcMac: A.mac, dstMac: A.host_mac, src: '10.244.0.99', dst: B.ip }, 1, 2);
    // one test run repeated in the kernel, so that the 50 drops come close together even
    // under emulation (TCG); the bucket refills 5 tokens a second, so any time the run
    // still takes lets that many more through
    const t0 = process.hrtime.bigint();
    run(spoofed, 50);
    const refill = Math.floor((Number(process.hrtime.bigint() - t0) / 1e9) * 5);
    const c = counters();
    tt.ok(events.length >= 5 && events.length <= 6 + refill, `about 5 events got through (${events.length}; ${refill} more allowed for the run's duration)`);
    tt.equal(c.sent, events.length, 'sent counts what arrived');
    tt.equal(c.sent + c.rateLimited, 50, 'every other one is counted as rate limited');
  });

  t.test('a full ring buffer counts what it lost', async (tt) => {
    reset({ trace: 0, rate: 1_000_000 });
    const spoofed = P.udpFrame({ srcMac: A.mac, dstMac: A.host_mac, src: '10.244.0.99', dst: B.ip }, 1, 2);
    const r = h.run(prog, spoofed, { repeat: 30000 });
    tt.equal(r?.retval, 2);
    const c = counters();
    tt.ok(c.ringFull > 0, `${c.ringFull} events lost to the full ring`);
    tt.equal(c.sent + c.ringFull + c.rateLimited, 30000, 'every event is sent or counted as lost');
    ring.consume();
    tt.equal(events.length, c.sent, 'everything sent is read');
  });
}
