/**
 * NetworkPolicy end to end in a 2-node lab: pods on the same node and across the overlay
 * (identity in the VNI) and across direct routing (identity from the ipcache), a named
 * port, replies of allowed connections, namespace labels changed at run time, the verdict
 * counters, deleting the policy, and no iptables/nftables rule.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IS_ROOT, SLUICE_BIN, tempDir, uniquePrefix } from '../helpers/env.js';
import { firewall } from '../helpers/firewall.js';
import { inNs, labStatus, labUp, monitor, must } from '../helpers/lab.js';
import type { LabStatus } from '../../src/lab/status.js';
import type { NetworkPolicy } from '../../src/policy/types.js';
import * as P from '../helpers/packets.js';

if (!IS_ROOT) {
  t.plan(0, 'needs root');
  process.exit(0);
}
t.setTimeout(600_000);

type Node = LabStatus['nodes'][number];
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function cli(n: Node, args: readonly string[]): string {
  const r = inNs(n.netns, process.execPath, [SLUICE_BIN, '--config', n.config, ...args]);
  if (r.status !== 0) throw new Error(`sluice ${args.join(' ')} on ${n.name} failed: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** A TCP connection from `from` to ip:port that sends one line; true when it was accepted. */
function tcp(fromNetns: string, ip: string, port: number): boolean {
  return inNs(fromNetns, 'sh', ['-c', `echo hi | nc -w 2 -q 0 ${ip} ${port}`]).status === 0;
}

/** Polls `check` until it equals `want` (policy changes reach the datapath within a reconcile). */
async function eventually(check: () => boolean, want: boolean, ms = 15_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v === want || Date.now() > deadline) return v;
    await sleep(300);
  }
}

t.test('policy across nodes and on one node', async (tt) => {
  const lab = uniquePrefix('po');
  const dir = tempDir(tt, lab);
  const fw = firewall(null);
  const topo = join(dir, 'topo.yaml');
  writeFileSync(topo, `mode: vxlan
store: file
nodes: [{name: n1}, {name: n2}]
namespaces: [{name: shop, labels: {team: blue}}]
pods:
  - {name: web, namespace: shop, node: n1, labels: {app: web}, ports: [{name: http, port: 80}]}
  - {name: client, namespace: shop, node: n2, labels: {app: client}}
  - {name: other, namespace: shop, node: n1, labels: {app: other}}
`);
  let { status: s } = labUp(tt, lab, ['-f', topo]);
  const pod = (name: string) => s.pods.find((p) => p.name === `shop/${name}`)!;
  const [web, client, other] = [pod('web'), pod('client'), pod('other')];
  const n1 = s.nodes.find((n) => n.name === 'n1')!;
  // Listeners: web on 80 and 81, other on 90 (for the reply test).
  for (const [p, port] of [[web, 80], [web, 81], [other, 90]] as const) {
    const child = (await import('node:child_process')).spawn('nsenter', [`--net=${p.netns}`, 'nc', '-lk', '-p', String(port)], { stdio: 'ignore' });
    tt.teardown(() => { child.kill('SIGKILL'); });
  }
  await sleep(500);
  tt.ok(tcp(client.netns, web.ip!, 80) && tcp(other.netns, web.ip!, 80), 'before any policy everyone reaches web');

  const policy = join(dir, 'web.yaml');
  writeFileSync(policy, `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}, namespaceSelector: {matchLabels: {team: blue}}}]
    ports: [{port: http}]
`);
  tt.match(cli(n1, ['policy', 'apply', '-f', policy]), /networkpolicy shop\/web created/);
  // Exported from a cluster (kubectl get -o yaml keeps what was written): a CIDR with host bits
  // applies, with a warning naming the canonical form, and the stored policy holds the network.
  const exported = join(dir, 'exported.yaml');
  writeFileSync(exported, `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: exported, namespace: shop}
spec:
  podSelector: {matchLabels: {app: nothing}}
  egress:
  - to: [{ipBlock: {cidr: 198.51.100.7/24, except: [198.51.100.9/28]}}]
`);
  const applied = inNs(n1.netns, process.execPath, [SLUICE_BIN, '--config', n1.config, 'policy', 'apply', '-f', exported]);
  tt.equal(applied.status, 0, 'a policy with host bits in its CIDRs applies');
  tt.match(applied.stdout, /networkpolicy shop\/exported created/);
  tt.match(applied.stderr, /sluice: warning: .*exported\.yaml:7: document 1 \(shop\/exported\): spec\.egress\[0\]\.to\[0\]\.ipBlock\.cidr: '198\.51\.100\.7\/24' has host bits set: it is taken as 198\.51\.100\.0\/24/,
    'with a warning naming the file, line, field and the canonical form');
  tt.match(applied.stderr, /ipBlock\.except\[0\]: '198\.51\.100\.9\/28' has host bits set: it is taken as 198\.51\.100\.0\/28/, 'and one for the except');
  tt.same((JSON.parse(cli(n1, ['policy', 'get', 'shop/exported'])) as NetworkPolicy).spec.egress[0]!.to![0]!.ipBlock,
    { cidr: '198.51.100.0/24', except: ['198.51.100.0/28'] }, 'the stored policy holds the networks');
  cli(n1, ['policy', 'delete', 'shop/exported']);
  tt.equal(await eventually(() => tcp(other.netns, web.ip!, 80), false), false, 'other (same node) is denied on 80');
  tt.equal(await eventually(() => tcp(client.netns, web.ip!, 80), true), true, 'client (other node, overlay) is allowed on the named port http = 80');
  tt.equal(tcp(client.netns, web.ip!, 81), false, 'client is denied on 81 (not in the policy)');
  tt.not(inNs(other.netns, 'ping', ['-c', '1', '-W', '1', web.ip!]).status, 0, 'ICMP from other is denied too');
  // The maps as `sluice bpf policy|ct` show them: numbers named.
  const rows = JSON.parse(cli(n1, ['bpf', 'policy', '-o', 'json'])) as { endpoint: string; direction: string; peer: string; protocol: string; ports: string; verdict: string; policy: string }[];
  tt.ok(rows.some((r) => r.endpoint === 'shop/web' && r.direction === 'ingress' && r.peer === 'any' && r.verdict === 'deny' && r.policy === 'shop/web'), 'web is isolated for ingress by shop/web');
  tt.ok(rows.some((r) => r.endpoint === 'shop/web' && r.direction === 'ingress' && /app=client/.test(r.peer) && r.protocol === 'TCP' && r.ports === '80' && r.verdict === 'allow' && r.policy === 'shop/web'),
    'and allows the client identity (named by its labels) on TCP/80');
  tt.ok(rows.some((r) => r.endpoint === 'shop/other' && r.verdict === 'unisolated'), 'other is selected by no policy');
  const flows = JSON.parse(cli(n1, ['bpf', 'ct', '-o', 'json'])) as { protocol: string; src: string; dst: string; state: string; policy: string }[];
  tt.ok(flows.some((f) => f.protocol === 'TCP' && f.src.startsWith(`${client.ip}:`) && f.dst === `${web.ip}:80` && f.policy === 'shop/web'), 'conntrack holds the client\'s flow to web:80, allowed by shop/web');

  tt.ok(tcp(web.netns, other.ip!, 90), 'web may still open connections (egress is not isolated) and their replies come back');

  // Events: the denied connections show up in `sluice monitor`, naming the policy; a trace
  // of an allowed one while tracing is asked for, and tracing off again afterwards.
  const drops = await monitor(n1, ['--type', 'drop', '--pod', 'shop/web', '--timeout', '8'], () => {
    tcp(other.netns, web.ip!, 80);
    tcp(client.netns, web.ip!, 81);
  });
  tt.ok(drops.some((e) => e.reason === 'drop_policy_ingress' && e.policy === 'shop/web' && e.src.pod === 'shop/other' && e.dst.pod === 'shop/web' && e.dst.port === 80 && e.protocol === 'TCP'),
    'a drop event for other -> web:80 (same node) names the policy and both pods');
  tt.ok(drops.some((e) => e.reason === 'drop_policy_ingress' && e.policy === 'shop/web' && e.src.pod === 'shop/client' && e.dst.port === 81 && /app=client/.test(e.src.labels ?? '')),
    'a drop event for client -> web:81 (over the overlay) names the policy and the sender\'s identity labels');
  const traces = await monitor(n1, ['--type', 'trace,policy-verdict', '--pod', 'shop/web', '--timeout', '6'], () => {
    tcp(client.netns, web.ip!, 80);
  });
  tt.ok(traces.some((e) => e.type === 'policy-verdict' && e.policy === 'shop/web' && e.src.pod === 'shop/client'), 'the allowed connection is a policy verdict naming shop/web');
  tt.ok(traces.some((e) => e.type === 'trace' && e.dst.pod === 'shop/web' && /^from_overlay|^forward/.test(e.reason ?? '')), 'and its packets are traced');
  // bpftool -j prints raw bytes as key/value and, from BTF, the fields under "formatted".
  const monitorMap = () => (JSON.parse(inNs(n1.netns, 'bpftool', ['-j', 'map', 'dump', 'pinned', `${n1.pinRoot}/sl_monitor`]).stdout) as { formatted: { value: { trace: number; rate: number } } }[])[0]!.formatted.value;
  tt.equal(await eventually(() => monitorMap().trace === 0, true), true,
    `tracing is off again once the monitor is gone (bpftool shows sl_monitor by field name: ${JSON.stringify(monitorMap())})`);

  // A pod forging VXLAN to its node (VNI 1, the host identity policy trusts; inner: other ->
  // web TCP/80, which policy denies) is dropped before the node's VXLAN socket sees it.
  const count = (reason: string) => (JSON.parse(cli(n1, ['bpf', 'metrics', '-o', 'json'])) as { reason: string; packets: number }[])
    .filter((m) => m.reason === reason).reduce((a, m) => a + m.packets, 0);
  const overlayBefore = count('from_overlay');
  const inner = P.tcpFrame({ srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02', src: other.ip!, dst: web.ip! }, 40404, 80, Buffer.alloc(0), { flags: P.TCP_SYN });
  const vxlan = Buffer.concat([Buffer.from([0x08, 0, 0, 0, 0, 0, 1, 0]), inner]); // flags I, VNI 1
  const sent = inNs(other.netns, process.execPath, ['-e', `const s=require('dgram').createSocket('udp4');s.send(Buffer.from('${vxlan.toString('hex')}','hex'),8472,'${n1.underlayIP}',()=>s.close())`]);
  tt.equal(sent.status, 0, 'the forged packet was sent');
  tt.equal(await eventually(() => count('drop_tunnel_port') > 0, true), true, 'from_container drops it as drop_tunnel_port');
  tt.equal(count('from_overlay'), overlayBefore, 'and nothing came out of the overlay device');

  // Replacing the policy by an equivalent one (numeric port instead of the named one, two
  // rules instead of one): new connections opened all along never fail.
  const variant = join(dir, 'web-variant.yaml');
  writeFileSync(variant, `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}, namespaceSelector: {matchLabels: {team: blue}}}]
    ports: [{port: 80, protocol: TCP}]
  - from: [{podSelector: {matchLabels: {app: nobody}}}]
`);
  const { spawn } = await import('node:child_process');
  const applying = spawn('nsenter', [`--net=${n1.netns}`, process.execPath, SLUICE_BIN, '--config', n1.config, 'policy', 'apply', '-f', variant], { stdio: 'ignore' });
  const done = new Promise((r) => applying.once('exit', r));
  let tries = 0;
  let failures = 0;
  const until = Date.now() + 6000;
  while (Date.now() < until) {
    tries++;
    if (!tcp(client.netns, web.ip!, 80)) failures++;
  }
  await done;
  tt.equal(failures, 0, `no new connection failed while the policy was replaced (${tries} connections)`);
  tt.match(cli(n1, ['policy', 'get', 'shop/web']), /"port": 80/, 'the variant is in place');

  const metrics = JSON.parse(cli(n1, ['bpf', 'metrics', '-o', 'json'])) as { reason: string; packets: number }[];
  tt.ok(metrics.some((m) => m.reason === 'drop_policy_ingress' && m.packets > 0), 'drops counted as drop_policy_ingress');

  // Namespace labels at run time: the namespaceSelector stops matching, then matches again.
  cli(n1, ['namespace', 'label', 'shop', 'team-']);
  tt.equal(await eventually(() => tcp(client.netns, web.ip!, 80), false), false, 'shop loses team=blue: client denied');
  cli(s.nodes[1]!, ['namespace', 'label', 'shop', 'team=blue']);
  tt.equal(await eventually(() => tcp(client.netns, web.ip!, 80), true), true, 'team=blue again (set from the other node): client allowed');

  // Pod labels at run time: `other` takes the client's labels, gets its identity, and is let in.
  tt.match(cli(n1, ['endpoint', 'label', 'shop/other', 'app=client']), /endpoint shop\/other labeled: app=client/);
  tt.equal(await eventually(() => tcp(other.netns, web.ip!, 80), true), true, 'other relabelled app=client: allowed');
  cli(n1, ['endpoint', 'label', 'shop/other', 'app=other']);
  tt.equal(await eventually(() => tcp(other.netns, web.ip!, 80), false), false, 'and back to app=other: denied again');

  const denied = cli(n1, ['policy', 'explain', '--from', 'shop/other', '--to', 'shop/web', '--port', '80/TCP']);
  tt.match(denied, /shop\/web/, 'explain names the policy');
  tt.match(denied, /denied/i, 'explain says denied');
  const v = JSON.parse(cli(s.nodes[1]!, ['policy', 'explain', '--from', 'shop/client', '--to', 'shop/web', '--port', '80/TCP', '-o', 'json'])) as { allowed: boolean; ingress: { allowedBy: { policy: string; rule: number }[] } };
  tt.same([v.allowed, v.ingress.allowedBy], [true, [{ policy: 'shop/web', rule: 0 }]], 'explain -o json from another node: allowed by shop/web rule 0');

  // Direct routing: the identity comes from the ipcache instead of the VNI.
  must(['lab', 'restart', '--name', lab, '--mode', 'direct']);
  s = labStatus(lab);
  tt.equal(await eventually(() => tcp(client.netns, web.ip!, 80), true), true, 'direct mode: client allowed');
  tt.equal(await eventually(() => tcp(other.netns, web.ip!, 80), false), false, 'direct mode: other denied');

  tt.match(cli(n1, ['policy', 'delete', 'shop/web']), /networkpolicy shop\/web deleted/);
  tt.equal(await eventually(() => tcp(other.netns, web.ip!, 80), true), true, 'policy deleted: other reaches web again');
  tt.same(firewall(null), fw, 'no iptables/nftables change in the root namespace');
  for (const n of s.nodes) tt.equal(firewall(n.netns).nft.trim(), '', `${n.name}: no nftables table`);
});
