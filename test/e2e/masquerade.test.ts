/**
 * Masquerade end to end (issue 21): pods reach the lab's outside host `ext`, which has no
 * route to any pod block, and it sees only their nodes' addresses. Three nodes: e1 and e2
 * on subnet east with ext, w1 on west behind the router. In vxlan, hybrid and direct mode:
 * TCP (its content hashed), UDP and ping from a pod on every node. Once, in vxlan mode:
 * two pods of one node using the same source port to the same destination, both answered;
 * a large transfer; ICMP errors translated back (a closed UDP port refuses a connected
 * socket; TTL 2 from behind the router: the router's time exceeded reaches the pod); the
 * outside host's own packets to a node's masquerade port and to a pod address reach no
 * pod; `sluice bpf nat` lists the flows; the agent SIGKILLed during a transfer, which goes
 * on; no iptables or nftables rule on any node.
 */
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { basename, join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { IS_ROOT, tempDir, uniquePrefix } from '../helpers/env.js';
import { firewall } from '../helpers/firewall.js';
import { inNs, labStatus, labUp, must, nodeCli, reasonPackets } from '../helpers/lab.js';
import { ping, runIn, sha256, startServer, tcpSend, tcpSink, udpSend, udpSink } from '../helpers/traffic.js';
import type { LabStatus } from '../../src/lab/status.js';

if (!IS_ROOT) {
  t.plan(0, 'needs root');
  process.exit(0);
}
t.setTimeout(900_000);

type Pod = LabStatus['pods'][number];
type Node = LabStatus['nodes'][number];
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const ns = (netnsPath: string) => basename(netnsPath);

/** A UDP echo server on host:port: answers every datagram with "<from address>:<from port> <data>". */
const UDP_ECHO = `
const s = require('node:dgram').createSocket('udp4');
const [host, port] = process.argv.slice(1);
s.on('message', (m, r) => s.send(Buffer.from(r.address + ':' + r.port + ' ' + m), r.port, r.address));
s.bind(Number(port), host, () => process.stdout.write(JSON.stringify({ event: 'ready' }) + '\\n'));
`;

/** From a fixed source port, one datagram to host:port; prints the answer (or "timeout"). */
const UDP_ASK = `
const s = require('node:dgram').createSocket('udp4');
const [host, port, sport, text] = process.argv.slice(1);
const timer = setTimeout(() => { process.stdout.write('timeout'); process.exit(3); }, 3000);
s.on('message', (m) => { clearTimeout(timer); process.stdout.write(m.toString()); s.close(); });
s.bind(Number(sport), () => s.send(Buffer.from(text), Number(port), host));
`;

/** A connected UDP socket to a closed port: the ICMP port unreachable comes back as ECONNREFUSED. */
const UDP_REFUSED = `
const s = require('node:dgram').createSocket('udp4');
const [host, port] = process.argv.slice(1);
const timer = setTimeout(() => { process.stdout.write('no error'); process.exit(3); }, 3000);
s.on('error', (e) => { clearTimeout(timer); process.stdout.write(e.code); s.close(); });
s.connect(Number(port), host, () => { s.send('x'); setTimeout(() => s.send('y'), 300); });
`;

t.test('pods reach the outside host through their node\'s address, in every mode', async (tt) => {
  const lab = uniquePrefix('mq');
  const dir = tempDir(tt, lab);
  const topo = join(dir, 'topology.yaml');
  writeFileSync(topo, [
    'mode: vxlan', 'store: file',
    'nodes: [{name: e1, subnet: east}, {name: e2, subnet: east}, {name: w1, subnet: west}]',
    'pods: [{name: a, node: e1}, {name: d, node: e1}, {name: b, node: e2}, {name: c, node: w1}]', '',
  ].join('\n'));
  let { status: s } = labUp(tt, lab, ['-f', topo]);
  const pod = (name: string) => s.pods.find((p) => p.pod === name)!;
  const nodeOf = (p: Pod): Node => s.nodes.find((n) => n.name === p.node)!;
  const ext = s.external.find((x) => x.name === 'ext')!;
  const fw0 = new Map(s.nodes.map((n) => [n.name, firewall(n.netns)]));

  const tcp = await tcpSink(tt, ns(ext.netns), ext.ip, 8080);
  const udp = await udpSink(tt, ns(ext.netns), ext.ip, 8081);
  await startServer(tt, ns(ext.netns), UDP_ECHO, [ext.ip, '8082']);

  /** TCP, UDP and ping from `p` to ext: delivered, and seen from `p`'s node's address. */
  const reach = async (st: Test, p: Pod) => {
    const n = nodeOf(p);
    const data = randomBytes(256 << 10);
    const before = tcp.events.length;
    const r = await tcpSend(ns(p.netns), ext.ip, 8080, data);
    st.equal(r.status, 0, `${p.name}: TCP to ext ${r.stderr}`);
    await tcp.waitFor(() => tcp.events.slice(before).some((e) => e.event === 'conn'), 10_000, `${p.name}'s connection at ext`);
    const conn = tcp.events.slice(before).find((e) => e.event === 'conn');
    st.match(conn, { remote: n.underlayIP, bytes: data.length, sha256: sha256(data) }, `${p.name}: ext got every byte, from ${n.name}'s address ${n.underlayIP}`);
    const u0 = udp.events.length;
    const msg = `from ${p.name} ${Date.now()}`;
    st.equal((await udpSend(ns(p.netns), ext.ip, 8081, [msg])).status, 0, `${p.name}: UDP sent`);
    await udp.waitFor(() => udp.events.slice(u0).some((e) => e.data === msg), 10_000, `${p.name}'s datagram at ext`);
    st.match(udp.events.slice(u0).find((e) => e.data === msg), { from: n.underlayIP }, `${p.name}: the datagram came from ${n.underlayIP}`);
    st.equal((await ping(ns(p.netns), ext.ip)).status, 0, `${p.name}: ping to ext answered`);
  };

  for (const mode of ['vxlan', 'hybrid', 'direct'] as const) {
    await tt.test(`${mode} mode`, async (mt) => {
      if (mode !== 'vxlan') {
        must(['lab', 'restart', '--name', lab, '--mode', mode]);
        s = labStatus(lab);
      }
      const count = (reason: string) => new Map(s.nodes.map((n) => [n.name, reasonPackets(n, reason)]));
      const [masq0, routed0] = [count('masquerade'), count('forward_world')];
      for (const p of [pod('a'), pod('b'), pod('c')]) await reach(mt, p);
      const [masq1, routed1] = [count('masquerade'), count('forward_world')];
      for (const n of s.nodes) {
        mt.ok(masq1.get(n.name)! > masq0.get(n.name)!, `${n.name} counted masqueraded packets`);
        mt.ok(routed1.get(n.name)! > routed0.get(n.name)!, `${n.name} routed them out of the uplink in BPF (forward_world), not through its stack`);
      }
    });
  }
  must(['lab', 'restart', '--name', lab, '--mode', 'vxlan']);
  s = labStatus(lab);

  await tt.test('two pods, one source port, one destination: both answered', async (st) => {
    const [a, d] = [pod('a'), pod('d')];
    const [ra, rd] = await Promise.all([a, d].map((p) => runIn(ns(p.netns), process.execPath, ['-e', UDP_ASK, ext.ip, '8082', '40000', p.pod])));
    const e1 = nodeOf(a).underlayIP;
    st.match(ra!.stdout, new RegExp(`^${e1.replace(/\./g, '\\.')}:(\\d+) a$`), `a answered, seen as ${e1}: ${ra!.stdout}`);
    st.match(rd!.stdout, new RegExp(`^${e1.replace(/\./g, '\\.')}:(\\d+) d$`), `d answered, seen as ${e1}: ${rd!.stdout}`);
    const port = (out: string) => out.split(' ')[0]!.split(':')[1];
    st.not(port(ra!.stdout), port(rd!.stdout), 'on two different node ports');
  });

  await tt.test('a large transfer, and one that goes on while the agent is SIGKILLed', async (st) => {
    const a = pod('a');
    // Counted and hashed by ext's own sink: iperf3's sum_received is the server's count when
    // the client stopped, which can lag behind what arrives.
    const big = randomBytes(64 << 20);
    const b0 = tcp.events.length;
    const sent = await tcpSend(ns(a.netns), ext.ip, 8080, big, { timeoutMs: 60_000 });
    st.equal(sent.status, 0, `64 MiB from a to ext ${sent.stderr}`);
    await tcp.waitFor(() => tcp.events.slice(b0).some((e) => e.event === 'conn'), 30_000, 'the large transfer at ext');
    st.match(tcp.events.slice(b0).find((e) => e.event === 'conn'), { remote: nodeOf(a).underlayIP, bytes: big.length, sha256: sha256(big) },
      'ext received all 64 MiB, byte for byte, from a\'s node');

    st.equal(inNs(ext.netns, 'iperf3', ['-s', '-D', '-1', '-B', ext.ip, '-p', '5402']).status, 0, 'a second iperf3 server');
    const e1 = nodeOf(a);
    const { spawn } = await import('node:child_process');
    const long = spawn('nsenter', [`--net=${a.netns}`, 'iperf3', '-c', ext.ip, '-p', '5402', '-t', '6', '-J'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    long.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    const done = new Promise<number | null>((r) => long.once('exit', (code) => r(code)));
    await sleep(2000);
    process.kill(e1.agent.pid!, 'SIGKILL');
    const code = await done;
    st.equal(code, 0, 'the transfer finished with the agent dead');
    const lj = JSON.parse(out || '{}') as { end?: { sum_received?: { bytes: number } }; intervals?: { sum: { bytes: number } }[] };
    const late = (lj.intervals ?? []).slice(3).map((i) => i.sum.bytes);
    st.ok(late.length >= 2 && late.every((b) => b > 0), `bytes kept flowing after the kill (last intervals: ${late.join(', ')})`);
    must(['lab', 'restart', '--name', lab, e1.name]);
    s = labStatus(lab);
    await reach(st, a);
  });

  await tt.test('ICMP errors about masqueraded flows come back translated', async (st) => {
    const a = pod('a');
    const r = await runIn(ns(a.netns), process.execPath, ['-e', UDP_REFUSED, ext.ip, '9']);
    st.equal(r.stdout, 'ECONNREFUSED', 'a closed UDP port on ext: the port unreachable reached the pod\'s socket');
    const c = pod('c');
    const router = s.underlay.subnets.find((x) => x.name === 'west')!.router!;
    const tr = inNs(c.netns, 'ping', ['-n', '-c', '1', '-W', '2', '-t', '2', ext.ip]);
    st.match(tr.stdout, new RegExp(`From ${router.replace(/\./g, '\\.')}.*Time to live exceeded`), `TTL 2 from behind the router: the router's time exceeded reached c (${tr.stdout.split('\n')[1]})`);
  });

  await tt.test('nothing is opened inward', async (st) => {
    const a = pod('a');
    const e1 = nodeOf(a);
    // a's flow to ext:8082 from port 40000 leaves as e1:P; a datagram to e1:P from another port of ext is no reply.
    st.match((await runIn(ns(a.netns), process.execPath, ['-e', UDP_ASK, ext.ip, '8082', '40000', 'again'])).stdout, / again$/, 'a\'s flow from port 40000, answered');
    const rows = nodeCli<{ protocol: string; pod: string; node: string; remote: string }[]>(e1, ['bpf', 'nat']);
    st.ok(rows.some((r) => r.pod.startsWith(`${a.ip}:`) && r.node.startsWith(`${e1.underlayIP}:`) && r.remote.startsWith(`${ext.ip}:`)), 'sluice bpf nat lists a\'s flows to ext');
    const mapped = rows.find((r) => r.protocol === 'UDP' && r.pod === `${a.ip}:40000`);
    st.ok(mapped, 'a\'s UDP flow from port 40000');
    if (mapped) {
      const port = Number(mapped.node.split(':')[1]);
      const sink = await udpSink(st, ns(a.netns), '0.0.0.0', 40000);
      const js = `const s=require('node:dgram').createSocket('udp4');s.bind(41111,()=>s.send('in',${port},'${e1.underlayIP}',()=>s.close()))`;
      st.equal(inNs(ext.netns, process.execPath, ['-e', js]).status, 0, 'ext sent to the mapped node port from another port');
      await sleep(1000);
      st.notOk(sink.events.some((e) => e.event === 'msg'), 'and a received nothing');
    }
    st.notOk(inNs(ext.netns, 'ip', ['-4', 'route', 'show']).stdout.includes('10.244.'), 'ext has no route to any pod block');
    st.not((await tcpSend(ns(ext.netns), a.ip!, 8080, Buffer.from('x'), { timeoutMs: 2000 })).status, 0, 'ext cannot connect to a pod address');
  });

  for (const n of s.nodes) {
    tt.same(firewall(n.netns), fw0.get(n.name), `no iptables or nftables rule appeared on ${n.name}`);
  }
});
