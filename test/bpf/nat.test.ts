/**
 * Masquerade under BPF_PROG_TEST_RUN (docs/architecture.md, "Masquerade (SNAT)"): to_netdev
 * (the uplink's egress) translating a pod's packet to the world to the node's address and a
 * port of the range, and from_netdev (the uplink's ingress) translating replies and ICMP
 * errors back into the pod, byte for byte with every checksum checked. Port choice (the
 * pod's own when free, another when two pods collide, a named drop when the range is used
 * up), what is never translated (the cluster, nonMasqueradeCIDRs, nodes, the node's own
 * packets, replies without a mapping), and a full table holding only whole pairs.
 *
 * Test-run facts relied on (as in remote.test.ts): bpf_redirect_peer only records its target
 * and returns TC_ACT_REDIRECT; the skb is "received" on loopback, whose MAC is all zeros, so
 * only frames to that MAC are PACKET_HOST; skbs are CHECKSUM_NONE.
 */
import type { EndpointKey, EndpointValue } from '../../src/maps/endpoints.js';
import t, { type Test } from 'tap';
import type { LoadedObject } from '../../src/bpf/object.js';
import { IS_ROOT, mustSh, netns, uniquePrefix } from '../helpers/env.js';
import { skbCtx } from '../../src/bpf/testrun.js';
import { withNetns } from '../../src/net/netns.js';
import { bpfHarness, TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT, type Counters } from '../helpers/bpf-harness.js';
import * as P from '../helpers/packets.js';
import { collectNat, readNat, removeAddressNat } from '../../src/maps/nat.js';
import { readNatRows } from '../../src/inspect/listings.js';
import { readMasqConfig, syncNonMasq, writeMasqConfig } from '../../src/maps/masq.js';
import { planMasquerade } from '../../src/routing/masq.js';
import { resolveConfig } from '../../src/config/config.js';
import { spawnSync } from 'node:child_process';


/** An sl_endpoints entry with its key, as the map codec takes them. */
type Ep = EndpointKey & EndpointValue;
const A: Ep = { ip: '10.244.0.5', ifindex: 4241, id: 5, mac: '0a:58:0a:f4:00:05', host_mac: 'ee:ee:0a:f4:00:05', identity: 1005, flags: 0 };
const B: Ep = { ip: '10.244.0.6', ifindex: 4242, id: 6, mac: '0a:58:0a:f4:00:06', host_mac: 'ee:ee:0a:f4:00:06', identity: 1006, flags: 0 };

/** This node's underlay address: the masquerade address. */
const NODE = '198.18.0.1';
const REMOTE_NODE = '198.18.0.2';
const WORLD = '203.0.113.10';
const WORLD2 = '203.0.113.11';
const ROUTER = '192.0.2.1';
const UPLINK_MAC = '02:00:00:00:00:01';
const GW_MAC = '02:00:00:00:00:fe';
const RANGE = { min: 61000, max: 65535 };
const MASQ_ON = 1;

type NatKey = { saddr: string; daddr: string; sport: number; dport: number; protocol: number; dir: number };
type NatVal = { expires: bigint; packets: bigint; bytes: bigint; addr: string; port: number; flags: number; state: number };
type MasqCfg = { addr: string; port_min: number; port_max: number; flags: number };
const NAT_F_SRC = 1;
const NAT_F_MASQ = 2;
const NAT_F_RESET = 4;

if (!IS_ROOT) {
  t.plan(0, 'needs root (BPF)');
} else {
  const prefix = uniquePrefix('nat');
  const h = bpfHarness(t, prefix);
  let tn: LoadedObject;
  let fn: LoadedObject;

  t.test('setup: to_netdev and from_netdev share the NAT maps', async (tt) => {
    tn = h.load('to_netdev');
    fn = h.load('from_netdev', { sl_vxlan_port: 8472 });
    for (const m of ['sl_nat', 'sl_masq', 'sl_nonmasq', 'sl_endpoints', 'sl_ct_v2']) tt.equal(fn.map(m).info.id, tn.map(m).info.id, `${m} shared`);
  });

  const maps = () => ({
    endpoints: tn.map<{ ip: string }, Omit<Ep, 'ip'>>('sl_endpoints'),
    ipcache: tn.map<{ prefixlen: number; ip: string }, { identity: number; tunnel_endpoint: string; flags: number }>('sl_ipcache'),
    nodes: tn.map<{ ip: string }, { pod_block: string; pod_mask: string; mac: string; flags: number }>('sl_nodes'),
    node: tn.map<number, { vxlan_ifindex: number; uplink_ifindex: number; underlay_ip: string; flags: number }>('sl_node'),
    nat: tn.map<NatKey, NatVal>('sl_nat'),
    masq: tn.map<number, MasqCfg>('sl_masq'),
    nonmasq: tn.map<{ prefixlen: number; addr: string }, { flags: number }>('sl_nonmasq'),
    ct: tn.map<{ saddr: string; daddr: string; sport: number; dport: number; protocol: number }, Record<string, unknown>>('sl_ct_v2'),
    metrics: tn.map<{ reason: string | number; dir: string | number }, { packets: bigint; bytes: bigint }[]>('sl_metrics'),
  });

  /** A fresh node: A and B, the pool and 10.96.0.0/12 exempt, REMOTE_NODE a node, masquerade on with `cfg`. */
  const reset = (cfg: Partial<MasqCfg> = {}) => {
    const m = maps();
    m.endpoints.clear();
    for (const { ip, ...v } of [A, B]) m.endpoints.update({ ip }, v);
    m.ipcache.clear();
    m.ipcache.update({ prefixlen: 24, ip: '10.244.1.0' }, { identity: 0, tunnel_endpoint: REMOTE_NODE, flags: 1 });
    m.ipcache.update({ prefixlen: 32, ip: '198.18.0.3' }, { identity: 3, tunnel_endpoint: '0.0.0.0', flags: 0 });
    m.ipcache.update({ prefixlen: 24, ip: '203.0.113.0' }, { identity: 0x1000005, tunnel_endpoint: '0.0.0.0', flags: 0 });
    m.nodes.clear();
    m.nodes.update({ ip: REMOTE_NODE }, { pod_block: '10.244.1.0', pod_mask: '255.255.255.0', mac: P.ZERO_MAC, flags: 2 });
    m.node.update(0, { vxlan_ifindex: 0, uplink_ifindex: 7002, underlay_ip: NODE, flags: 0 });
    m.nonmasq.clear();
    m.nonmasq.update({ prefixlen: 16, addr: '10.244.0.0' }, { flags: 0 });
    m.nonmasq.update({ prefixlen: 12, addr: '10.96.0.0' }, { flags: 0 });
    m.masq.update(0, { addr: NODE, port_min: RANGE.min, port_max: RANGE.max, flags: MASQ_ON, ...cfg });
    m.nat.clear();
    m.ct.clear();
    m.metrics.clear();
    return m;
  };

  // --- frames ---------------------------------------------------------------------------
  /** As the stack routes a pod's packet out of the uplink: from the uplink's MAC to the gateway's, TTL already 63. */
  const out = { srcMac: UPLINK_MAC, dstMac: GW_MAC, ttl: 63 };
  const tcpOut = (src: string, sport: number, dst = WORLD, dport = 443, flags = P.TCP_SYN) =>
    P.tcpFrame({ ...out, src, dst }, sport, dport, Buffer.from('hello world'), { flags, seq: 1000 });
  const udpOut = (src: string, sport: number, dst = WORLD, dport = 53) => P.udpFrame({ ...out, src, dst }, sport, dport, Buffer.from('query'));
  const pingOut = (src: string, id: number, dst = WORLD) => P.icmpFrame({ ...out, src, dst }, Buffer.from('ping'), { id, seq: 7 });
  /** Arriving on the uplink for this host (loopback's MAC in a test run), TTL 60. */
  const inn = { srcMac: GW_MAC, dstMac: P.ZERO_MAC, ttl: 60 };
  const tcpIn = (dport: number, src = WORLD, sport = 443, dst = NODE, flags = P.TCP_SYN | P.TCP_ACK) =>
    P.tcpFrame({ ...inn, src, dst }, sport, dport, Buffer.from('welcome'), { flags, seq: 5000, ack: 1012 });
  const udpIn = (dport: number, src = WORLD, sport = 53) => P.udpFrame({ ...inn, src, dst: NODE }, sport, dport, Buffer.from('answer'));
  const pongIn = (id: number, src = WORLD) => P.icmpFrame({ ...inn, src, dst: NODE }, Buffer.from('ping'), { id, seq: 7, type: P.ICMP_ECHO_REPLY });
  /** The IPv4 packet inside a frame (what an ICMP error quotes). */
  const ipOf = (frame: Buffer) => frame.subarray(14);

  const run = (o: LoadedObject, prog: string, frame: Buffer) => {
    const r = h.run(o.program(prog), frame);
    if (!r) throw new Error('the kernel refused the frame');
    return r;
  };
  const egress = (frame: Buffer) => run(tn, 'to_netdev', frame);
  const ingress = (frame: Buffer) => run(fn, 'from_netdev', frame);
  const counted = (m: ReturnType<typeof maps>): Counters => h.counters(m.metrics);
  const id = (f: P.ParsedFrame) => f.ipv4!.payload.readUInt16BE(4);

  /** Every checksum of the frame verifies: IPv4, and TCP/UDP (with the pseudo-header) or ICMP. */
  const checksumsValid = (tt: Test, frame: Buffer, what: string) => {
    const f = P.parseFrame(frame);
    tt.ok(f.ipv4!.checksumValid, `${what}: IPv4 checksum valid`);
    tt.ok(f.l4!.checksumValid, `${what}: ${f.ipv4!.protocol === 1 ? 'ICMP' : f.ipv4!.protocol === 6 ? 'TCP' : 'UDP'} checksum valid`);
    return f;
  };
  /** Only the bytes at `allowed` (offsets into the frame) differ. */
  const onlyChanged = (tt: Test, a: Buffer, b: Buffer, allowed: number[], what: string) =>
    tt.same(P.diffBytes(a, b).filter((i) => !allowed.includes(i)), [], `${what}: nothing else changed`);
  const span = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
  const L4 = 14 + 20;
  const SRC_IP = span(14 + 12, 4);
  const DST_IP = span(14 + 16, 4);
  const IP_CSUM = span(14 + 10, 2);
  const TTL = [14 + 8];
  const l4Csum = (proto: number) => span(L4 + (proto === 6 ? 16 : proto === 17 ? 6 : 2), 2);

  /** The forward and reverse entries of a masqueraded flow exist and name each other. */
  const pairOf = (m: ReturnType<typeof maps>, f: { src: string; sport: number; dst: string; dport: number; proto: number }) => {
    const fwd = m.nat.lookup({ saddr: f.src, daddr: f.dst, sport: f.sport, dport: f.dport, protocol: f.proto, dir: 0 });
    const rport = fwd?.port ?? 0;
    const rev = m.nat.lookup({ saddr: f.dst, daddr: NODE, sport: f.proto === 1 ? rport : f.dport, dport: rport, protocol: f.proto, dir: 1 });
    return { fwd, rev };
  };

  t.test('TCP: the pod\'s port is kept when free; source, both checksums rewritten, nothing else', async (tt) => {
    const m = reset();
    const frame = tcpOut(A.ip, 61234);
    const r = egress(frame);
    tt.equal(r.retval, TC_ACT_OK, 'verdict: on to the wire');
    const f = checksumsValid(tt, r.data, 'out');
    tt.match(f.ipv4!, { src: NODE, dst: WORLD, ttl: 63 }, 'source: the node\'s address');
    tt.same([f.l4!.sport, f.l4!.dport], [61234, 443], 'the pod\'s port, in the range and free, kept');
    onlyChanged(tt, r.data, frame, [...SRC_IP, ...IP_CSUM, ...l4Csum(6)], 'out');
    tt.same(counted(m), { 'masquerade/egress': { packets: 1, bytes: frame.length } }, 'counted as masquerade');
    const { fwd, rev } = pairOf(m, { src: A.ip, sport: 61234, dst: WORLD, dport: 443, proto: 6 });
    tt.match(fwd, { addr: NODE, port: 61234, flags: NAT_F_SRC | NAT_F_MASQ, state: 0, packets: 1n, bytes: BigInt(frame.length) }, 'forward entry: write the node\'s address and port as source; the first packet counted');
    tt.match(rev, { addr: A.ip, port: 61234, flags: NAT_F_MASQ, state: 0 }, 'reverse entry: write the pod\'s back as destination');
    tt.ok(fwd!.expires > process.hrtime.bigint(), 'alive');

    // the reply comes back to the pod
    m.metrics.clear();
    const reply = tcpIn(61234);
    const b = ingress(reply);
    tt.equal(b.retval, TC_ACT_REDIRECT, 'reply: redirected into the pod');
    const g = checksumsValid(tt, b.data, 'reply');
    tt.match(g.ipv4!, { src: WORLD, dst: A.ip, ttl: 59 }, 'reply: to the pod, TTL decremented');
    tt.same([g.l4!.sport, g.l4!.dport], [443, 61234], 'reply: ports');
    tt.same([g.eth.dst, g.eth.src], [A.mac, A.host_mac], 'reply: MACs as from the pod\'s gateway');
    onlyChanged(tt, b.data, reply, [...span(0, 12), ...DST_IP, ...IP_CSUM, ...TTL, ...l4Csum(6)], 'reply');
    tt.same(Object.keys(counted(m)).sort(), ['from_netdev/ingress', 'nat_reverse/ingress'], 'reply: counted as translated back and delivered');
    tt.equal(pairOf(m, { src: A.ip, sport: 61234, dst: WORLD, dport: 443, proto: 6 }).rev!.state, 1, 'the reply established the flow');
  });

  t.test('TCP: a port outside the range is replaced by one in it; the reply finds the pod\'s port', async (tt) => {
    const m = reset();
    const frame = tcpOut(A.ip, 40000);
    const f = checksumsValid(tt, egress(frame).data, 'out');
    const port = f.l4!.sport;
    tt.ok(port >= RANGE.min && port <= RANGE.max, `node port ${port} in ${RANGE.min}-${RANGE.max}`);
    tt.equal(f.ipv4!.src, NODE);
    tt.equal(checksumsValid(tt, egress(frame).data, 'again').l4!.sport, port, 'the flow\'s next packet: the same port');
    const b = ingress(tcpIn(port));
    tt.equal(b.retval, TC_ACT_REDIRECT);
    const g = checksumsValid(tt, b.data, 'reply');
    tt.same([g.ipv4!.dst, g.l4!.dport], [A.ip, 40000], 'the reply: to the pod\'s address and port');
    tt.equal(m.nat.count(), 2, 'one pair');
  });

  t.test('UDP both ways, checksums valid; a UDP datagram without a checksum keeps none', async (tt) => {
    const m = reset();
    const frame = udpOut(A.ip, 5353);
    const f = checksumsValid(tt, egress(frame).data, 'out');
    const port = f.l4!.sport;
    tt.ok(f.ipv4!.src === NODE && port >= RANGE.min, `from ${NODE}:${port}`);
    const b = ingress(udpIn(port));
    tt.equal(b.retval, TC_ACT_REDIRECT);
    const g = checksumsValid(tt, b.data, 'reply');
    tt.same([g.ipv4!.dst, g.l4!.dport, g.l4!.sport], [A.ip, 5353, 53]);
    const noSum = udpOut(A.ip, 5354);
    noSum.writeUInt16BE(0, L4 + 6);
    const n = P.parseFrame(egress(noSum).data);
    tt.equal(n.l4!.checksum, 0, 'no checksum stays none');
    tt.ok(n.ipv4!.checksumValid && n.ipv4!.src === NODE, 'translated');
    tt.equal(m.nat.count(), 4);
  });

  t.test('ICMP echo: the identifier is the port; the reply goes back by it', async (tt) => {
    const m = reset();
    const frame = pingOut(A.ip, 0x1234);
    const r = egress(frame);
    const f = checksumsValid(tt, r.data, 'request');
    const nid = id(f);
    tt.ok(nid >= RANGE.min && nid <= RANGE.max, `identifier ${nid} in the range (0x1234 is not)`);
    tt.equal(f.ipv4!.src, NODE);
    onlyChanged(tt, r.data, frame, [...SRC_IP, ...IP_CSUM, ...l4Csum(1), ...span(L4 + 4, 2)], 'request');
    const b = ingress(pongIn(nid));
    tt.equal(b.retval, TC_ACT_REDIRECT);
    const g = checksumsValid(tt, b.data, 'reply');
    tt.same([g.ipv4!.dst, id(g), g.l4!.type], [A.ip, 0x1234, 0], 'the echo reply: to the pod, its own identifier');
    m.metrics.clear();
    tt.equal(ingress(pongIn(nid, WORLD2)).retval, TC_ACT_OK, 'the same identifier from another address: not this flow, the stack\'s');
    tt.same(counted(m), {}, 'no counter moved');
    const req = P.icmpFrame({ ...inn, src: WORLD, dst: NODE }, Buffer.from('ping'), { id: nid, seq: 1 });
    tt.equal(ingress(req).data.toString('hex'), req.toString('hex'), 'an echo request to the node with that identifier: untouched');
  });

  t.test('two pods, the same source port, the same destination: two node ports, each reply to its pod', async (tt) => {
    const m = reset();
    const a = P.parseFrame(egress(tcpOut(A.ip, 61500)).data);
    const b = P.parseFrame(egress(tcpOut(B.ip, 61500)).data);
    tt.equal(a.l4!.sport, 61500, 'A keeps its port');
    tt.not(b.l4!.sport, 61500, `B gets another (${b.l4!.sport})`);
    tt.ok(b.l4!.sport >= RANGE.min && b.l4!.sport <= RANGE.max, 'in the range');
    tt.ok(a.l4!.checksumValid && b.l4!.checksumValid, 'both checksums valid');
    for (const [ep, port] of [[A, a.l4!.sport], [B, b.l4!.sport]] as const) {
      const r = ingress(tcpIn(port));
      tt.equal(r.retval, TC_ACT_REDIRECT);
      const g = checksumsValid(tt, r.data, `reply to ${port}`);
      tt.same([g.ipv4!.dst, g.l4!.dport, g.eth.dst], [ep.ip, 61500, ep.mac], `reply to ${port}: pod ${ep.ip}`);
    }
    tt.equal(P.parseFrame(egress(tcpOut(B.ip, 61500, WORLD2)).data).l4!.sport, 61500, 'B to another destination keeps 61500 (ports are per destination)');
    tt.equal(m.nat.count(), 6, 'three pairs');
  });

  t.test('a range used up: dropped with drop_nat_no_port, counted, never sent untranslated', async (tt) => {
    const m = reset({ port_min: 61000, port_max: 61001 });
    tt.equal(egress(tcpOut(A.ip, 40001)).retval, TC_ACT_OK, 'first flow');
    tt.equal(egress(tcpOut(A.ip, 40002)).retval, TC_ACT_OK, 'second flow');
    m.metrics.clear();
    const third = tcpOut(A.ip, 40003);
    const r = egress(third);
    tt.equal(r.retval, TC_ACT_SHOT, 'third flow: dropped');
    tt.same(counted(m), { 'drop_nat_no_port/egress': { packets: 1, bytes: third.length } }, 'counted as drop_nat_no_port');
    tt.equal(m.nat.count(), 4, 'two pairs, nothing of the third');
    const ports = [40001, 40002].map((p) => pairOf(m, { src: A.ip, sport: p, dst: WORLD, dport: 443, proto: 6 }).fwd!.port).sort();
    tt.same(ports, [61000, 61001], 'the two ports of the range');
    tt.equal(egress(tcpOut(A.ip, 40003, WORLD2)).retval, TC_ACT_OK, 'to another destination the range is free again');
    tt.equal(egress(tcpOut(A.ip, 40001)).retval, TC_ACT_OK, 'an existing flow goes on');
  });

  const untouched: [string, () => Buffer, Partial<MasqCfg>?][] = [
    ['to a pod of the pool (sl_nonmasq)', () => tcpOut(A.ip, 40000, '10.244.0.77')],
    ['to a nonMasqueradeCIDRs range (10.96.0.0/12)', () => tcpOut(A.ip, 40000, '10.100.1.1')],
    ['to a remote pod block the ipcache routes', () => tcpOut(A.ip, 40000, '10.244.1.9')],
    ['to a node of the cluster (sl_nodes)', () => tcpOut(A.ip, 40000, REMOTE_NODE)],
    ['to a remote-node identity in the ipcache', () => tcpOut(A.ip, 40000, '198.18.0.3')],
    ['the node\'s own packet (source: the masquerade address)', () => tcpOut(NODE, 61500)],
    ['a packet from another address of the node (no pod)', () => tcpOut('198.18.0.99', 40000)],
    ['ARP', () => P.arpFrame({ sha: UPLINK_MAC, sip: NODE, tip: WORLD })],
    ['masquerade off', () => tcpOut(A.ip, 40000), { flags: 0 }],
  ];
  for (const [name, frame, cfg] of untouched) {
    t.test(`untouched: ${name}`, async (tt) => {
      const m = reset(cfg);
      const f = frame();
      const r = egress(f);
      tt.equal(r.retval, TC_ACT_OK, 'verdict');
      tt.equal(r.data.toString('hex'), f.toString('hex'), 'frame unchanged');
      tt.same(counted(m), {}, 'no counter moved');
      tt.equal(m.nat.count(), 0, 'no mapping');
    });
  }

  t.test('a port the pod reset (RST) goes to the next new connection at once; a FIN, a reply\'s RST, a non-SYN do not take it', async (tt) => {
    const m = reset({ port_min: 61000, port_max: 61000 });
    const revKey = { saddr: WORLD, daddr: NODE, sport: 443, dport: 61000, protocol: 6, dir: 1 };
    tt.equal(egress(tcpOut(A.ip, 40001)).retval, TC_ACT_OK, 'flow 1 takes the one port');
    tt.equal(ingress(tcpIn(61000)).retval, TC_ACT_REDIRECT, 'flow 1 established');
    tt.equal(egress(tcpOut(A.ip, 40001, WORLD, 443, P.TCP_FIN | P.TCP_ACK)).retval, TC_ACT_OK, 'flow 1: the pod\'s FIN');
    tt.match(m.nat.lookup(revKey), { addr: A.ip, port: 40001, state: 2, flags: NAT_F_MASQ }, 'closing, not reset');
    tt.equal(egress(tcpOut(A.ip, 40002)).retval, TC_ACT_SHOT, 'a FIN keeps the port for 10 s (either side may be in TIME_WAIT): flow 2 dropped');
    tt.equal(ingress(tcpIn(61000, WORLD, 443, NODE, P.TCP_RST)).retval, TC_ACT_REDIRECT, 'a RST from the remote is delivered');
    tt.notOk(m.nat.lookup(revKey)!.flags & NAT_F_RESET, 'a RST from outside marks nothing (nothing checks it against the window)');
    tt.equal(egress(tcpOut(A.ip, 40002)).retval, TC_ACT_SHOT, 'so flow 2 is still dropped');

    tt.equal(egress(tcpOut(A.ip, 40001, WORLD, 443, P.TCP_RST)).retval, TC_ACT_OK, 'flow 1: the pod\'s RST goes out translated');
    tt.match(m.nat.lookup(revKey), { addr: A.ip, port: 40001, state: 2, flags: NAT_F_MASQ | NAT_F_RESET }, 'reverse entry marked reset');
    tt.equal(egress(tcpOut(A.ip, 40002, WORLD, 443, P.TCP_ACK)).retval, TC_ACT_SHOT, 'a segment that opens nothing (ACK) does not take it');
    m.metrics.clear();
    const r = egress(tcpOut(B.ip, 40002));
    tt.equal(r.retval, TC_ACT_OK, 'a new connection (SYN) of another pod takes the reset port');
    tt.same([P.parseFrame(r.data).ipv4!.src, P.parseFrame(r.data).l4!.sport], [NODE, 61000], 'as the node\'s 61000');
    tt.same(counted(m), { 'masquerade/egress': { packets: 1, bytes: r.data.length } }, 'counted as masquerade, no drop');
    tt.match(m.nat.lookup(revKey), { addr: B.ip, port: 40002, state: 0, flags: NAT_F_MASQ }, 'the reverse entry is the new flow\'s, not reset');
    const back = ingress(tcpIn(61000));
    tt.same([back.retval, P.parseFrame(back.data).ipv4!.dst, P.parseFrame(back.data).l4!.dport], [TC_ACT_REDIRECT, B.ip, 40002], 'replies go to the new flow');
    // from_container does not run here, so the delivery's conntrack took the replies for flows toward the pods
    m.ct.clear();
    const stale = egress(tcpOut(A.ip, 40001, WORLD, 443, P.TCP_ACK));
    tt.equal(stale.retval, TC_ACT_SHOT, 'the old flow\'s forward entry no longer translates (its reverse names the new flow): its packet cannot take a port');
    tt.same(collectNat({ pinRoot: h.root }, process.hrtime.bigint() + 7n * 3_600_000_000_000n).deleted, 3, 'seven hours on (past the 6 h of an established flow): the old forward entry and the new pair are collected');
  });

  t.test('a new connection on a reset flow\'s own tuple reopens the pair (as conntrack reopens a closed entry)', async (tt) => {
    const m = reset();
    egress(tcpOut(A.ip, 61234));
    ingress(tcpIn(61234));
    egress(tcpOut(A.ip, 61234, WORLD, 443, P.TCP_RST));
    const { rev: closed } = pairOf(m, { src: A.ip, sport: 61234, dst: WORLD, dport: 443, proto: 6 });
    tt.match(closed, { state: 2, flags: NAT_F_MASQ | NAT_F_RESET }, 'reset');
    tt.equal(P.parseFrame(egress(tcpOut(A.ip, 61234)).data).l4!.sport, 61234, 'the same pod port again: the same node port');
    const { fwd, rev } = pairOf(m, { src: A.ip, sport: 61234, dst: WORLD, dport: 443, proto: 6 });
    tt.match([fwd, rev], [{ state: 0 }, { state: 0, flags: NAT_F_MASQ }], 'both entries new again, the reset mark gone');
    const left = Number((rev!.expires - process.hrtime.bigint()) / 1_000_000_000n);
    tt.ok(left > 30, `a new connection's timeout (60 s), not closing's 10 s (${left} s left)`);
    ingress(tcpIn(61234));
    tt.equal(pairOf(m, { src: A.ip, sport: 61234, dst: WORLD, dport: 443, proto: 6 }).rev!.state, 1, 'its reply establishes it');
  });

  t.test('a policy\'s CIDR identity in the ipcache is still the world: translated', async (tt) => {
    reset();
    tt.equal(P.parseFrame(egress(tcpOut(A.ip, 40000, WORLD)).data).ipv4!.src, NODE, '203.0.113.0/24 has a CIDR identity: still masqueraded');
  });

  t.test('a flow started toward the pod (conntrack has it) keeps the pod\'s address', async (tt) => {
    const m = reset();
    m.ct.update({ saddr: WORLD, daddr: A.ip, sport: 443, dport: 40000, protocol: 6 },
      { expires: process.hrtime.bigint() + 60_000_000_000n, packets: 1n, bytes: 60n, policy: 0, src_ep: 0, dst_ep: A.id, nat: 0, state: 1 });
    const f = tcpOut(A.ip, 40000, WORLD, 443, P.TCP_SYN | P.TCP_ACK);
    const r = egress(f);
    tt.same([r.retval, r.data.toString('hex')], [TC_ACT_OK, f.toString('hex')], 'the pod\'s answer leaves as it is');
    tt.equal(m.nat.count(), 0, 'no mapping');
  });

  t.test('fragments and other protocols to the world: dropped with their reasons', async (tt) => {
    const m = reset();
    const frag = P.udpFrame({ ...out, src: A.ip, dst: WORLD, fragOff: 0x2000 }, 5000, 53, Buffer.from('first fragment'));
    tt.equal(egress(frag).retval, TC_ACT_SHOT, 'a first fragment: dropped');
    const later = P.ethernet({ dst: GW_MAC, src: UPLINK_MAC, type: P.ETH_P_IP }, P.ipv4({ src: A.ip, dst: WORLD, protocol: 17, fragOff: 0x0010 }, Buffer.alloc(16)));
    tt.equal(egress(later).retval, TC_ACT_SHOT, 'a later fragment: dropped');
    const gre = P.ethernet({ dst: GW_MAC, src: UPLINK_MAC, type: P.ETH_P_IP }, P.ipv4({ src: A.ip, dst: WORLD, protocol: 47 }, Buffer.alloc(16)));
    tt.equal(egress(gre).retval, TC_ACT_SHOT, 'GRE: dropped');
    const unreach = P.icmpErrorFrame({ ...out, src: A.ip, dst: WORLD }, { type: 3, code: 3 }, ipOf(udpIn(40000)));
    tt.equal(egress(unreach).retval, TC_ACT_SHOT, 'an ICMP error from a pod quoting a packet that was not to it: dropped');
    const ts = P.ethernet({ dst: GW_MAC, src: UPLINK_MAC, type: P.ETH_P_IP }, P.ipv4({ src: A.ip, dst: WORLD, protocol: 1 }, P.icmpError({ type: 13, code: 0 }, Buffer.alloc(12))));
    tt.equal(egress(ts).retval, TC_ACT_SHOT, 'ICMP timestamp: dropped');
    const c = counted(m);
    tt.same([c['drop_nat_fragment/egress']?.packets, c['drop_nat_unsupported/egress']?.packets], [2, 3], 'counted by reason');
  });

  t.test('replies without a mapping go to the stack untouched (the node\'s own)', async (tt) => {
    const m = reset();
    egress(tcpOut(A.ip, 61234));
    m.metrics.clear();
    for (const [name, f] of [
      ['a port in the range without a mapping', tcpIn(61235)],
      ['the mapped port from another remote port', tcpIn(61234, WORLD, 444)],
      ['the mapped port from another address', tcpIn(61234, WORLD2)],
      ['the mapped port over UDP', udpIn(61234, WORLD, 443)],
      ['a port below the range (the node\'s own ephemeral ports)', tcpIn(40000)],
    ] as const) {
      const r = ingress(f);
      tt.same([r.retval, r.data.toString('hex')], [TC_ACT_OK, f.toString('hex')], `${name}: the stack, unchanged`);
    }
    tt.same(counted(m), {}, 'no counter moved');
  });

  t.test('an expired mapping no longer translates replies; the flow\'s next packet makes it anew', async (tt) => {
    const m = reset();
    egress(tcpOut(A.ip, 61234));
    const key = { saddr: WORLD, daddr: NODE, sport: 443, dport: 61234, protocol: 6, dir: 1 };
    const rev = m.nat.lookup(key)!;
    m.nat.update(key, { ...rev, expires: 1n });
    tt.equal(ingress(tcpIn(61234)).retval, TC_ACT_OK, 'reply: the stack');
    tt.equal(P.parseFrame(egress(tcpOut(A.ip, 61234)).data).l4!.sport, 61234, 'the pod\'s next packet: the same port again');
    tt.ok(m.nat.lookup(key)!.expires > process.hrtime.bigint(), 'alive again');
    tt.equal(ingress(tcpIn(61234)).retval, TC_ACT_REDIRECT, 'reply: the pod');
  });

  t.test('a half pair (the reverse entry collected) heals on the flow\'s next packet', async (tt) => {
    const m = reset();
    const port = P.parseFrame(egress(tcpOut(A.ip, 40000)).data).l4!.sport;
    const key = { saddr: WORLD, daddr: NODE, sport: 443, dport: port, protocol: 6, dir: 1 };
    tt.ok(m.nat.delete(key), 'reverse entry deleted');
    tt.equal(P.parseFrame(egress(tcpOut(A.ip, 40000)).data).l4!.sport, port, 'the same port');
    tt.match(m.nat.lookup(key), { addr: A.ip, port: 40000 }, 'the reverse entry is back');
    tt.equal(ingress(tcpIn(port)).retval, TC_ACT_REDIRECT, 'replies reach the pod');
  });

  /** The quoted packet: the node's masqueraded packet as it left (to WORLD), as an ICMP error carries it. */
  const quotedOut = (frame: Buffer) => ipOf(egress(frame).data);
  /** The ICMP error after translation: outer, its ICMP checksum, the quoted header and its checksums. */
  const icmpErrorBack = (tt: Test, out: Buffer, want: { src: string; sport: number; proto: number }) => {
    const f = checksumsValid(tt, out, 'ICMP error');
    tt.equal(f.ipv4!.dst, A.ip, 'outer destination: the pod');
    tt.equal(f.ipv4!.src, ROUTER, 'outer source: the router, untouched');
    tt.same([f.eth.dst, f.eth.src], [A.mac, A.host_mac], 'MACs as from the pod\'s gateway');
    const q = P.parseIpv4(f.l4!.payload);
    tt.ok(q.checksumValid, 'quoted IPv4 checksum valid');
    tt.same([q.src, q.dst], [want.src, WORLD], 'quoted: from the pod to the world');
    const ql4 = P.parseL4(q);
    tt.ok(ql4.checksumValid, `quoted ${want.proto === 6 ? 'TCP' : want.proto === 17 ? 'UDP' : 'ICMP'} checksum valid`);
    tt.equal(want.proto === 1 ? q.payload.readUInt16BE(4) : ql4.sport, want.sport, 'quoted: the pod\'s port');
    return f;
  };

  t.test('ICMP port unreachable about a UDP flow: outer and quoted headers and all checksums translated', async (tt) => {
    const m = reset();
    const quoted = quotedOut(udpOut(A.ip, 5353));
    const err = P.icmpErrorFrame({ ...inn, src: ROUTER, dst: NODE }, { type: P.ICMP_DEST_UNREACH, code: P.ICMP_PORT_UNREACH }, quoted);
    m.metrics.clear();
    const r = ingress(err);
    tt.equal(r.retval, TC_ACT_REDIRECT, 'delivered into the pod');
    const f = icmpErrorBack(tt, r.data, { src: A.ip, sport: 5353, proto: 17 });
    tt.same([f.l4!.type, f.l4!.code, f.ipv4!.ttl], [3, 3, 59], 'type, code; TTL decremented');
    tt.same(Object.keys(counted(m)).sort(), ['from_netdev/ingress', 'nat_reverse/ingress'], 'counted');
  });

  t.test('ICMP fragmentation needed about a TCP flow: translated, the MTU kept', async (tt) => {
    reset();
    const quoted = quotedOut(tcpOut(A.ip, 40000));
    const err = P.icmpErrorFrame({ ...inn, src: ROUTER, dst: NODE }, { type: P.ICMP_DEST_UNREACH, code: P.ICMP_FRAG_NEEDED, mtu: 1400 }, quoted);
    const r = ingress(err);
    tt.equal(r.retval, TC_ACT_REDIRECT);
    const f = icmpErrorBack(tt, r.data, { src: A.ip, sport: 40000, proto: 6 });
    tt.same([f.l4!.code, f.ipv4!.payload.readUInt16BE(6)], [4, 1400], 'code 4, next-hop MTU 1400');
  });

  t.test('ICMP errors quoting only 8 bytes of TCP (no checksum in them): the rest still right', async (tt) => {
    reset();
    const quoted = quotedOut(tcpOut(A.ip, 40000)).subarray(0, 28);
    const r = ingress(P.icmpErrorFrame({ ...inn, src: ROUTER, dst: NODE }, { type: P.ICMP_TIME_EXCEEDED, code: 0 }, quoted));
    tt.equal(r.retval, TC_ACT_REDIRECT);
    const f = checksumsValid(tt, r.data, 'time exceeded');
    const q = P.parseIpv4(f.l4!.payload);
    tt.ok(q.checksumValid, 'quoted IPv4 checksum valid');
    tt.same([q.src, q.payload.readUInt16BE(0)], [A.ip, 40000], 'quoted source and port: the pod\'s');
  });

  t.test('ICMP time exceeded about an echo request: the quoted identifier and its checksum', async (tt) => {
    reset();
    const quoted = quotedOut(pingOut(A.ip, 0x1234));
    const r = ingress(P.icmpErrorFrame({ ...inn, src: ROUTER, dst: NODE }, { type: P.ICMP_TIME_EXCEEDED, code: 0 }, quoted));
    tt.equal(r.retval, TC_ACT_REDIRECT);
    icmpErrorBack(tt, r.data, { src: A.ip, sport: 0x1234, proto: 1 });
  });

  t.test('a pod\'s ICMP port unreachable about a translated-back reply leaves translated: outer source, quoted destination, checksums', async (tt) => {
    const m = reset();
    const port = P.parseFrame(egress(udpOut(A.ip, 5353)).data).l4!.sport;
    const delivered = ingress(udpIn(port));
    tt.equal(delivered.retval, TC_ACT_REDIRECT, 'the reply reached the pod');
    // the pod's socket is gone: its kernel quotes the reply as it got it
    const err = P.icmpErrorFrame({ ...out, src: A.ip, dst: WORLD }, { type: P.ICMP_DEST_UNREACH, code: P.ICMP_PORT_UNREACH }, ipOf(delivered.data));
    m.metrics.clear();
    const r = egress(err);
    tt.equal(r.retval, TC_ACT_OK);
    const f = checksumsValid(tt, r.data, 'the pod\'s ICMP error');
    tt.same([f.ipv4!.src, f.ipv4!.dst], [NODE, WORLD], 'outer: from the node');
    const q = P.parseIpv4(f.l4!.payload);
    const ql4 = P.parseL4(q);
    tt.ok(q.checksumValid && ql4.checksumValid, 'quoted IPv4 and UDP checksums valid');
    tt.same([q.src, q.dst, ql4.sport, ql4.dport], [WORLD, NODE, 53, port], 'quoted: the reply as the world sent it, to the node\'s port');
    tt.same(Object.keys(counted(m)), ['masquerade/egress']);
    const direct = P.icmpErrorFrame({ ...out, src: A.ip, dst: WORLD }, { type: 3, code: 3 }, ipOf(P.udpFrame({ ...inn, src: WORLD, dst: A.ip }, 53, 7777)));
    const d = egress(direct);
    tt.same([d.retval, d.data.toString('hex')], [TC_ACT_OK, direct.toString('hex')], 'about a packet that reached the pod by its own address: leaves as it is');
  });

  t.test('an ICMP error about a flow without a mapping (the node\'s own): the stack, untouched', async (tt) => {
    reset();
    const own = ipOf(udpOut(NODE, 61700));
    const err = P.icmpErrorFrame({ ...inn, src: ROUTER, dst: NODE }, { type: 3, code: 3 }, own);
    const r = ingress(err);
    tt.same([r.retval, r.data.toString('hex')], [TC_ACT_OK, err.toString('hex')]);
    // a pod's ping mapped to identifier nid; an error about the node's own echo reply with that identifier is the node's
    const nid = id(P.parseFrame(egress(pingOut(A.ip, 0x1234)).data));
    const nodeReply = ipOf(P.icmpFrame({ ...out, src: NODE, dst: WORLD }, Buffer.from('ping'), { id: nid, type: P.ICMP_ECHO_REPLY }));
    const err2 = P.icmpErrorFrame({ ...inn, src: ROUTER, dst: NODE }, { type: P.ICMP_TIME_EXCEEDED, code: 0 }, nodeReply);
    const r2 = ingress(err2);
    tt.same([r2.retval, r2.data.toString('hex')], [TC_ACT_OK, err2.toString('hex')], 'an error quoting the node\'s echo reply (the mapped identifier): the stack\'s');
  });

  t.test('the agent\'s collection removes whole dead pairs only (collectNat on the pinned map)', async (tt) => {
    const m = reset();
    const port = (sport: number) => P.parseFrame(egress(tcpOut(A.ip, sport)).data).l4!.sport;
    const ports = [40010, 40011, 40012, 40013].map(port);
    const expire = (k: NatKey) => m.nat.update(k, { ...m.nat.lookup(k)!, expires: 1n });
    const fk = (sport: number): NatKey => ({ saddr: A.ip, daddr: WORLD, sport, dport: 443, protocol: 6, dir: 0 });
    const rk = (p: number): NatKey => ({ saddr: WORLD, daddr: NODE, sport: 443, dport: p, protocol: 6, dir: 1 });
    expire(fk(40010)); expire(rk(ports[0]!)); // dead pair
    expire(fk(40011)); // forward expired, reverse alive (a reply-only stream): kept
    expire(fk(40012)); m.nat.delete(rk(ports[2]!)); // a dead half pair
    tt.equal(m.nat.count(), 7);
    const gc = collectNat({ pinRoot: h.root });
    tt.same(gc, { live: 2, deleted: 3 }, 'three entries of two dead pairs removed; two pairs live');
    tt.same(readNat({ pinRoot: h.root }).map((p) => [p.key.sport, !!p.forward, !!p.reverse]).sort(), [[40011, true, true], [40013, true, true]], 'the live pairs, whole');
    tt.equal(ingress(tcpIn(ports[1]!)).retval, TC_ACT_REDIRECT, 'the kept pair still translates replies');
    const rows = readNatRows({ pinRoot: h.root });
    tt.match(rows, [
      { protocol: 'TCP', pod: `${A.ip}:40011`, node: `${NODE}:${ports[1]}`, remote: `${WORLD}:443`, state: 'established', packetsOut: 1, packetsIn: 1, entries: 'both' },
      { protocol: 'TCP', pod: `${A.ip}:40013`, node: `${NODE}:${ports[3]}`, remote: `${WORLD}:443`, state: 'new', packetsOut: 1, packetsIn: 0, entries: 'both' },
    ], 'sluice bpf nat\'s rows');
    tt.ok(rows[1]!.expiresIn > 50 && rows[1]!.expiresIn <= 60, 'a SYN\'s pair lives 60 s');
  });

  t.test('a deleted pod\'s translations go with it (removeAddressNat), both entries of each pair, nobody else\'s', async (tt) => {
    reset();
    egress(tcpOut(A.ip, 40000));
    egress(udpOut(A.ip, 5353));
    const bPort = P.parseFrame(egress(tcpOut(B.ip, 40000)).data).l4!.sport;
    tt.equal(removeAddressNat({ pinRoot: h.root }, A.ip), 4, 'A\'s two pairs');
    tt.same(readNat({ pinRoot: h.root }).map((p) => [p.key.saddr, !!p.forward, !!p.reverse]), [[B.ip, true, true]], 'B\'s pair, whole');
    tt.equal(ingress(tcpIn(bPort)).retval, TC_ACT_REDIRECT, 'B\'s replies still arrive');
  });

  t.test('what the agent writes (planMasquerade through the map modules) is what the datapath reads', async (tt) => {
    reset();
    const cfg = resolveConfig({ nodeName: 'n1', pinRoot: h.root, nonMasqueradeCIDRs: ['192.168.0.0/16'], masqueradePortRange: '62000-62009' }, {});
    const plan = planMasquerade(cfg, { uplinkIp: NODE, localPorts: { min: 32768, max: 60999 }, vxlanPort: 8472 });
    const d = syncNonMasq(cfg, plan.nonMasq);
    tt.same(d.added, ['192.168.0.0/16'], 'sl_nonmasq: the key\'s CIDR added (the pool was there)');
    tt.same(d.removed.sort(), ['10.96.0.0/12'], 'the test\'s own entry removed');
    writeMasqConfig(cfg, plan.config);
    tt.same(readMasqConfig(cfg), { addr: NODE, port_min: 62000, port_max: 62009, flags: 1 });
    const f = P.parseFrame(egress(tcpOut(A.ip, 40000)).data);
    tt.ok(f.ipv4!.src === NODE && f.l4!.sport >= 62000 && f.l4!.sport <= 62009, `to the world: from ${f.ipv4!.src}:${f.l4!.sport}`);
    const exempt = tcpOut(A.ip, 40000, '192.168.1.1');
    tt.equal(egress(exempt).data.toString('hex'), exempt.toString('hex'), 'to nonMasqueradeCIDRs: untouched');
    const now10996 = tcpOut(A.ip, 40000, '10.96.0.1');
    tt.equal(P.parseFrame(egress(now10996).data).ipv4!.src, NODE, '10.96.0.1 is no longer exempt');
    writeMasqConfig(cfg, { ...plan.config, flags: 0 });
    const off = tcpOut(A.ip, 40001);
    tt.equal(egress(off).data.toString('hex'), off.toString('hex'), 'flags off: untouched');
    const cli = spawnSync(process.execPath, ['bin/sluice.js', 'bpf', 'nat', '-o', 'json', '--pin-root', h.root], { encoding: 'utf8' });
    if (cli.status === 0) {
      const rows = JSON.parse(cli.stdout) as { pod: string; remote: string; entries: string }[];
      tt.same(rows.map((r) => [r.pod, r.remote, r.entries]), [[`${A.ip}:40000`, '10.96.0.1:443', 'both'], [`${A.ip}:40000`, `${WORLD}:443`, 'both']], 'sluice bpf nat -o json');
    } else {
      tt.comment(`bin/sluice.js not runnable here (build dist/ first): ${cli.stderr.split('\n')[0]}`);
    }
  });

  t.test('conntrack and NAT agree: from_container admits by the pod\'s own address, the reply comes back through conntrack', async (tt) => {
    const m = reset();
    const fc = h.load('from_container', { sl_gateway_ip: '169.254.1.1', sl_vxlan_port: 8472 });
    const policy = fc.map<{ prefixlen: number; endpoint: number; identity: number; dir: number; protocol: number; dport: number }, { policy: number; flags: number }>('sl_policy');
    const WORLD_CIDR_IDENTITY = 0x1000005;
    // A is isolated both ways; its egress may reach 203.0.113.0/24 (a CIDR identity) on TCP 443 (policy 7)
    policy.clear();
    policy.update({ prefixlen: 72, endpoint: A.id, dir: 0, identity: 0, protocol: 0, dport: 0 }, { policy: 7, flags: 0 });
    policy.update({ prefixlen: 72, endpoint: A.id, dir: 1, identity: 0, protocol: 0, dport: 0 }, { policy: 7, flags: 0 });
    policy.update({ prefixlen: 96, endpoint: A.id, dir: 0, identity: WORLD_CIDR_IDENTITY, protocol: 6, dport: 443 }, { policy: 7, flags: 1 });
    const { ip, ...a } = A;
    m.endpoints.update({ ip }, { ...a, ifindex: 1 }); // the test run's device: A's veth
    try {
      const fromPod = (dport: number) => P.tcpFrame({ srcMac: A.mac, dstMac: A.host_mac, src: A.ip, dst: WORLD }, 40000, dport, Buffer.from('hello'), { flags: P.TCP_SYN });
      const r1 = run(fc, 'from_container', fromPod(443));
      tt.equal(r1.retval, TC_ACT_OK, 'from_container: egress policy allows it, to the stack');
      tt.ok(m.ct.lookup({ saddr: A.ip, daddr: WORLD, sport: 40000, dport: 443, protocol: 6 }), 'conntrack: the pod\'s own tuple');
      const port = P.parseFrame(egress(tcpOut(A.ip, 40000)).data).l4!.sport;
      m.metrics.clear();
      const back = ingress(tcpIn(port));
      tt.equal(back.retval, TC_ACT_REDIRECT, 'the reply: translated back, conntrack\'s reply of the flow, delivered although A\'s ingress is isolated');
      tt.same(Object.keys(counted(m)).sort(), ['from_netdev/ingress', 'nat_reverse/ingress']);
      m.ct.clear();
      m.metrics.clear();
      tt.equal(ingress(tcpIn(port)).retval, TC_ACT_SHOT, 'without the conntrack entry: A\'s ingress policy decides (denied)');
      tt.ok(counted(m)['drop_policy_ingress/ingress'], 'as drop_policy_ingress');
      tt.equal(run(fc, 'from_container', fromPod(80)).retval, TC_ACT_SHOT, 'egress to a port the policy does not allow: dropped in from_container, before any translation');
    } finally {
      policy.clear();
      m.ct.clear();
    }
  });

  t.test('from_container routes what to_netdev will masquerade out of the uplink by a FIB lookup; the stack gets the rest', async (tt) => {
    const m = reset();
    // A node of its own: the pod's host veth hv0, the uplink ul0 (NODE/24, default via .254), forwarding on
    const ns = netns(tt, `${prefix}-fib`);
    const ip = (...a: string[]) => mustSh('ip', ['-n', ns, ...a]);
    ip('link', 'add', 'hv0', 'type', 'veth', 'peer', 'name', 'pv0');
    ip('link', 'add', 'ul0', 'address', UPLINK_MAC, 'type', 'veth', 'peer', 'name', 'ul1');
    for (const d of ['hv0', 'pv0', 'ul0', 'ul1']) ip('link', 'set', d, 'up');
    ip('addr', 'add', `${NODE}/24`, 'dev', 'ul0');
    ip('addr', 'add', '192.0.2.2/24', 'dev', 'pv0');
    ip('route', 'add', 'default', 'via', '198.18.0.254', 'dev', 'ul0');
    ip('neigh', 'replace', '198.18.0.254', 'lladdr', GW_MAC, 'dev', 'ul0', 'nud', 'permanent');
    mustSh('nsenter', [`--net=/run/netns/${ns}`, 'sysctl', '-qw', 'net.ipv4.conf.all.forwarding=1']);
    const ifindex = (dev: string) => (JSON.parse(ip('-j', 'link', 'show', dev)) as { ifindex: number }[])[0]!.ifindex;
    const [hv, ul] = [ifindex('hv0'), ifindex('ul0')];
    m.node.update(0, { vxlan_ifindex: 0, uplink_ifindex: ul, underlay_ip: NODE, flags: 0 });
    const { ip: aip, ...a } = A;
    m.endpoints.update({ ip: aip }, { ...a, ifindex: hv });
    const fc = h.load('from_container', { sl_gateway_ip: '169.254.1.1', sl_vxlan_port: 8472 });
    const fromPod = (dst: string, o: { ttl?: number; fragOff?: number; size?: number } = {}) =>
      P.tcpFrame({ srcMac: A.mac, dstMac: A.host_mac, src: A.ip, dst, ttl: o.ttl ?? 64, ...(o.fragOff !== undefined ? { fragOff: o.fragOff } : {}) },
        40000, 443, Buffer.alloc(o.size ?? 5, 0x61), { flags: P.TCP_SYN });
    const send = (frame: Buffer) => withNetns(`/run/netns/${ns}`, () => {
      const r = h.run(fc.program('from_container'), frame, { ctx: skbCtx(hv) });
      if (!r) throw new Error('the kernel refused the frame');
      return r;
    });
    const stack = (what: string, frame: Buffer) => {
      m.metrics.clear();
      const r = send(frame);
      tt.same([r.retval, r.data.toString('hex')], [TC_ACT_OK, frame.toString('hex')], `${what}: to the stack, untouched`);
      tt.same(Object.keys(counted(m)), ['to_stack/egress'], `${what}: counted as to_stack`);
    };

    m.metrics.clear();
    const frame = fromPod(WORLD);
    const r = send(frame);
    tt.equal(r.retval, TC_ACT_REDIRECT, 'to the world: redirected (out of the uplink)');
    const f = checksumsValid(tt, r.data, 'routed');
    tt.same([f.eth.dst, f.eth.src], [GW_MAC, UPLINK_MAC], 'MACs: the gateway\'s (the FIB\'s resolved neighbour) from the uplink\'s');
    tt.match(f.ipv4!, { src: A.ip, dst: WORLD, ttl: 63 }, 'the pod\'s address still (to_netdev translates it), TTL decremented');
    onlyChanged(tt, r.data, frame, [...span(0, 12), ...TTL, ...IP_CSUM], 'routed');
    tt.same(counted(m), { 'forward_world/egress': { packets: 1, bytes: frame.length } }, 'counted as forward_world, not to_stack');
    tt.equal(m.nat.count(), 0, 'no mapping yet: to_netdev makes it');

    ip('neigh', 'del', '198.18.0.254', 'dev', 'ul0');
    const unresolved = send(fromPod(WORLD));
    tt.equal(unresolved.retval, TC_ACT_REDIRECT, 'gateway not resolved yet: redirected all the same (bpf_redirect_neigh resolves it)');
    tt.same(P.parseFrame(unresolved.data).eth.dst, A.host_mac, 'MACs left to the kernel');
    ip('neigh', 'replace', '198.18.0.254', 'lladdr', GW_MAC, 'dev', 'ul0', 'nud', 'permanent');

    stack('to a nonMasqueradeCIDRs range', fromPod('10.100.1.1'));
    stack('to a node of the cluster', fromPod(REMOTE_NODE));
    stack('to a network routed through another device than the uplink', fromPod('192.0.2.9'));
    stack('TTL 1 (the stack answers time exceeded)', fromPod(WORLD, { ttl: 1 }));
    stack('a fragment', fromPod(WORLD, { fragOff: 0x2000 }));
    ip('link', 'set', 'ul0', 'mtu', '1000');
    stack('bigger than the uplink\'s MTU (the stack answers fragmentation needed)', fromPod(WORLD, { size: 1200 }));
    ip('link', 'set', 'ul0', 'mtu', '1500');
    m.masq.update(0, { addr: NODE, port_min: RANGE.min, port_max: RANGE.max, flags: 0 });
    stack('masquerade off', fromPod(WORLD));
  });

  t.test('a full table: creation fails with drop_nat_table_full and leaves only whole pairs', async (tt) => {
    const m = reset();
    const max = m.nat.info.maxEntries;
    // one stray entry makes the count odd: the last flow's reverse entry fits, its forward one does not
    const stray = { saddr: '192.0.2.99', daddr: NODE, sport: 1, dport: 1, protocol: 17, dir: 1 };
    m.nat.update(stray, { expires: 0n, packets: 0n, bytes: 0n, addr: '0.0.0.0', port: 0, flags: 0, state: 0 });
    const frame = udpOut(A.ip, 61000, WORLD, 1);
    const pairs = (max - 1) / 2;
    let dport = 0;
    let dst = 0;
    const start = Date.now();
    for (let i = 0; i < Math.floor(pairs); i++) {
      dport++;
      if (dport > 65535) { dport = 1; dst++; }
      frame.writeUInt16BE(dport, L4 + 2);
      frame[14 + 19] = 10 + dst;
      const r = egress(frame);
      if (r.retval !== TC_ACT_OK) throw new Error(`flow ${i}: verdict ${r.retval}`);
    }
    tt.pass(`${Math.floor(pairs)} flows in ${Date.now() - start} ms`);
    m.metrics.clear();
    frame.writeUInt16BE(9, L4 + 2);
    frame[14 + 19] = 99;
    const r = egress(frame);
    tt.equal(r.retval, TC_ACT_SHOT, 'the next flow: dropped');
    tt.same(Object.keys(counted(m)), ['drop_nat_table_full/egress'], 'as drop_nat_table_full');
    let forward = 0;
    let reverse = 0;
    let half = 0;
    const all = new Map<string, NatVal>();
    const k = (x: NatKey) => `${x.saddr}|${x.daddr}|${x.sport}|${x.dport}|${x.protocol}|${x.dir}`;
    const entries = [...m.nat.entries()];
    for (const [key, v] of entries) all.set(k(key), v);
    for (const [key, v] of entries) {
      if (key.saddr === stray.saddr) continue;
      if (key.dir === 0) {
        forward++;
        if (!all.has(k({ saddr: key.daddr, daddr: v.addr, sport: key.dport, dport: v.port, protocol: key.protocol, dir: 1 }))) half++;
      } else {
        reverse++;
        if (!all.has(k({ saddr: v.addr, daddr: key.saddr, sport: v.port, dport: key.sport, protocol: key.protocol, dir: 0 }))) half++;
      }
    }
    tt.equal(entries.length, max - 1, `the table holds ${max - 1} of ${max}: the failed flow's reverse entry was taken back`);
    tt.same([forward, reverse, half], [Math.floor(pairs), Math.floor(pairs), 0], 'as many forward as reverse entries, no half pair');
    m.nat.clear();
  });
}
