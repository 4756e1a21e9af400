/**
 * The cross-node datapath under BPF_PROG_TEST_RUN: from_container sending to pods on
 * other nodes (through the overlay or routed directly, as sl_ipcache says), and the two
 * receiving programs, from_overlay (VXLAN device) and from_netdev (uplink).
 *
 * Test-run facts relied on (kernel 6.x): bpf_redirect, bpf_redirect_peer and
 * bpf_redirect_neigh only record their target and return TC_ACT_REDIRECT (7);
 * bpf_skb_set_tunnel_key works (its key is not visible afterwards); a test-run skb carries
 * no tunnel metadata, so bpf_skb_get_tunnel_key fails; the skb is "received" on loopback,
 * whose MAC is 00:00:00:00:00:00, so only frames to that MAC are PACKET_HOST.
 */
import t, { type Test } from 'tap';
import type { LoadedObject } from '../../src/bpf/object.js';
import { IS_ROOT, uniquePrefix } from '../helpers/env.js';
import { bpfHarness, type Counters } from '../helpers/bpf-harness.js';
import * as P from '../helpers/packets.js';

const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;
const GATEWAY = '169.254.1.1';

interface Ep { ip: string; ifindex: number; id: number; mac: string; host_mac: string; identity: number; flags: number }
const A: Ep = { ip: '10.244.0.5', ifindex: 1, id: 5, mac: '0a:58:0a:f4:00:05', host_mac: 'ee:ee:0a:f4:00:05', identity: 1005, flags: 0 };
const B: Ep = { ip: '10.244.0.6', ifindex: 4242, id: 6, mac: '0a:58:0a:f4:00:06', host_mac: 'ee:ee:0a:f4:00:06', identity: 1006, flags: 0 };

const REMOTE_POD = '10.244.1.7';
const REMOTE_NODE = '198.18.0.2';
const OTHER_NODE = '198.18.5.9';
const F = { NONE: 0, TUNNEL: 1, DIRECT: 2 };

type IpcKey = { prefixlen: number; ip: string };
type IpcVal = { identity: number; tunnel_endpoint: string; flags: number };
type NodeCfg = { vxlan_ifindex: number; uplink_ifindex: number; underlay_ip: string; flags: number };

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
    fn = h.load('from_netdev');
    for (const m of ['sl_endpoints', 'sl_ipcache', 'sl_node', 'sl_metrics']) {
      tt.equal(fo.map(m).info.id, fc.map(m).info.id, `${m} shared by from_container and from_overlay`);
      tt.equal(fn.map(m).info.id, fc.map(m).info.id, `${m} shared by from_container and from_netdev`);
    }
  });

  const maps = () => ({
    endpoints: fc.map<{ ip: string }, Omit<Ep, 'ip'>>('sl_endpoints'),
    ipcache: fc.map<IpcKey, IpcVal>('sl_ipcache'),
    node: fc.map<number, NodeCfg>('sl_node'),
    metrics: fc.map<{ reason: string | number; dir: string | number }, { packets: bigint; bytes: bigint }[]>('sl_metrics'),
  });

  interface Case {
    name: string;
    prog: 'from_container' | 'from_overlay' | 'from_netdev';
    ipcache?: [IpcKey, IpcVal][];
    node?: Partial<NodeCfg>;
    frame: Buffer;
    verdict: number;
    count: [string, 'egress' | 'ingress'] | null;
    out?: 'unchanged' | ((tt: Test, out: Buffer, input: Buffer) => void);
  }

  const fromA = (dst: string, ttl = 64) => P.tcpFrame({ srcMac: A.mac, dstMac: A.host_mac, src: A.ip, dst, ttl }, 40000, 80, Buffer.from('remote'));
  /** As a peer node's redirect_neigh sends it: to this host's MAC (loopback's in a test run), source a remote pod. */
  const toLocal = (dst: string, dstMac = P.ZERO_MAC) => P.tcpFrame({ srcMac: '02:00:00:00:00:02', dstMac, src: REMOTE_POD, dst, ttl: 63 }, 80, 40000, Buffer.from('reply'));
  const route = (prefix: string, v: Partial<IpcVal>): [IpcKey, IpcVal] => {
    const [ip, len] = prefix.split('/');
    return [{ prefixlen: Number(len), ip: ip! }, { identity: 0, tunnel_endpoint: REMOTE_NODE, flags: F.TUNNEL, ...v }];
  };
  const devices: NodeCfg = { vxlan_ifindex: 7001, uplink_ifindex: 7002, underlay_ip: '198.18.0.1', flags: 0 };

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

  const cases: Case[] = [
    { name: 'to a remote pod through the overlay: tunnel key set, redirected to the VXLAN device', prog: 'from_container',
      ipcache: [route('10.244.1.0/24', { flags: F.TUNNEL })], node: devices, frame: fromA(REMOTE_POD),
      verdict: TC_ACT_REDIRECT, count: ['forward_tunnel', 'egress'], out: routedOut },
    { name: 'to a remote pod routed directly: redirect_neigh out of the uplink', prog: 'from_container',
      ipcache: [route('10.244.1.0/24', { flags: F.DIRECT })], node: devices, frame: fromA(REMOTE_POD),
      verdict: TC_ACT_REDIRECT, count: ['forward_direct', 'egress'], out: routedOut },
    { name: 'the longest prefix wins: a /32 routed directly inside a /24 through the overlay', prog: 'from_container',
      ipcache: [route('10.244.1.0/24', { flags: F.TUNNEL }), route(`${REMOTE_POD}/32`, { flags: F.DIRECT, tunnel_endpoint: OTHER_NODE })],
      node: devices, frame: fromA(REMOTE_POD), verdict: TC_ACT_REDIRECT, count: ['forward_direct', 'egress'], out: routedOut },
    { name: 'another address of the /24 still goes through the overlay', prog: 'from_container',
      ipcache: [route('10.244.1.0/24', { flags: F.TUNNEL }), route(`${REMOTE_POD}/32`, { flags: F.DIRECT, tunnel_endpoint: OTHER_NODE })],
      node: devices, frame: fromA('10.244.1.8'), verdict: TC_ACT_REDIRECT, count: ['forward_tunnel', 'egress'], out: routedOut },
    { name: 'overlay entry but no VXLAN device configured: dropped, counted', prog: 'from_container',
      ipcache: [route('10.244.1.0/24', { flags: F.TUNNEL })], node: { ...devices, vxlan_ifindex: 0 }, frame: fromA(REMOTE_POD),
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
    { name: 'from_netdev: VXLAN for the overlay device (UDP 8472 to the node), the stack', prog: 'from_netdev',
      frame: P.udpFrame({ srcMac: '02:00:00:00:00:02', dstMac: P.ZERO_MAC, src: REMOTE_NODE, dst: '198.18.0.1' }, 40000, 8472, Buffer.alloc(60)),
      verdict: TC_ACT_OK, count: null, out: 'unchanged' },
  ];

  for (const c of cases) {
    t.test(c.name, async (tt) => {
      const m = maps();
      m.endpoints.clear();
      for (const { ip, ...v } of [A, B]) m.endpoints.update({ ip }, v);
      m.ipcache.clear();
      for (const [k, v] of c.ipcache ?? []) m.ipcache.update(k, v);
      m.node.update(0, { ...devices, ...c.node });
      m.metrics.clear();
      const prog = { from_container: fc, from_overlay: fo, from_netdev: fn }[c.prog].program(c.prog);
      const res = h.run(prog, c.frame);
      if (!res) throw new Error('the kernel refused the frame');
      tt.equal(res.retval, c.verdict, 'verdict');
      const want: Counters = c.count ? { [`${c.count[0]}/${c.count[1]}`]: { packets: 1, bytes: c.frame.length } } : {};
      tt.same(h.counters(m.metrics), want, c.count ? `counted once as ${c.count[0]}` : 'no counter moved');
      if (c.out === 'unchanged') tt.equal(res.data.toString('hex'), c.frame.toString('hex'), 'frame unchanged');
      else if (c.out) c.out(tt, res.data, c.frame);
    });
  }

  t.test('bpftool dumps sl_ipcache and sl_node with field names', async (tt) => {
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
  });
}
