/**
 * The overlay's trust boundary, end to end, as an attacker on the underlay would try it.
 * Pod t/b (on e2) admits only app=a (pod a, on e1). Forged VXLAN to e2's overlay port carries
 * an ICMP echo to b with a's identity as VNI, so policy alone would let it in:
 *   - from the lab's underlay namespace (not a node: it hosts etcd) and from a host outside
 *     the cluster behind the router: dropped as drop_tunnel_source;
 *   - from node e1 with an inner source e1 does not own (no pod at all, or w1's pod c):
 *     dropped as drop_tunnel_inner_source;
 *   - the same datagram from e1 with a's own address inside is delivered (the control: the
 *     forged packets are ones policy admits, and b answers echoes);
 * in vxlan, hybrid and direct mode alike. Where e1 and e2 route directly (hybrid, direct), a
 * packet routed to b from a's address but not from e1's MAC is dropped as drop_node_mac.
 * Once, in vxlan mode, the overlay device's path: a stranger's VXLAN to a second address of
 * e2 (which from_netdev leaves to the kernel) and a node's fragmented VXLAN (reassembled by
 * the stack; its inner packet is larger than b's MTU, so there is no delivered twin of it)
 * meet the same checks in from_overlay.
 * "Delivered" is read in b's own network stack (Icmp InEchos), not from sluice's counters.
 * The drops show in `sluice monitor` (with the sender's address) and the agent's metrics.
 */
import t, { type Test } from 'tap';
import { basename, join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { IS_ROOT, SLUICE_BIN, mustSh, tempDir, uniquePrefix } from '../helpers/env.js';
import { inNs, labStatus, labUp, monitor, must, nodeCli, reasonPackets } from '../helpers/lab.js';
import * as P from '../helpers/packets.js';
import type { LabStatus } from '../../src/lab/status.js';

if (!IS_ROOT) {
  t.plan(0, 'needs root');
  process.exit(0);
}
t.setTimeout(900_000);

type Pod = LabStatus['pods'][number];
type Node = LabStatus['nodes'][number];
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const FORGED = '10.99.99.99';
const BURST = 5;

const packets = reasonPackets;

/** ICMP echo requests pod `p`'s own stack received. */
function echoesIn(p: Pod): number {
  const lines = inNs(p.netns, 'cat', ['/proc/net/snmp']).stdout.split('\n').filter((l) => l.startsWith('Icmp:'));
  const h = lines[0]!.split(/\s+/);
  return Number(lines[1]!.split(/\s+/)[h.indexOf('InEchos')]);
}

/** Sends `count` UDP datagrams with `payload` from inside `ns` to dst:8472. */
function sendUdp(tt: Test, ns: string, dst: string, payload: Buffer, count = BURST): void {
  const js = `const s=require('dgram').createSocket('udp4');const b=Buffer.from(process.argv[1],'hex');let n=${count};` +
    `const go=()=>s.send(b,8472,process.argv[2],(e)=>{if(e){console.error(e.message);process.exit(1)}if(--n>0)setTimeout(go,20);else s.close()});go()`;
  const r = inNs(ns, process.execPath, ['-e', js, payload.toString('hex'), dst]);
  tt.equal(r.status, 0, `sent ${count} datagrams to ${dst}:8472 from ${basename(ns)} ${r.stderr}`);
}

/** VXLAN (VNI `vni`) around an ICMP echo from `src` to pod `to`, padded to `pad` bytes of echo data. */
const forged = (vni: number, src: string, to: Pod, pad = 32) =>
  P.vxlan({ vni }, P.icmpFrame({ srcMac: '02:00:00:00:00:aa', dstMac: '02:00:00:00:00:bb', src, dst: to.ip!, ttl: 63 }, Buffer.alloc(pad, 0x5a), { id: 0x4242, seq: 1 }));

/** Waits until `reason` on `n` moved by `by` from `from` (or 5 s passed); returns how far it moved. */
async function moved(n: Node, reason: string, from: number, by: number): Promise<number> {
  let now = packets(n, reason);
  for (let i = 0; i < 25 && now - from < by; i++) {
    await sleep(200);
    now = packets(n, reason);
  }
  return now - from;
}

t.test('forged VXLAN and forged routed packets do not reach a pod, in every mode', async (tt) => {
  const lab = uniquePrefix('tr');
  const dir = tempDir(tt, lab);
  const topo = join(dir, 'topology.yaml');
  writeFileSync(topo, [
    'mode: vxlan', 'store: etcd',
    'nodes: [{name: e1, subnet: east}, {name: e2, subnet: east}, {name: w1, subnet: west}]',
    'namespaces: [{name: t}]',
    'pods: [{name: a, namespace: t, node: e1, labels: {app: a}}, {name: b, namespace: t, node: e2, labels: {app: b}}, {name: c, namespace: t, node: w1, labels: {app: c}}]',
    'external: [{name: far, subnet: west}]', '',
  ].join('\n'));
  let { status: s } = labUp(tt, lab, ['-f', topo]);
  const node = (name: string) => s.nodes.find((n) => n.name === name)!;
  const pod = (name: string) => s.pods.find((p) => p.pod === name)!;
  const policy = join(dir, 'b.yaml');
  writeFileSync(policy, 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: b-from-a, namespace: t}\n' +
    'spec:\n  podSelector: {matchLabels: {app: b}}\n  ingress: [{from: [{podSelector: {matchLabels: {app: a}}}]}]\n');
  const applied = inNs(node('e1').netns, process.execPath, [SLUICE_BIN, '--config', node('e1').config, 'policy', 'apply', '-f', policy]);
  tt.equal(applied.status, 0, `policy applied ${applied.stderr}`);
  const identityA = nodeCli<{ ip: string; identity: number }[]>(node('e1'), ['bpf', 'endpoints']).find((e) => e.ip === pod('a').ip)!.identity;
  tt.ok(identityA > 3, `a's identity ${identityA}`);
  const underlay = s.underlay.netns;
  const outside = s.external.find((x) => x.name === 'far')!.netns;

  /** Sends `payload` from `ns` to e2 and checks that b's stack saw `delivered` echoes and e2 counted `reason`. */
  const attack = async (tt: Test, what: string, ns: string, payload: Buffer, reason: string | null, dst = node('e2').underlayIP) => {
    const [b, e2] = [pod('b'), node('e2')];
    const before = echoesIn(b);
    const r0 = reason ? packets(e2, reason) : 0;
    sendUdp(tt, ns, dst, payload);
    if (reason) {
      tt.equal(await moved(e2, reason, r0, BURST), BURST, `${what}: e2 counted all ${BURST} as ${reason}`);
      tt.equal(echoesIn(b) - before, 0, `${what}: b received none`);
    } else {
      for (let i = 0; i < 25 && echoesIn(b) - before < BURST; i++) await sleep(200);
      tt.equal(echoesIn(b) - before, BURST, `${what}: b received all ${BURST} (the control)`);
    }
  };

  for (const mode of ['vxlan', 'hybrid', 'direct'] as const) {
    await tt.test(`${mode} mode`, async (mt) => {
      if (mode !== 'vxlan') {
        must(['lab', 'restart', '--name', lab, '--mode', mode]);
        s = labStatus(lab);
      }
      mt.equal(inNs(pod('a').netns, 'ping', ['-n', '-c', '2', '-i', '0.2', '-W', '2', pod('b').ip!]).status, 0, 'a reaches b (policy admits it)');
      const toB = forged(identityA, FORGED, pod('b'));
      await attack(mt, 'from the underlay namespace (etcd\'s host)', underlay, toB, 'drop_tunnel_source');
      await attack(mt, 'from a host outside the cluster, through the router', outside, toB, 'drop_tunnel_source');
      await attack(mt, 'from node e1, a source that is no pod', node('e1').netns, toB, 'drop_tunnel_inner_source');
      await attack(mt, 'from node e1, the address of w1\'s pod c', node('e1').netns, forged(identityA, pod('c').ip!, pod('b')), 'drop_tunnel_inner_source');
      await attack(mt, 'from node e1, its own pod a\'s address', node('e1').netns, forged(identityA, pod('a').ip!, pod('b')), null);
      if (mode === 'vxlan') {
        // What an operator sees: the drop in `sluice monitor`, named, with who sent it, and in Prometheus.
        const events = await monitor(node('e2'), ['--type', 'drop', '-n', '1', '--timeout', '15'], () => sendUdp(mt, underlay, node('e2').underlayIP, toB, 1));
        mt.match(events, [{ type: 'drop', reason: 'drop_tunnel_source', src: { ip: s.underlay.etcd!.address }, dst: { ip: node('e2').underlayIP } }],
          'sluice monitor on e2: a drop_tunnel_source event from the underlay namespace\'s address to e2\'s');
        const prom = inNs(node('e2').netns, 'curl', ['-s', 'http://127.0.0.1:9962/metrics']).stdout;
        const m = /^sluice_datapath_packets_total\{direction="ingress",reason="drop_tunnel_source"\} (\d+)$/m.exec(prom);
        mt.ok(m && Number(m[1]) >= 2 * BURST, `the agent's metrics count them: ${m?.[0]}`);
        mt.match(prom, /^sluice_datapath_packets_total\{direction="ingress",reason="drop_tunnel_inner_source"\} \d+$/m, 'and the inner-source drops');
        return;
      }
      // e1 and e2 route directly: the underlay namespace sends from a's address, with its own MAC.
      const ns = basename(underlay);
      mustSh('ip', ['-n', ns, 'addr', 'add', `${pod('a').ip}/32`, 'dev', 'lo']);
      mustSh('ip', ['-n', ns, 'route', 'add', node('e2').podCIDR!, 'via', node('e2').underlayIP]);
      try {
        const [b, e2] = [pod('b'), node('e2')];
        const before = echoesIn(b);
        const r0 = packets(e2, 'drop_node_mac');
        inNs(underlay, 'ping', ['-n', '-c', String(BURST), '-i', '0.2', '-W', '1', '-I', pod('a').ip!, b.ip!]);
        mt.equal(await moved(e2, 'drop_node_mac', r0, BURST), BURST, `a spoofed direct packet from a's address: e2 counted all ${BURST} as drop_node_mac`);
        mt.equal(echoesIn(b) - before, 0, 'and b received none');
      } finally {
        mustSh('ip', ['-n', ns, 'route', 'del', node('e2').podCIDR!]);
        mustSh('ip', ['-n', ns, 'addr', 'del', `${pod('a').ip}/32`, 'dev', 'lo']);
      }
      const nodes = nodeCli<{ address: string; node: string; mac: string }[]>(node('e2'), ['bpf', 'nodes']);
      const e1Mac = (JSON.parse(inNs(node('e1').netns, 'ip', ['-j', 'link', 'show', 'uplink0']).stdout) as { address: string }[])[0]!.address;
      mt.same(nodes.map((n) => [n.node, n.address, n.mac]), [['e1', node('e1').underlayIP, e1Mac], ['w1', node('w1').underlayIP, nodes.find((n) => n.node === 'w1')!.mac]],
        'sluice bpf nodes on e2: e1 and w1 by underlay address, e1 with its uplink MAC');
    });
  }

  await tt.test('the overlay device\'s path (from_overlay) checks the same', async (ot) => {
    must(['lab', 'restart', '--name', lab, '--mode', 'vxlan']);
    s = labStatus(lab);
    const e2 = node('e2');
    const second = e2.underlayIP.replace(/\.\d+$/, '.199');
    mustSh('nsenter', [`--net=${e2.netns}`, 'ip', 'addr', 'add', `${second}/24`, 'dev', 'uplink0']);
    try {
      const d0 = packets(e2, 'overlay_device');
      await attack(ot, 'a stranger\'s VXLAN to a second address of e2 (left to the kernel\'s device)', underlay, forged(identityA, FORGED, pod('b')), 'drop_tunnel_source', second);
      ot.ok(packets(e2, 'overlay_device') - d0 >= BURST, 'it went through the overlay device');
    } finally {
      mustSh('nsenter', [`--net=${e2.netns}`, 'ip', 'addr', 'del', `${second}/24`, 'dev', 'uplink0']);
    }
    const d0 = packets(e2, 'overlay_device');
    await attack(ot, 'a node\'s VXLAN in fragments (reassembled by the stack), a source that is no pod', node('e1').netns, forged(identityA, FORGED, pod('b'), 1800), 'drop_tunnel_inner_source');
    ot.ok(packets(e2, 'overlay_device') - d0 >= BURST, 'it went through the overlay device');
  });
});
