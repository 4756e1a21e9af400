/**
 * Pods on different nodes, in the lab, with real traffic, in the three modes:
 *   vxlan   (2 nodes, one subnet): packets go through the overlay (forward_tunnel on the
 *           sender, from_overlay on the receiver), wrapped and unwrapped in BPF (the overlay
 *           device's counter, overlay_device, does not move); pods get uplink MTU - 50, and
 *           a large TCP transfer crosses without one IP fragment on the underlay; a pod's
 *           own VXLAN tunnel to another pod works too, its offloaded TCP through the overlay
 *           device (BPF declines to wrap a packet twice) and its ICMP through BPF;
 *   switch  the same lab switched to direct without recreating pods: same addresses,
 *           MTU raised, packets routed (forward_direct / from_netdev);
 *   hybrid  (3 nodes, two subnets and a router): direct inside the subnet, overlay across;
 *           switched to direct, the node behind the router is reported unreachable.
 */
import t, { type Test } from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IS_ROOT, tempDir, uniquePrefix } from '../helpers/env.js';
import { inNs, labStatus, labUp, must, nodeCli, reasonPackets } from '../helpers/lab.js';
import type { LabStatus } from '../../src/lab/status.js';

if (!IS_ROOT) {
  t.plan(0, 'needs root');
  process.exit(0);
}
t.setTimeout(900_000);

type Pod = LabStatus['pods'][number];
type Node = LabStatus['nodes'][number];

const packets = reasonPackets;

function ping(from: Pod, to: Pod, count = 3): boolean {
  return inNs(from.netns, 'ping', ['-n', '-c', String(count), '-i', '0.2', '-W', '2', to.ip!]).status === 0;
}

function mtu(p: Pod): number {
  return (JSON.parse(inNs(p.netns, 'ip', ['-j', 'link', 'show', 'eth0']).stdout) as { mtu: number }[])[0]!.mtu;
}

/** Ip counters of a namespace (fragmentation and reassembly included). */
function ipStats(netns: string): Record<string, number> {
  const lines = inNs(netns, 'cat', ['/proc/net/snmp']).stdout.split('\n').filter((l) => l.startsWith('Ip:'));
  const h = lines[0]!.split(/\s+/);
  const v = lines[1]!.split(/\s+/);
  return Object.fromEntries(h.map((k, i) => [k, Number(v[i])]));
}

function nodeOf(s: LabStatus, pod: Pod): Node {
  return s.nodes.find((n) => n.name === pod.node)!;
}

interface NodesAnswer { nodes: { name: string; path: string; reason?: string }[] }

/** Every pod on another node answers, and the sender's and receiver's counters moved the expected way. */
function crossNode(tt: Test, s: LabStatus, expect: (a: Pod, b: Pod) => 'tunnel' | 'direct'): void {
  for (const a of s.pods) {
    for (const b of s.pods) {
      if (a.node === b.node) continue;
      const path = expect(a, b);
      const [sent, recv] = path === 'tunnel' ? ['forward_tunnel', 'from_overlay'] : ['forward_direct', 'from_netdev'];
      const na = nodeOf(s, a);
      const nb = nodeOf(s, b);
      const s0 = packets(na, sent);
      const r0 = packets(nb, recv);
      const d0 = packets(na, 'overlay_device') + packets(nb, 'overlay_device');
      tt.ok(ping(a, b), `${a.name} on ${a.node} reaches ${b.name} on ${b.node} (${b.ip})`);
      tt.ok(packets(na, sent) - s0 >= 3, `${a.node} sent them ${path === 'tunnel' ? 'through the overlay' : 'directly'} (${sent})`);
      tt.ok(packets(nb, recv) - r0 >= 3, `${b.node} delivered them from the ${path === 'tunnel' ? 'overlay' : 'uplink'} (${recv})`);
      if (path === 'tunnel') tt.equal(packets(na, 'overlay_device') + packets(nb, 'overlay_device') - d0, 0, 'wrapped and unwrapped in BPF, not by the overlay device');
    }
  }
}

/**
 * A VXLAN tunnel of the pods' own (UDP 4789, VNI 42) between pods a and b: ICMP through it is
 * an ordinary UDP packet that BPF wraps; offloaded TCP through it arrives at from_container
 * already encapsulated (skb->encapsulation set), which bpf_skb_adjust_room will not wrap a
 * second time, so the overlay device sends it (overlay_device on a's node).
 */
function podTunnel(tt: Test, s: LabStatus, a: Pod, b: Pod): void {
  const inner = { [a.name]: '192.168.77.1', [b.name]: '192.168.77.2' };
  for (const [p, q] of [[a, b], [b, a]] as const) {
    for (const cmd of [
      ['link', 'add', 'pv0', 'mtu', '1350', 'type', 'vxlan', 'id', '42', 'remote', q.ip!, 'local', p.ip!, 'dstport', '4789', 'dev', 'eth0'],
      ['addr', 'add', `${inner[p.name]}/24`, 'dev', 'pv0'],
      ['link', 'set', 'pv0', 'up'],
    ]) {
      const r = inNs(p.netns, 'ip', cmd);
      tt.equal(r.status, 0, `${p.name}: ip ${cmd.join(' ')} ${r.stderr}`);
    }
  }
  const na = nodeOf(s, a);
  const d0 = packets(na, 'overlay_device');
  tt.equal(inNs(a.netns, 'ping', ['-n', '-c', '3', '-i', '0.2', '-W', '2', inner[b.name]!]).status, 0, 'ICMP through the pods\' own tunnel');
  tt.equal(packets(na, 'overlay_device') - d0, 0, 'its packets (VXLAN in VXLAN, no offload) wrapped in BPF');
  const server = inNs(b.netns, 'iperf3', ['-s', '-D', '-1', '-B', inner[b.name]!, '-p', '5302']);
  tt.equal(server.status, 0, 'iperf3 server on the pod tunnel');
  const c = inNs(a.netns, 'iperf3', ['-c', inner[b.name]!, '-p', '5302', '-n', '8M', '-J']);
  tt.equal(c.status, 0, `iperf3 through the pods' own tunnel: ${c.stderr}`);
  const j = JSON.parse(c.stdout || '{}') as { end?: { sum_sent?: { bytes: number } } };
  tt.ok((j.end?.sum_sent?.bytes ?? 0) >= 8 << 20, `${j.end?.sum_sent?.bytes} bytes through the pods' own tunnel`);
  tt.ok(packets(na, 'overlay_device') - d0 > 0, `its offloaded TCP went through the overlay device (${packets(na, 'overlay_device') - d0} packets)`);
  for (const p of [a, b]) inNs(p.netns, 'ip', ['link', 'del', 'pv0']);
}

t.test('vxlan across two nodes, then switched to direct without recreating pods', async (tt) => {
  const lab = uniquePrefix('mn');
  let { status: s } = labUp(tt, lab, ['--nodes', '2', '--pods-per-node', '1', '--mode', 'vxlan']);
  const [a, b] = [s.pods.find((p) => p.node === s.nodes[0]!.name)!, s.pods.find((p) => p.node === s.nodes[1]!.name)!];

  crossNode(tt, s, () => 'tunnel');
  tt.same([mtu(a), mtu(b)], [1450, 1450], 'pods get the uplink MTU less the VXLAN overhead');
  const nl = nodeCli<NodesAnswer>(s.nodes[0]!, ['node', 'list']);
  tt.same(nl.nodes.map((n) => [n.name, n.path]).sort(), [[s.nodes[0]!.name, 'local'], [s.nodes[1]!.name, 'tunnel']].sort());

  // A large TCP transfer: not one fragment on either node.
  const [fa, fb] = [ipStats(s.nodes[0]!.netns), ipStats(s.nodes[1]!.netns)];
  const server = inNs(b.netns, 'iperf3', ['-s', '-D', '-1', '-B', b.ip!, '-p', '5301']);
  tt.equal(server.status, 0, 'iperf3 server started');
  const c = inNs(a.netns, 'iperf3', ['-c', b.ip!, '-p', '5301', '-n', '64M', '-J']);
  tt.equal(c.status, 0, `iperf3 transfer: ${c.stderr}`);
  const j = JSON.parse(c.stdout || '{}') as { end?: { sum_sent?: { bytes: number }; sum_received?: { bytes: number } } };
  tt.ok((j.end?.sum_sent?.bytes ?? 0) >= 64 << 20, `${j.end?.sum_sent?.bytes} bytes sent (${j.end?.sum_received?.bytes} counted by the receiver)`);
  const [ga, gb] = [ipStats(s.nodes[0]!.netns), ipStats(s.nodes[1]!.netns)];
  tt.same([ga.FragCreates! - fa.FragCreates!, ga.FragFails! - fa.FragFails!, gb.ReasmReqds! - fb.ReasmReqds!], [0, 0, 0],
    'no fragment created or reassembled on the underlay');
  tt.same([packets(s.nodes[0]!, 'overlay_device'), packets(s.nodes[1]!, 'overlay_device')], [0, 0],
    'every packet so far, 64 KiB GSO ones included, wrapped and unwrapped in BPF');
  podTunnel(tt, s, a, b);

  // Switch the running cluster to direct.
  const before = s.pods.map((p) => [p.name, p.ip]);
  must(['lab', 'restart', '--name', lab, '--mode', 'direct']);
  s = labStatus(lab);
  tt.same(s.pods.map((p) => [p.name, p.ip]), before, 'the same pods with the same addresses');
  tt.same([mtu(a), mtu(b)], [1500, 1500], 'pods now get the full uplink MTU');
  crossNode(tt, s, () => 'direct');
  const ipc = nodeCli<{ prefix: string; path: string }[]>(s.nodes[0]!, ['bpf', 'ipcache']);
  tt.ok(ipc.some((e) => e.prefix === s.nodes[1]!.podCIDR), "the peer's block is in the ipcache");
  const peerNet = s.nodes[1]!.podCIDR!.replace(/\.0\/24$/, '.');
  tt.same([...new Set(ipc.filter((e) => e.prefix.startsWith(peerNet)).map((e) => e.path))], ['direct'], 'its entries (the block and its pods) all say direct');
  const routes = inNs(s.nodes[0]!.netns, 'ip', ['route', 'show', 'proto', '210']).stdout;
  tt.match(routes, new RegExp(`via ${s.nodes[1]!.underlayIP.replace(/\./g, '\\.')} dev uplink0`), 'the kernel route to the peer block is direct too');
  tt.notMatch(routes, /encap/, 'no overlay route left');
});

t.test('hybrid: direct inside a subnet, overlay across the router; direct mode reports the node it cannot reach', async (tt) => {
  const lab = uniquePrefix('hy');
  const dir = tempDir(tt, lab);
  const topo = join(dir, 'topology.yaml');
  writeFileSync(topo, [
    'mode: hybrid', 'store: file',
    'nodes: [{name: e1, subnet: east}, {name: e2, subnet: east}, {name: w1, subnet: west}]',
    'pods: [{name: a, node: e1}, {name: b, node: e2}, {name: c, node: w1}]', '',
  ].join('\n'));
  let { status: s } = labUp(tt, lab, ['-f', topo]);
  const subnet = (pod: Pod) => (pod.node === 'w1' ? 'west' : 'east');
  crossNode(tt, s, (x, y) => (subnet(x) === subnet(y) ? 'direct' : 'tunnel'));
  const e1 = s.nodes.find((n) => n.name === 'e1')!;
  tt.same(nodeCli<NodesAnswer>(e1, ['node', 'list']).nodes.map((n) => [n.name, n.path]).sort(),
    [['e1', 'local'], ['e2', 'direct'], ['w1', 'tunnel']]);

  must(['lab', 'restart', '--name', lab, '--mode', 'direct']);
  s = labStatus(lab);
  const list = nodeCli<NodesAnswer>(s.nodes.find((n) => n.name === 'e1')!, ['node', 'list']);
  const w1 = list.nodes.find((n) => n.name === 'w1')!;
  tt.equal(w1.path, 'unreachable', 'w1, behind the router, cannot be reached directly');
  tt.match(w1.reason, /direct mode needs the nodes on one L2 segment: 198\.18\.\d+\.\d+ is outside this node's subnet 198\.18\.\d+\.0\/24 \(use mode hybrid or vxlan\)/);
  const [a, b] = [s.pods.find((p) => p.node === 'e1')!, s.pods.find((p) => p.node === 'e2')!];
  tt.ok(ping(a, b), 'pods in the same subnet still talk');
});
