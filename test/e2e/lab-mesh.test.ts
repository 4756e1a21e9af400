/**
 * Every mode on a 3-node lab with 2 pods per node, as the issue asks:
 *   - a full mesh between pods on different nodes over ICMP, TCP (content checked) and UDP;
 *   - tcpdump on the underlay bridges: VXLAN (UDP 8472 between node addresses) exactly where
 *     the mode says, bare pod-to-pod IP everywhere else;
 *   - a node leaving (`node reset`) and rejoining: the others drop and restore its routes;
 *   - a prefiltered source (denied from another node's CLI, cluster-wide through the store)
 *     is dropped at XDP on the receiving node;
 *   - no iptables or nftables rule appears anywhere.
 * vxlan and direct use one subnet; hybrid puts the third node behind a router.
 */
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IS_ROOT, SLUICE_BIN, netns, sh, tempDir, uniquePrefix } from '../helpers/env.js';
import { firewall } from '../helpers/firewall.js';
import { inNs, labStatus, labUp, must } from '../helpers/lab.js';
import { sha256, tcpSend, tcpSink, udpSend, udpSink } from '../helpers/traffic.js';
import type { LabStatus } from '../../src/lab/status.js';

if (!IS_ROOT) {
  t.plan(0, 'needs root');
  process.exit(0);
}
t.setTimeout(1_200_000);

type Pod = LabStatus['pods'][number];
type Node = LabStatus['nodes'][number];
type Mode = 'vxlan' | 'direct' | 'hybrid';

const netnsName = (path: string) => path.replace(/^\/run\/netns\//, '');

function nodeCli(n: Node, args: readonly string[]): string {
  const r = inNs(n.netns, process.execPath, [SLUICE_BIN, '--config', n.config, ...args]);
  if (r.status !== 0) throw new Error(`sluice ${args.join(' ')} on ${n.name} failed: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

function topology(dir: string, mode: Mode): string {
  const subnet = (n: number) => (mode === 'hybrid' && n === 3 ? 's2' : 's1');
  const file = join(dir, `${mode}.yaml`);
  writeFileSync(file, [
    `mode: ${mode}`, 'store: file',
    `nodes: [${[1, 2, 3].map((n) => `{name: n${n}, subnet: ${subnet(n)}}`).join(', ')}]`,
    `pods: [${[1, 2, 3].flatMap((n) => ['a', 'b'].map((p) => `{name: ${p}${n}, node: n${n}}`)).join(', ')}]`, '',
  ].join('\n'));
  return file;
}

/** Which path packets between the nodes of `a` and `b` take in `mode`. */
function expectedPath(mode: Mode, a: Pod, b: Pod): 'tunnel' | 'direct' {
  if (mode === 'vxlan') return 'tunnel';
  if (mode === 'direct') return 'direct';
  return a.node === 'n3' || b.node === 'n3' ? 'tunnel' : 'direct';
}

async function mesh(tt: Test, s: LabStatus): Promise<void> {
  const pods = s.pods;
  for (const a of pods) {
    for (const b of pods) {
      if (a.node === b.node) continue;
      const r = inNs(a.netns, 'ping', ['-n', '-c', '1', '-W', '2', b.ip!]);
      tt.equal(r.status, 0, `ICMP ${a.name}@${a.node} -> ${b.name}@${b.node}`);
    }
  }
  for (const b of pods) {
    const tcp = await tcpSink(tt, netnsName(b.netns), b.ip!, 7001);
    const udp = await udpSink(tt, netnsName(b.netns), b.ip!, 7002);
    const senders = pods.filter((a) => a.node !== b.node);
    for (const a of senders) {
      const data = randomBytes(256 << 10);
      const r = await tcpSend(netnsName(a.netns), b.ip!, 7001, data);
      tt.equal(r.status, 0, `TCP ${a.name}@${a.node} -> ${b.name}@${b.node}: 256 KiB sent`);
      const u = await udpSend(netnsName(a.netns), b.ip!, 7002, [`from ${a.name}`]);
      tt.equal(u.status, 0, `UDP ${a.name}@${a.node} -> ${b.name}@${b.node} sent`);
      await tcp.waitFor(() => tcp.seen('conn').some((c) => c.remote === a.ip), 5000, `TCP from ${a.name}`).catch((e) => tt.fail(String(e)));
      tt.match(tcp.seen('conn').find((c) => c.remote === a.ip), { bytes: data.length, sha256: sha256(data) }, `TCP ${a.name} -> ${b.name}: the same bytes arrived`);
    }
    await udp.waitFor(() => udp.seen('msg').length >= senders.length, 5000, 'UDP datagrams').catch((e) => tt.fail(String(e)));
    tt.same(udp.seen('msg').map((m) => m.data).sort(), senders.map((a) => `from ${a.name}`).sort(), `UDP: every datagram reached ${b.name}, from its pod address`);
    tt.ok(udp.seen('msg').every((m) => senders.some((a) => a.ip === m.from)), 'datagrams came from the pods themselves (no NAT)');
    tcp.stop();
    udp.stop();
  }
}

/**
 * Captures on every port of the underlay bridges (`-i any` in the underlay namespace: a
 * capture on a bridge device itself sees only frames for the bridge, not those it forwards)
 * while `during` runs; returns tcpdump's text lines.
 */
async function capture(s: LabStatus, during: () => void): Promise<string[]> {
  const file = join(s.dir, 'underlay.pcap');
  const p = spawn('nsenter', [`--net=${s.underlay.netns}`, 'tcpdump', '-i', 'any', '-n', '-U', '--immediate-mode', '-w', file, 'ip'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  for (let i = 0; i < 200 && !err.includes('listening on'); i++) await new Promise((r) => setTimeout(r, 50));
  if (!err.includes('listening on')) throw new Error(`tcpdump did not start listening in 10 s: ${err}`);
  during();
  await new Promise((r) => setTimeout(r, 500));
  p.kill('SIGINT');
  await new Promise((r) => (p.exitCode !== null ? r(null) : p.once('exit', r)));
  const r = sh('tcpdump', ['-n', '-r', file]);
  if (r.status !== 0) throw new Error(`tcpdump -r ${file}: ${r.stderr}; the capture said: ${err}`);
  return r.stdout.split('\n').filter(Boolean);
}

for (const mode of (['vxlan', 'direct', 'hybrid'] as const).filter((m) => !process.env.SLUICE_TEST_MODES || process.env.SLUICE_TEST_MODES.split(',').includes(m))) {
  t.test(`mode ${mode}: 3 nodes x 2 pods`, async (tt) => {
    const lab = uniquePrefix(mode.slice(0, 2));
    const dir = tempDir(tt, lab);
    const fwBefore = firewall(null);
    let { status: s } = labUp(tt, lab, ['-f', topology(dir, mode)]);
    const node = (name: string) => s.nodes.find((n) => n.name === name)!;

    await tt.test('full mesh over ICMP, TCP and UDP', (t2) => mesh(t2, s));

    tt.test('the underlay carries VXLAN exactly where the mode says', async (t2) => {
      const a = s.pods.find((p) => p.node === 'n1')!;
      const targets = s.pods.filter((p) => p.node !== 'n1' && p.name.startsWith('default/a'));
      const lines = await capture(s, () => {
        for (const b of targets) inNs(a.netns, 'ping', ['-n', '-c', '2', '-i', '0.2', '-W', '2', b.ip!]);
      });
      for (const b of targets) {
        const peer = node(b.node).underlayIP;
        const vxlan = lines.filter((l) => l.includes(`${node('n1').underlayIP}.`) && l.includes(`${peer}.8472`) && /UDP|VXLAN|otv/i.test(l));
        // A packet's own line starts with a timestamp; the inner header of a VXLAN packet is printed on the next line without one.
        const bare = lines.filter((l) => /^\d\d:\d\d:\d\d\.\d+ /.test(l) && l.includes(`IP ${a.ip} > ${b.ip}: ICMP`));
        if (expectedPath(mode, a, b) === 'tunnel') {
          t2.ok(vxlan.length >= 2, `n1 -> ${b.node}: VXLAN packets on the underlay (${vxlan.length})`);
          t2.equal(bare.length, 0, `n1 -> ${b.node}: no bare pod-to-pod IP on the underlay`);
        } else {
          t2.ok(bare.length >= 2, `n1 -> ${b.node}: bare pod-to-pod ICMP on the underlay (${bare.length})`);
          t2.equal(vxlan.length, 0, `n1 -> ${b.node}: no VXLAN`);
        }
      }
    });

    tt.test('a node leaving and rejoining updates the others', async (t2) => {
      const n1 = node('n1');
      const n3 = node('n3');
      const ipcache = () => JSON.parse(nodeCli(n1, ['bpf', 'ipcache', '-o', 'json'])) as { prefix: string }[];
      const routes = () => inNs(n1.netns, 'ip', ['route', 'show', 'proto', '210']).stdout;
      const block = n3.podCIDR!;
      t2.ok(ipcache().some((e) => e.prefix === block), `n1 has n3's block ${block}`);
      // n3 leaves: its agent stops, then `node reset` releases its block and record.
      process.kill(n3.agent.pid!, 'SIGTERM');
      const running = () => {
        try {
          return readFileSync(`/proc/${n3.agent.pid}/stat`, 'utf8').split(' ')[2] !== 'Z';
        } catch {
          return false;
        }
      };
      for (let i = 0; i < 100 && running(); i++) await new Promise((r) => setTimeout(r, 100));
      t2.notOk(running(), "n3's agent stopped");
      nodeCli(n3, ['node', 'reset']);
      let gone = false;
      for (let i = 0; i < 50 && !gone; i++) {
        await new Promise((r) => setTimeout(r, 200));
        gone = !ipcache().some((e) => e.prefix === block) && !routes().includes(block.split('/')[0]!);
      }
      t2.ok(gone, 'n1 dropped the ipcache entry and the kernel route of the node that left');
      // n3 rejoins: its agent starts again, claims a block, and n1 learns it.
      must(['lab', 'restart', '--name', lab, 'n3']);
      s = labStatus(lab);
      const back = s.nodes.find((n) => n.name === 'n3')!.podCIDR!;
      let seen = false;
      for (let i = 0; i < 50 && !seen; i++) {
        await new Promise((r) => setTimeout(r, 200));
        seen = ipcache().some((e) => e.prefix === back);
      }
      t2.ok(seen, `n1 learned the rejoined node's block ${back}`);
      const newPod = netns(tt, `${lab}-n3-new`);
      const ep = JSON.parse(nodeCli(node('n3'), ['endpoint', 'add', '--netns', `/run/netns/${newPod}`, '--name', 'default/new', '-o', 'json'])) as { ip: string };
      const a = s.pods.find((p) => p.node === 'n1')!;
      t2.equal(inNs(a.netns, 'ping', ['-n', '-c', '2', '-W', '2', ep.ip]).status, 0, `a pod on n1 reaches a new pod on the rejoined n3 (${ep.ip})`);
    });

    tt.test('a source denied from another node is dropped at XDP on the receiver', async (t2) => {
      const [n1, n2] = [node('n1'), node('n2')];
      const a = s.pods.find((p) => p.node === 'n1')!;
      const b = s.pods.find((p) => p.node === 'n2')!;
      t2.equal(inNs(a.netns, 'ping', ['-n', '-c', '1', '-W', '2', b.ip!]).status, 0, 'reachable before');
      // Overlay and direct packets from n1 both come from n1's underlay address or its pods' addresses.
      const src = expectedPath(mode, a, b) === 'tunnel' ? `${n1.underlayIP}/32` : `${a.ip}/32`;
      nodeCli(node('n3'), ['prefilter', 'add', src]);
      let dropped = false;
      for (let i = 0; i < 30 && !dropped; i++) {
        await new Promise((r) => setTimeout(r, 200));
        dropped = inNs(a.netns, 'ping', ['-n', '-c', '1', '-W', '1', b.ip!]).status !== 0;
      }
      t2.ok(dropped, `after \`prefilter add ${src}\` on n3, n2 drops n1's packets`);
      const list = JSON.parse(nodeCli(n2, ['prefilter', 'list', '-o', 'json'])) as { attachment: { device: string } | null; entries: { cidr: string; packets: number }[] };
      t2.match(list.attachment, { device: 'uplink0' }, 'n2 attached xdp_prefilter to its uplink');
      t2.ok((list.entries.find((e) => e.cidr === src)?.packets ?? 0) >= 1, `n2 counted the drops under ${src}`);
      nodeCli(n2, ['prefilter', 'del', src]);
      let back = false;
      for (let i = 0; i < 30 && !back; i++) {
        await new Promise((r) => setTimeout(r, 200));
        back = inNs(a.netns, 'ping', ['-n', '-c', '1', '-W', '1', b.ip!]).status === 0;
      }
      t2.ok(back, 'reachable again after del');
    });

    tt.test('no iptables or nftables rule appeared anywhere', async (t2) => {
      t2.same(firewall(null), fwBefore, "the test's own (root) namespace unchanged");
      for (const n of s.nodes) {
        const fw = firewall(n.netns);
        t2.equal(fw.iptables.replace(/\*\w+\n(:\S+ \S+ \[0:0\]\n)*COMMIT\n?/g, '').trim(), '', `${n.name}: no iptables rule`);
        t2.equal(fw.nft.trim(), '', `${n.name}: no nftables table`);
      }
    });
  });
}
