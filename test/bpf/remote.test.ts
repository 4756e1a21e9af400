/**
 * The cross-node datapath under BPF_PROG_TEST_RUN: from_container sending to pods on
 * other nodes (wrapped in VXLAN, byte for byte, or routed directly, as sl_ipcache says; the
 * overlay device when BPF cannot wrap), and the two receiving programs, from_netdev
 * (uplink: unwrapping VXLAN, and direct mode) and from_overlay (VXLAN device). The trust
 * checks of the receiving side: VXLAN only from a node of the cluster (sl_nodes), carrying
 * only sources that node owns; a directly routed packet from a peer's pod only from that
 * peer's MAC.
 *
 * Test-run facts relied on (kernel 6.x): bpf_redirect, bpf_redirect_peer and
 * bpf_redirect_neigh only record their target and return TC_ACT_REDIRECT (7);
 * bpf_skb_set_tunnel_key works (its key is not visible afterwards); a test-run skb carries
 * no tunnel metadata, so bpf_skb_get_tunnel_key fails; the skb is "received" on loopback,
 * whose MAC is 00:00:00:00:00:00, so only frames to that MAC are PACKET_HOST.
 */
import type { EndpointKey, EndpointValue } from '../../src/maps/endpoints.js';
import t, { type Test } from 'tap';
import type { LoadedObject } from '../../src/bpf/object.js';
import { IS_ROOT, uniquePrefix } from '../helpers/env.js';
import { bpfHarness, TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT, type Counters } from '../helpers/bpf-harness.js';
import * as P from '../helpers/packets.js';

const GATEWAY = '169.254.1.1';

/** An sl_endpoints entry with its key, as the map codec takes them. */
type Ep = EndpointKey & EndpointValue;
const A: Ep = { ip: '10.244.0.5', ifindex: 1, id: 5, mac: '0a:58:0a:f4:00:05', host_mac: 'ee:ee:0a:f4:00:05', identity: 1005, flags: 0 };
const B: Ep = { ip: '10.244.0.6', ifindex: 4242, id: 6, mac: '0a:58:0a:f4:00:06', host_mac: 'ee:ee:0a:f4:00:06', identity: 1006, flags: 0 };

const REMOTE_POD = '10.244.1.7';
const REMOTE_NODE = '198.18.0.2';
const OTHER_NODE = '198.18.5.9';
/** An underlay host that is no node of the cluster. */
const STRANGER = '198.18.0.66';
const REMOTE_NODE_MAC = '02:00:00:00:00:02';
const F = { NONE: 0, TUNNEL: 1, DIRECT: 2 };

type IpcKey = { prefixlen: number; ip: string };
type IpcVal = { identity: number; tunnel_endpoint: string; flags: number };
type NodeCfg = { vxlan_ifindex: number; uplink_ifindex: number; underlay_ip: string; flags: number };
type PeerVal = { pod_block: string; pod_mask: string; mac: string; flags: number };
const NODES_F_MAC = 1;
const NODES_F_BLOCK = 2;
/** An sl_nodes entry: the node's pod block (a /24 here) and MAC, each when given. */
const peer = (block?: string, mac?: string): PeerVal => ({
  pod_block: block ?? '0.0.0.0', pod_mask: block ? '255.255.255.0' : '0.0.0.0', mac: mac ?? P.ZERO_MAC,
  flags: (block ? NODES_F_BLOCK : 0) | (mac ? NODES_F_MAC : 0),
});

if (!IS_ROOT) {
  t.plan(0, 'needs root (BPF)');
} else {
  const h = bpfHarness(t, uniquePrefix('rm'));
  let fc: LoadedObject;
  let fo: LoadedObject;
  let fn: LoadedObject;

  t.test('setup: the three programs share the pinned maps', async (tt) => {
    fc = h.load('from_container', { sl_gateway_ip: GATEWAY, sl_vxlan_port: 8472 });
    fo = h.load('from_overlay');
    fn = h.load('from_netdev', { sl_vxlan_port: 8472 });
    for (const m of ['sl_endpoints', 'sl_ipcache', 'sl_node', 'sl_nodes', 'sl_metrics']) {
      tt.equal(fo.map(m).info.id, fc.map(m).info.id, `${m} shared by from_container and from_overlay`);
      tt.equal(fn.map(m).info.id, fc.map(m).info.id, `${m} shared by from_container and from_netdev`);
    }
  });

  const maps = () => ({
    endpoints: fc.map<{ ip: string }, Omit<Ep, 'ip'>>('sl_endpoints'),
    ipcache: fc.map<IpcKey, IpcVal>('sl_ipcache'),
    node: fc.map<number, NodeCfg>('sl_node'),
    nodes: fc.map<{ ip: string }, PeerVal>('sl_nodes'),
    metrics: fc.map<{ reason: string | number; dir: string | number }, { packets: bigint; bytes: bigint }[]>('sl_metrics'),
  });

  interface Case {
    name: string;
    prog: 'from_container' | 'from_overlay' | 'from_netdev';
    /** Default: none, for from_netdev the remote pod block through the overlay (REMOTE_NODE's). */
    ipcache?: [IpcKey, IpcVal][];
    node?: Partial<NodeCfg>;
    /** The cluster's other nodes (default: REMOTE_NODE with its MAC, OTHER_NODE without). */
    nodes?: [string, PeerVal][];
    frame: Buffer;
    verdict: number;
    count: [string, 'egress' | 'ingress'] | null;
    /** A second counter the packet moves (of the same size). */
    also?: [string, 'egress' | 'ingress'];
    /** The bytes counted, when not the frame's length. */
    countBytes?: number;
    out?: 'unchanged' | ((tt: Test, out: Buffer, input: Buffer) => void);
  }

  const fromA = (dst: string, ttl = 64, tos = 0, sport = 40000) =>
    P.tcpFrame({ srcMac: A.mac, dstMac: A.host_mac, src: A.ip, dst, ttl, tos }, sport, 80, Buffer.from('remote'));
  /** As a peer node's redirect_neigh sends it: to this host's MAC (loopback's in a test run), source a remote pod. */
  const toLocal = (dst: string, dstMac = P.ZERO_MAC, srcMac = REMOTE_NODE_MAC) => P.tcpFrame({ srcMac, dstMac, src: REMOTE_POD, dst, ttl: 63 }, 80, 40000, Buffer.from('reply'));
  const route = (prefix: string, v: Partial<IpcVal>): [IpcKey, IpcVal] => {
    const [ip, len] = prefix.split('/');
    return [{ prefixlen: Number(len), ip: ip! }, { identity: 0, tunnel_endpoint: REMOTE_NODE, flags: F.TUNNEL, ...v }];
  };
  const devices: NodeCfg = { vxlan_ifindex: 7001, uplink_ifindex: 7002, underlay_ip: '198.18.0.1', flags: 0 };
  /** VXLAN from REMOTE_NODE (or `src`) to this node, as a peer's from_container sends it, around `inner`. */
  const vxlanIn = (inner: Buffer, o: { vni?: number; flags?: number; reserved?: number; src?: string; dst?: string; dport?: number; fragOff?: number; options?: Buffer } = {}) =>
    P.udpFrame({ srcMac: REMOTE_NODE_MAC, dstMac: P.ZERO_MAC, src: o.src ?? REMOTE_NODE, dst: o.dst ?? devices.underlay_ip, fragOff: o.fragOff, options: o.options },
      51000, o.dport ?? 8472, P.vxlan({ vni: o.vni ?? 2001, flags: o.flags, reserved: o.reserved }, inner));
  /** A remote pod's (or `src`'s) reply to `dst`, inside VXLAN. */
  const innerTo = (dst: string, src = REMOTE_POD) => P.tcpFrame({ srcMac: '0a:58:0a:f4:01:07', dstMac: 'ee:ee:0a:f4:01:07', src, dst, ttl: 63 }, 80, 40000, Buffer.from('reply'));
  const peerBlock = (flags = F.TUNNEL, tunnel_endpoint = REMOTE_NODE) => route('10.244.1.0/24', { flags, tunnel_endpoint });
  /** REMOTE_NODE owns 10.244.1.0/24 and names its MAC; OTHER_NODE owns 10.244.5.0/24 and names none. */
  const DEFAULT_NODES: [string, PeerVal][] = [[REMOTE_NODE, peer('10.244.1.0', REMOTE_NODE_MAC)], [OTHER_NODE, peer('10.244.5.0')]];

  /**
   * Wrapped in VXLAN to `node` with the sender's identity as VNI: the frame's own Ethernet
   * header in front (bpf_redirect_neigh replaces it), a valid outer IPv4 header from this
   * node, UDP 8472 from a port in the ephemeral range without a checksum, and inside, the
   * frame as routing leaves it (TTL decremented).
   */
  const wrappedTo = (node: string, vni: number, outerTos = 0) => (tt: Test, out: Buffer, input: Buffer) => {
    tt.equal(out.length, input.length + 50, '50 bytes of headers added');
    tt.same(out.subarray(0, 14), input.subarray(0, 14), 'the outer Ethernet header is the frame\'s own');
    const o = P.parseFrame(out);
    const ip = o.ipv4!;
    tt.match(ip, { version: 4, headerLength: 20, tos: outerTos, totalLength: input.length - 14 + 50, fragOff: 0x4000, ttl: 64,
      protocol: P.IPPROTO_UDP, src: devices.underlay_ip, dst: node, checksumValid: true }, 'outer IPv4: node to node, DF, TTL 64');
    tt.match(o.l4!, { dport: 8472, checksum: 0 }, 'UDP to 8472 without a checksum');
    tt.ok(o.l4!.sport >= 32768 && o.l4!.sport < 61000, `source port ${o.l4!.sport} in 32768-60999`);
    tt.equal(ip.payload.readUInt16BE(4), ip.payload.length, 'UDP length');
    const vx = P.parseVxlan(o.l4!.payload);
    tt.same([vx.flags, vx.vni, vx.reserved], [P.VXLAN_F_VNI, vni, 0], `VXLAN: I flag, VNI ${vni}`);
    tt.same(vx.inner.subarray(0, 14), input.subarray(0, 14), 'inner Ethernet header: the frame\'s own');
    routedOut(tt, vx.inner, input);
  };
  /** Only the TTL and the IPv4 checksum changed; the checksum is valid; MACs are untouched (the kernel fills them). */
  const routedOut = (tt: Test, out: Buffer, input: Buffer) => {
    const o = P.parseFrame(out);
    const i = P.parseFrame(input);
    tt.equal(o.ipv4!.ttl, i.ipv4!.ttl - 1, 'TTL decremented');
    tt.ok(o.ipv4!.checksumValid, 'IPv4 checksum valid');
    tt.same(P.diffBytes(out, input).filter((b) => b !== P.OFF.ipTtl && b !== P.OFF.ipCheck && b !== P.OFF.ipCheck + 1), [], 'nothing else changed');
  };
  /** Delivered into pod `ep`: MACs as if its gateway sent it, TTL untouched (the sending node decremented it). */
  const deliveredTo = (ep: Ep) => (tt: Test, out: Buffer, input: Buffer) => {
    const o = P.parseFrame(out);
    tt.equal(o.eth.dst, ep.mac, 'Ethernet dst = pod MAC');
    tt.equal(o.eth.src, ep.host_mac, 'Ethernet src = its gateway MAC');
    tt.same(P.diffBytes(out, input).filter((b) => b >= 12), [], 'only the MACs changed');
  };
  /** Unwrapped and delivered into pod `ep`: the inner frame, MACs as if its gateway sent it. */
  const unwrappedTo = (ep: Ep, inner: Buffer) => (tt: Test, out: Buffer) => {
    tt.equal(out.length, inner.length, 'the outer headers are gone');
    deliveredTo(ep)(tt, out, inner);
  };

  const cases: Case[] = [
    { name: 'to a remote pod through the overlay: wrapped in VXLAN, out of the uplink', prog: 'from_container',
      ipcache: [route('10.244.1.0/24', { flags: F.TUNNEL })], node: devices, frame: fromA(REMOTE_POD),
      verdict: TC_ACT_REDIRECT, count: ['forward_tunnel', 'egress'], out: wrappedTo(REMOTE_NODE, A.identity) },
    { name: 'ECN is copied to the outer header (ECT(1) stays ECT(1)), DSCP is not', prog: 'from_container',
      ipcache: [route('10.244.1.0/24', { flags: F.TUNNEL })], node: devices, frame: fromA(REMOTE_POD, 64, 0xb9),
      verdict: TC_ACT_REDIRECT, count: ['forward_tunnel', 'egress'], out: wrappedTo(REMOTE_NODE, A.identity, 0x01) },
    { name: 'CE goes out as ECT(0) (RFC 6040)', prog: 'from_container',
      ipcache: [route('10.244.1.0/24', { flags: F.TUNNEL })], node: devices, frame: fromA(REMOTE_POD, 64, 0x03),
      verdict: TC_ACT_REDIRECT, count: ['forward_tunnel', 'egress'], out: wrappedTo(REMOTE_NODE, A.identity, 0x02) },
    { name: 'no uplink configured: the overlay device wraps it (tunnel key set, redirected to it)', prog: 'from_container',
      ipcache: [route('10.244.1.0/24', { flags: F.TUNNEL })], node: { ...devices, uplink_ifindex: 0 }, frame: fromA(REMOTE_POD),
      verdict: TC_ACT_REDIRECT, count: ['forward_tunnel', 'egress'], also: ['overlay_device', 'egress'], out: routedOut },
    { name: 'no underlay address configured: the overlay device too', prog: 'from_container',
      ipcache: [route('10.244.1.0/24', { flags: F.TUNNEL })], node: { ...devices, underlay_ip: '0.0.0.0' }, frame: fromA(REMOTE_POD),
      verdict: TC_ACT_REDIRECT, count: ['forward_tunnel', 'egress'], also: ['overlay_device', 'egress'], out: routedOut },
    { name: 'to a remote pod routed directly: redirect_neigh out of the uplink', prog: 'from_container',
      ipcache: [route('10.244.1.0/24', { flags: F.DIRECT })], node: devices, frame: fromA(REMOTE_POD),
      verdict: TC_ACT_REDIRECT, count: ['forward_direct', 'egress'], out: routedOut },
    { name: 'the longest prefix wins: a /32 routed directly inside a /24 through the overlay', prog: 'from_container',
      ipcache: [route('10.244.1.0/24', { flags: F.TUNNEL }), route(`${REMOTE_POD}/32`, { flags: F.DIRECT, tunnel_endpoint: OTHER_NODE })],
      node: devices, frame: fromA(REMOTE_POD), verdict: TC_ACT_REDIRECT, count: ['forward_direct', 'egress'], out: routedOut },
    { name: 'another address of the /24 still goes through the overlay', prog: 'from_container',
      ipcache: [route('10.244.1.0/24', { flags: F.TUNNEL }), route(`${REMOTE_POD}/32`, { flags: F.DIRECT, tunnel_endpoint: OTHER_NODE })],
      node: devices, frame: fromA('10.244.1.8'), verdict: TC_ACT_REDIRECT, count: ['forward_tunnel', 'egress'], out: wrappedTo(REMOTE_NODE, A.identity) },
    { name: 'overlay entry, no VXLAN device but an uplink: BPF still wraps it', prog: 'from_container',
      ipcache: [route('10.244.1.0/24', { flags: F.TUNNEL })], node: { ...devices, vxlan_ifindex: 0 }, frame: fromA(REMOTE_POD),
      verdict: TC_ACT_REDIRECT, count: ['forward_tunnel', 'egress'], out: wrappedTo(REMOTE_NODE, A.identity) },
    { name: 'overlay entry but neither an uplink nor a VXLAN device: dropped, counted', prog: 'from_container',
      ipcache: [route('10.244.1.0/24', { flags: F.TUNNEL })], node: { ...devices, vxlan_ifindex: 0, uplink_ifindex: 0 }, frame: fromA(REMOTE_POD),
      verdict: TC_ACT_SHOT, count: ['drop_no_device', 'egress'] },
    { name: 'direct entry but no uplink configured: dropped, counted', prog: 'from_container',
      ipcache: [route('10.244.1.0/24', { flags: F.DIRECT })], node: { ...devices, uplink_ifindex: 0 }, frame: fromA(REMOTE_POD),
      verdict: TC_ACT_SHOT, count: ['drop_no_device', 'egress'] },
    { name: 'an ipcache entry with neither flag (an identity-only CIDR) goes to the stack unchanged', prog: 'from_container',
      ipcache: [route('10.244.1.0/24', { flags: F.NONE })], node: devices, frame: fromA(REMOTE_POD),
      verdict: TC_ACT_OK, count: ['to_stack', 'egress'], out: 'unchanged' },
    { name: 'an entry without a tunnel endpoint goes to the stack', prog: 'from_container',
      ipcache: [route('10.244.1.0/24', { flags: F.TUNNEL, tunnel_endpoint: '0.0.0.0' })], node: devices, frame: fromA(REMOTE_POD),
      verdict: TC_ACT_OK, count: ['to_stack', 'egress'], out: 'unchanged' },
    { name: 'no ipcache entry: the stack', prog: 'from_container', node: devices, frame: fromA(REMOTE_POD),
      verdict: TC_ACT_OK, count: ['to_stack', 'egress'], out: 'unchanged' },
    { name: 'TTL 1 to a remote pod: the stack (ICMP time exceeded)', prog: 'from_container',
      ipcache: [route('10.244.1.0/24', { flags: F.TUNNEL })], node: devices, frame: fromA(REMOTE_POD, 1),
      verdict: TC_ACT_OK, count: ['to_stack', 'egress'], out: 'unchanged' },
    { name: 'a local pod wins over an ipcache entry covering it', prog: 'from_container',
      ipcache: [route('10.244.0.0/16', { flags: F.TUNNEL })], node: devices, frame: fromA(B.ip),
      verdict: TC_ACT_REDIRECT, count: ['forward_local', 'egress'] },
    { name: 'from_overlay: a frame without tunnel metadata is dropped', prog: 'from_overlay', frame: toLocal(A.ip),
      verdict: TC_ACT_SHOT, count: ['drop_tunnel_key', 'ingress'] },
    { name: 'from_netdev: to a local pod, delivered into it', prog: 'from_netdev', frame: toLocal(B.ip),
      verdict: TC_ACT_REDIRECT, count: ['from_netdev', 'ingress'], out: deliveredTo(B) },
    { name: 'from_netdev: to an address that is no local pod, the stack', prog: 'from_netdev', frame: toLocal('10.244.0.99'),
      verdict: TC_ACT_OK, count: null, out: 'unchanged' },
    { name: 'from_netdev: to a local pod but another host\'s MAC, the stack (not ours to deliver)', prog: 'from_netdev',
      frame: toLocal(B.ip, '02:00:00:00:00:99'), verdict: TC_ACT_OK, count: null, out: 'unchanged' },
    { name: 'from_netdev: ARP, the stack', prog: 'from_netdev', frame: P.arpFrame({ sha: '02:00:00:00:00:02', sip: REMOTE_NODE, tip: '198.18.0.1' }),
      verdict: TC_ACT_OK, count: null, out: 'unchanged' },
    { name: 'a pod sending to UDP 8472 of a node (a forged VXLAN packet): dropped, counted', prog: 'from_container', node: devices,
      frame: P.udpFrame({ srcMac: A.mac, dstMac: A.host_mac, src: A.ip, dst: REMOTE_NODE }, 40000, 8472, Buffer.alloc(60)),
      verdict: TC_ACT_SHOT, count: ['drop_tunnel_port', 'egress'], out: 'unchanged' },
    { name: 'a pod sending to UDP 8472 of an address outside the cluster: dropped too (other nodes look like that)', prog: 'from_container', node: devices,
      frame: P.udpFrame({ srcMac: A.mac, dstMac: A.host_mac, src: A.ip, dst: OTHER_NODE }, 40000, 8472, Buffer.alloc(60)),
      verdict: TC_ACT_SHOT, count: ['drop_tunnel_port', 'egress'], out: 'unchanged' },
    { name: 'a pod sending to UDP 8472 of another pod: ordinary traffic, forwarded', prog: 'from_container',
      frame: P.udpFrame({ srcMac: A.mac, dstMac: A.host_mac, src: A.ip, dst: B.ip }, 40000, 8472, Buffer.alloc(60)),
      verdict: TC_ACT_REDIRECT, count: ['forward_local', 'egress'] },
    { name: 'a pod sending to UDP 8473 of a node: the stack', prog: 'from_container', node: devices,
      frame: P.udpFrame({ srcMac: A.mac, dstMac: A.host_mac, src: A.ip, dst: REMOTE_NODE }, 40000, 8473, Buffer.alloc(60)),
      verdict: TC_ACT_OK, count: ['to_stack', 'egress'], out: 'unchanged' },
    { name: 'from_netdev: VXLAN carrying IPv4 for a local pod: unwrapped, delivered with the VNI as source identity', prog: 'from_netdev',
      frame: vxlanIn(innerTo(B.ip)), verdict: TC_ACT_REDIRECT, count: ['from_overlay', 'ingress'], countBytes: innerTo(B.ip).length,
      out: unwrappedTo(B, innerTo(B.ip)) },
    { name: 'from_netdev: VXLAN whose VNI claims the host identity: dropped, counted', prog: 'from_netdev',
      frame: vxlanIn(innerTo(B.ip), { vni: 1 }), verdict: TC_ACT_SHOT, count: ['drop_tunnel_host', 'ingress'], out: 'unchanged' },
    { name: 'from_netdev: VXLAN for a pod this node does not have: the stack (the overlay device drops it)', prog: 'from_netdev',
      frame: vxlanIn(innerTo('10.244.0.99')), verdict: TC_ACT_OK, count: null, out: 'unchanged' },
    { name: 'from_netdev: VXLAN to another address of the node: the stack', prog: 'from_netdev',
      frame: vxlanIn(innerTo(B.ip), { dst: '198.18.0.77' }), verdict: TC_ACT_OK, count: null, out: 'unchanged' },
    { name: 'from_netdev: UDP 4789 (not the overlay port): the stack', prog: 'from_netdev',
      frame: vxlanIn(innerTo(B.ip), { dport: 4789 }), verdict: TC_ACT_OK, count: null, out: 'unchanged' },
    { name: 'from_netdev: VXLAN with another flag set (GBP): left to the overlay device', prog: 'from_netdev',
      frame: vxlanIn(innerTo(B.ip), { flags: 0x88 }), verdict: TC_ACT_OK, count: null, out: 'unchanged' },
    { name: 'from_netdev: VXLAN with the I flag clear: left to the overlay device', prog: 'from_netdev',
      frame: vxlanIn(innerTo(B.ip), { flags: 0 }), verdict: TC_ACT_OK, count: null, out: 'unchanged' },
    { name: 'from_netdev: VXLAN with a reserved bit set: left to the overlay device', prog: 'from_netdev',
      frame: vxlanIn(innerTo(B.ip), { reserved: 1 }), verdict: TC_ACT_OK, count: null, out: 'unchanged' },
    { name: 'from_netdev: VXLAN carrying ARP: left to the overlay device', prog: 'from_netdev',
      frame: vxlanIn(P.arpFrame({ sha: '0a:58:0a:f4:01:07', sip: REMOTE_POD, tip: B.ip })), verdict: TC_ACT_OK, count: null, out: 'unchanged' },
    { name: 'from_netdev: a first fragment of a VXLAN packet: the stack reassembles it', prog: 'from_netdev',
      frame: vxlanIn(innerTo(B.ip), { fragOff: 0x2000 }), verdict: TC_ACT_OK, count: null, out: 'unchanged' },
    { name: 'from_netdev: VXLAN cut short inside the inner IPv4 header: the stack', prog: 'from_netdev',
      frame: P.truncate(vxlanIn(innerTo(B.ip)), 14 + 20 + 8 + 8 + 14 + 10), verdict: TC_ACT_OK, count: null, out: 'unchanged' },

    // Only nodes of the cluster may send VXLAN: the VNI is trusted as the source's identity.
    { name: 'from_netdev: VXLAN from an address that is no node: dropped, counted', prog: 'from_netdev',
      frame: vxlanIn(innerTo(B.ip), { src: STRANGER }), verdict: TC_ACT_SHOT, count: ['drop_tunnel_source', 'ingress'], out: 'unchanged' },
    { name: 'from_netdev: VXLAN from a stranger carrying the node\'s own address as inner source: dropped', prog: 'from_netdev',
      frame: vxlanIn(innerTo(B.ip, STRANGER), { src: STRANGER }), verdict: TC_ACT_SHOT, count: ['drop_tunnel_source', 'ingress'], out: 'unchanged' },
    { name: 'from_netdev: VXLAN from a stranger whose VNI claims the host: dropped as from a stranger', prog: 'from_netdev',
      frame: vxlanIn(innerTo(B.ip), { src: STRANGER, vni: 1 }), verdict: TC_ACT_SHOT, count: ['drop_tunnel_source', 'ingress'], out: 'unchanged' },
    { name: 'from_netdev: VXLAN from a stranger for a pod this node does not have: dropped (not left to the overlay device)', prog: 'from_netdev',
      frame: vxlanIn(innerTo('10.244.0.99'), { src: STRANGER }), verdict: TC_ACT_SHOT, count: ['drop_tunnel_source', 'ingress'], out: 'unchanged' },
    { name: 'from_netdev: VXLAN from a stranger with flags BPF leaves to the device (GBP): dropped here', prog: 'from_netdev',
      frame: vxlanIn(innerTo(B.ip), { src: STRANGER, flags: 0x88 }), verdict: TC_ACT_SHOT, count: ['drop_tunnel_source', 'ingress'], out: 'unchanged' },
    { name: 'from_netdev: the first fragment of VXLAN from a stranger: dropped (nothing to reassemble)', prog: 'from_netdev',
      frame: vxlanIn(innerTo(B.ip), { src: STRANGER, fragOff: 0x2000 }), verdict: TC_ACT_SHOT, count: ['drop_tunnel_source', 'ingress'], out: 'unchanged' },
    { name: 'from_netdev: VXLAN from a stranger behind IPv4 options: dropped', prog: 'from_netdev',
      frame: vxlanIn(innerTo(B.ip), { src: STRANGER, options: Buffer.from([1, 1, 1, 0]) }), verdict: TC_ACT_SHOT, count: ['drop_tunnel_source', 'ingress'], out: 'unchanged' },
    { name: 'from_netdev: a stranger\'s UDP to another port: the stack (not overlay traffic)', prog: 'from_netdev',
      frame: vxlanIn(innerTo(B.ip), { src: STRANGER, dport: 4789 }), verdict: TC_ACT_OK, count: null, out: 'unchanged' },
    { name: 'from_netdev: a stranger\'s VXLAN to another address of this node: the stack (from_overlay judges it)', prog: 'from_netdev',
      frame: vxlanIn(innerTo(B.ip), { src: STRANGER, dst: '198.18.0.77' }), verdict: TC_ACT_OK, count: null, out: 'unchanged' },
    { name: 'from_netdev: VXLAN from a node that has left the cluster (no longer in sl_nodes): dropped', prog: 'from_netdev',
      nodes: [[OTHER_NODE, peer('10.244.5.0')]], frame: vxlanIn(innerTo(B.ip)), verdict: TC_ACT_SHOT, count: ['drop_tunnel_source', 'ingress'], out: 'unchanged' },
    // A node may carry only the sources it owns: a pod of node X cannot pass for a pod of node Y.
    { name: 'from_netdev: VXLAN from the wrong node (a pod of REMOTE_NODE sent by OTHER_NODE): dropped, counted', prog: 'from_netdev',
      frame: vxlanIn(innerTo(B.ip), { src: OTHER_NODE }), verdict: TC_ACT_SHOT, count: ['drop_tunnel_inner_source', 'ingress'], out: 'unchanged' },
    { name: 'from_netdev: VXLAN from a node with a forged inner source (no pod, no ipcache entry): dropped', prog: 'from_netdev',
      frame: vxlanIn(innerTo(B.ip, '10.99.99.99')), verdict: TC_ACT_SHOT, count: ['drop_tunnel_inner_source', 'ingress'], out: 'unchanged' },
    { name: 'from_netdev: a forged inner source next to the sender\'s block (10.244.2.1, outside 10.244.1.0/24): dropped', prog: 'from_netdev',
      frame: vxlanIn(innerTo(B.ip, '10.244.2.1')), verdict: TC_ACT_SHOT, count: ['drop_tunnel_inner_source', 'ingress'], out: 'unchanged' },
    { name: 'from_netdev: a node without a pod block (none yet, or one overlapping ours) carries only its own address', prog: 'from_netdev',
      nodes: [[REMOTE_NODE, peer(undefined, REMOTE_NODE_MAC)]], frame: vxlanIn(innerTo(B.ip)), verdict: TC_ACT_SHOT, count: ['drop_tunnel_inner_source', 'ingress'], out: 'unchanged' },
    { name: 'from_netdev: a forged inner source of this node\'s own pod: dropped', prog: 'from_netdev',
      frame: vxlanIn(innerTo(B.ip, A.ip)), verdict: TC_ACT_SHOT, count: ['drop_tunnel_inner_source', 'ingress'], out: 'unchanged' },
    { name: 'from_netdev: VXLAN from a node with its own address as inner source (the node\'s own traffic): delivered', prog: 'from_netdev',
      frame: vxlanIn(innerTo(B.ip, REMOTE_NODE)), verdict: TC_ACT_REDIRECT, count: ['from_overlay', 'ingress'], countBytes: innerTo(B.ip, REMOTE_NODE).length,
      out: unwrappedTo(B, innerTo(B.ip, REMOTE_NODE)) },
    { name: 'from_netdev: a pod of OTHER_NODE\'s block, sent by OTHER_NODE: delivered (the ipcache is not consulted)', prog: 'from_netdev', ipcache: [],
      frame: vxlanIn(innerTo(B.ip, '10.244.5.9'), { src: OTHER_NODE }), verdict: TC_ACT_REDIRECT, count: ['from_overlay', 'ingress'], countBytes: innerTo(B.ip).length,
      out: unwrappedTo(B, innerTo(B.ip, '10.244.5.9')) },
    // Direct mode: a peer's pods come from the peer's MAC.
    { name: 'from_netdev: routed from a direct peer\'s pod, from that peer\'s MAC: delivered', prog: 'from_netdev',
      ipcache: [peerBlock(F.DIRECT)], frame: toLocal(B.ip), verdict: TC_ACT_REDIRECT, count: ['from_netdev', 'ingress'], out: deliveredTo(B) },
    { name: 'from_netdev: routed from a direct peer\'s pod, from another MAC: dropped, counted', prog: 'from_netdev',
      ipcache: [peerBlock(F.DIRECT)], frame: toLocal(B.ip, P.ZERO_MAC, '02:00:00:00:00:66'), verdict: TC_ACT_SHOT, count: ['drop_node_mac', 'ingress'], out: 'unchanged' },
    { name: 'from_netdev: from another MAC, to an address that is no local pod: the stack (only deliveries are checked)', prog: 'from_netdev',
      ipcache: [peerBlock(F.DIRECT)], frame: toLocal('10.244.0.99', P.ZERO_MAC, '02:00:00:00:00:66'), verdict: TC_ACT_OK, count: null, out: 'unchanged' },
    { name: 'from_netdev: a direct peer whose record names no MAC: not checked, delivered', prog: 'from_netdev',
      ipcache: [peerBlock(F.DIRECT, OTHER_NODE)], frame: toLocal(B.ip, P.ZERO_MAC, '02:00:00:00:00:66'), verdict: TC_ACT_REDIRECT, count: ['from_netdev', 'ingress'], out: deliveredTo(B) },
    { name: 'from_netdev: a block routed via a gateway that is no node (a routing daemon\'s route): not checked, delivered', prog: 'from_netdev',
      ipcache: [peerBlock(F.DIRECT, '198.18.0.254')], frame: toLocal(B.ip, P.ZERO_MAC, '02:00:00:00:00:66'), verdict: TC_ACT_REDIRECT, count: ['from_netdev', 'ingress'], out: deliveredTo(B) },
    { name: 'from_netdev: overlay peers are not MAC-checked (a router may stand between)', prog: 'from_netdev',
      frame: toLocal(B.ip, P.ZERO_MAC, '02:00:00:00:00:66'), verdict: TC_ACT_REDIRECT, count: ['from_netdev', 'ingress'], out: deliveredTo(B) },
  ];

  for (const c of cases) {
    t.test(c.name, async (tt) => {
      const m = maps();
      m.endpoints.clear();
      for (const { ip, ...v } of [A, B]) m.endpoints.update({ ip }, v);
      m.ipcache.clear();
      for (const [k, v] of c.ipcache ?? (c.prog === 'from_netdev' ? [peerBlock()] : [])) m.ipcache.update(k, v);
      m.node.update(0, { ...devices, ...c.node });
      m.nodes.clear();
      for (const [ip, v] of c.nodes ?? DEFAULT_NODES) m.nodes.update({ ip }, v);
      m.metrics.clear();
      const prog = { from_container: fc, from_overlay: fo, from_netdev: fn }[c.prog].program(c.prog);
      const res = h.run(prog, c.frame);
      if (!res) throw new Error('the kernel refused the frame');
      tt.equal(res.retval, c.verdict, 'verdict');
      const one = { packets: 1, bytes: c.countBytes ?? c.frame.length };
      const want: Counters = Object.fromEntries([c.count, c.also].filter((k) => k).map((k) => [`${k![0]}/${k![1]}`, one]));
      tt.same(h.counters(m.metrics), want, c.count ? `counted once as ${[c.count, c.also].filter((k) => k).map((k) => k![0]).join(' and ')}` : 'no counter moved');
      if (c.out === 'unchanged') tt.equal(res.data.toString('hex'), c.frame.toString('hex'), 'frame unchanged');
      else if (c.out) c.out(tt, res.data, c.frame);
    });
  }

  t.test('unwrapped VXLAN meets the pod\'s ingress policy with the VNI as source identity', async (tt) => {
    const m = maps();
    const policy = fc.map<{ prefixlen: number; endpoint: number; identity: number; dir: number; protocol: number; dport: number }, { policy: number; flags: number }>('sl_policy');
    const ct = fc.map<{ saddr: string; daddr: string; sport: number; dport: number; protocol: number }, unknown>('sl_ct_v2');
    m.endpoints.clear();
    for (const { ip, ...v } of [A, B]) m.endpoints.update({ ip }, v);
    m.ipcache.clear();
    m.ipcache.update(...peerBlock());
    m.nodes.clear();
    for (const [ip, v] of DEFAULT_NODES) m.nodes.update({ ip }, v);
    m.node.update(0, devices);
    policy.clear();
    ct.clear();
    // B's ingress is isolated by policy 9, which admits identity 2001 on TCP 40000 only
    policy.update({ prefixlen: 72, endpoint: B.id, dir: 1, identity: 0, protocol: 0, dport: 0 }, { policy: 9, flags: 0 });
    policy.update({ prefixlen: 96, endpoint: B.id, dir: 1, identity: 2001, protocol: 6, dport: 40000 }, { policy: 9, flags: 1 });
    const run = (vni: number) => {
      m.metrics.clear();
      const r = h.run(fn.program('from_netdev'), vxlanIn(innerTo(B.ip), { vni }));
      return [r?.retval, Object.keys(h.counters(m.metrics))];
    };
    try {
      tt.same(run(2002), [TC_ACT_SHOT, ['drop_policy_ingress/ingress']], 'VNI 2002: denied by B\'s ingress policy');
      tt.same(run(2001), [TC_ACT_REDIRECT, ['from_overlay/ingress']], 'VNI 2001: admitted, delivered');
      tt.ok(ct.lookup({ saddr: REMOTE_POD, daddr: B.ip, sport: 80, dport: 40000, protocol: 6 }), 'the flow is tracked by its inner addresses');
    } finally {
      policy.clear();
      ct.clear();
    }
  });

  t.test('the outer source port follows the inner flow: one port per flow, flows spread', async (tt) => {
    const m = maps();
    m.ipcache.clear();
    m.ipcache.update({ prefixlen: 24, ip: '10.244.1.0' }, { identity: 0, tunnel_endpoint: REMOTE_NODE, flags: F.TUNNEL });
    m.node.update(0, devices);
    const sport = (innerSport: number) => {
      const res = h.run(fc.program('from_container'), fromA(REMOTE_POD, 64, 0, innerSport));
      if (!res || res.retval !== TC_ACT_REDIRECT) throw new Error(`not redirected: ${res?.retval}`);
      return P.parseFrame(res.data).l4!.sport;
    };
    tt.equal(sport(40000), sport(40000), 'the same flow twice: the same port');
    const ports = new Set(Array.from({ length: 16 }, (_, i) => sport(41000 + i)));
    tt.ok(ports.size >= 8, `16 flows: ${ports.size} different ports`);
    tt.ok([...ports].every((p) => p >= 32768 && p < 61000), 'all in the ephemeral range');
  });

  t.test('bpftool dumps sl_ipcache, sl_node and sl_nodes with field names', async (tt) => {
    const m = maps();
    m.ipcache.clear();
    m.ipcache.update({ prefixlen: 24, ip: '10.244.1.0' }, { identity: 7, tunnel_endpoint: REMOTE_NODE, flags: F.TUNNEL });
    const { spawnSync } = await import('node:child_process');
    const dump = (name: string) => spawnSync('bpftool', ['-j', 'map', 'dump', 'pinned', `${h.root}/${name}`], { encoding: 'utf8' }).stdout;
    const ipc = JSON.parse(dump('sl_ipcache')) as { formatted: { key: Record<string, unknown>; value: Record<string, unknown> } }[];
    tt.same(Object.keys(ipc[0]!.formatted.key), ['prefixlen', 'ip']);
    tt.same(Object.keys(ipc[0]!.formatted.value), ['identity', 'tunnel_endpoint', 'flags']);
    const node = JSON.parse(dump('sl_node')) as { formatted: { value: Record<string, unknown> } }[];
    tt.same(Object.keys(node[0]!.formatted.value), ['vxlan_ifindex', 'uplink_ifindex', 'underlay_ip', 'flags']);
    m.nodes.clear();
    m.nodes.update({ ip: REMOTE_NODE }, peer('10.244.1.0', REMOTE_NODE_MAC));
    const nodes = JSON.parse(dump('sl_nodes')) as { formatted: { key: Record<string, unknown>; value: Record<string, unknown> } }[];
    tt.same(Object.keys(nodes[0]!.formatted.key), ['ip']);
    tt.same(Object.keys(nodes[0]!.formatted.value), ['pod_block', 'pod_mask', 'mac', 'flags']);
    tt.equal(nodes[0]!.formatted.value.flags, NODES_F_BLOCK | NODES_F_MAC, 'flags: block and MAC');
  });
}
