/**
 * The lab end to end, through the CLI as a user runs it: `lab up` with 2 nodes x 2 pods on
 * the file store, on etcd, and in hybrid mode (two subnets joined by a router); `lab
 * status -o json` (shape and values), each node's config working with the CLI inside the
 * node, `lab exec` (same-node ping, exit statuses), and `lab down` removing every network
 * namespace, pin directory, process and directory the lab made (twice is fine). Failed
 * ups leave nothing: a validation error before anything exists, an underlay overlapping
 * the root namespace, an agent that cannot start (a bad config value injected with
 * SLUICE_LAB_TEST_BAD_NODE) and a pool that runs out while pods are being added.
 *
 * Every pod reaches every pod on the other nodes (`assertCrossNodeReachability`), in each
 * of the three labs (vxlan on file, vxlan on etcd, hybrid across the router).
 *
 * Runs the compiled CLI (dist/): `npm run build` first. Lab names start with "slt".
 */
import t, { type Test } from 'tap';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IS_ROOT, SLUICE_BIN, sh, tempDir, uniquePrefix } from '../helpers/env.js';
import { downAtTeardown, inNs, labStatus, labUp, must, sluice } from '../helpers/lab.js';
import { HAVE_ETCD } from '../helpers/etcd.js';
import type { LabStatus } from '../../src/lab/status.js';

if (!IS_ROOT) {
  t.plan(0, 'needs root');
  process.exit(0);
}

t.setTimeout(600_000);
const LAB_ROOT = process.env.SLUICE_LAB_ROOT || '/var/lib/sluice-lab';
const prefix = uniquePrefix('lb');

/** Processes (zombies aside) whose command line mentions `needle`. */
function processesWith(needle: string): string[] {
  const found: string[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ').trim();
      if (cmd.includes(needle)) found.push(`${d}: ${cmd}`);
    } catch { /* gone */ }
  }
  return found;
}

function netnsOf(lab: string): string[] {
  const r = sh('ip', ['-j', 'netns', 'list']);
  const names = r.stdout.trim() ? (JSON.parse(r.stdout) as { name: string }[]).map((n) => n.name) : [];
  return names.filter((n) => n === lab || n.startsWith(`${lab}-`));
}

/** Nothing of lab `lab` exists: no namespace, pin directory, directory or process. */
function assertNothingLeft(tt: Test, lab: string, pids: number[] = []): void {
  tt.same(netnsOf(lab), [], `${lab}: no network namespace left`);
  tt.notOk(existsSync(`/sys/fs/bpf/${lab}`), `${lab}: no pin directory left`);
  tt.notOk(existsSync(join(LAB_ROOT, lab)), `${lab}: no lab directory left`);
  tt.same(processesWith(`${join(LAB_ROOT, lab)}/`), [], `${lab}: no process of the lab left`);
  for (const pid of pids) {
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch { /* gone */ }
    tt.equal(cmd, '', `pid ${pid} is gone (or a zombie)`);
  }
}

const ipNum = (ip: string) => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
function inCidr(ip: string, cidr: string): boolean {
  const [base, len] = cidr.split('/');
  const size = 2 ** (32 - Number(len));
  return Math.floor(ipNum(ip) / size) === Math.floor(ipNum(base!) / size);
}

/** Ping from pod `from` to `to` (inside the lab, with `lab exec`); true when a reply came. */
function podPing(lab: string, from: string, toIp: string): boolean {
  return sluice(['lab', 'exec', '--name', lab, from, '--', 'ping', '-c', '1', '-W', '2', toIp]).status === 0;
}

/** Every pod reaches every pod on another node. */
function assertCrossNodeReachability(tt: Test, s: LabStatus): void {
  for (const a of s.pods) {
    for (const b of s.pods) {
      if (a.node === b.node || !b.ip) continue;
      tt.ok(podPing(s.name, a.name, b.ip), `${a.name} (${a.node}) reaches ${b.name} (${b.node}, ${b.ip})`);
    }
  }
}

/** What every healthy 2 x 2 lab must show: the status's shape and values, configs, exec, same-node ping. */
function checkLab(tt: Test, s: LabStatus, want: { mode: string; store: string }): void {
  tt.equal(s.phase, 'up');
  tt.equal(s.mode, want.mode);
  tt.equal(s.store, want.store);
  tt.ok(Array.isArray(s.namespaces) && s.namespaces.some((n) => n.name === 'default'), 'namespaces listed');
  tt.equal(s.nodes.length, 2, 'two nodes');
  tt.equal(s.pods.length, 4, 'four pods');
  for (const n of s.nodes) {
    tt.match(n, { name: String, netns: String, config: String, underlayIP: String, podCIDR: String }, `node ${n.name}: the documented fields`);
    tt.ok(existsSync(n.netns), `node ${n.name}: netns ${n.netns} exists`);
    tt.ok(existsSync(n.config), `node ${n.name}: config ${n.config} exists`);
    tt.match(n.underlayIP, /^198\.1[89]\.\d+\.\d+$/, `node ${n.name}: underlay address in 198.18.0.0/15`);
    tt.match(n.podCIDR, /^10\.244\.\d+\.0\/24$/, `node ${n.name}: pod block from the agent`);
    tt.same(n.agent && { running: n.agent.running, ready: n.agent.ready }, { running: true, ready: true }, `node ${n.name}: agent running and ready`);
  }
  tt.equal(new Set(s.nodes.map((n) => n.podCIDR)).size, 2, 'distinct pod blocks');
  for (const p of s.pods) {
    tt.match(p, { name: `${p.namespace}/${p.pod}`, namespace: String, pod: String, node: String, netns: String, ip: String, labels: Object }, `pod ${p.name}: the documented fields`);
    const node = s.nodes.find((n) => n.name === p.node)!;
    tt.ok(node, `pod ${p.name}: on a node of the lab`);
    tt.ok(existsSync(p.netns), `pod ${p.name}: netns ${p.netns} exists`);
    tt.ok(inCidr(p.ip!, node.podCIDR!), `pod ${p.name}: ${p.ip} is inside ${node.name}'s ${node.podCIDR}`);
    const a = inNs(p.netns, 'ip', ['-j', '-4', 'addr', 'show', 'dev', 'eth0']);
    tt.match(a.stdout, `"local":"${p.ip}"`, `pod ${p.name}: eth0 has ${p.ip}`);
  }
  tt.equal(new Set(s.pods.map((p) => p.ip)).size, 4, 'distinct pod addresses');

  // Each node's config: the CLI inside the node's namespace acts on that node.
  for (const n of s.nodes) {
    const r = inNs(n.netns, process.execPath, [SLUICE_BIN, '--config', n.config, 'endpoint', 'list', '-o', 'json']);
    tt.equal(r.status, 0, `node ${n.name}: endpoint list with its config works`);
    const eps = JSON.parse(r.stdout || '[]') as { name: string; ip: string; labels: Record<string, string> }[];
    const mine = s.pods.filter((p) => p.node === n.name);
    tt.same(eps.map((e) => e.name).sort(), mine.map((p) => p.name).sort(), `node ${n.name}: lists exactly its pods`);
    for (const p of mine) tt.same(eps.find((e) => e.name === p.name)?.labels, p.labels, `pod ${p.name}: labels reached the agent`);
  }

  // exec: a same-node ping on every node (by NS/NAME one way, by NAME the other).
  for (const [i, n] of s.nodes.entries()) {
    const [a, b] = s.pods.filter((p) => p.node === n.name);
    if (i % 2 === 0) tt.ok(podPing(s.name, a!.name, b!.ip!), `${a!.name} pings ${b!.name} on ${n.name}`);
    else tt.ok(podPing(s.name, b!.pod, a!.ip!), `${b!.pod} (by name) pings ${a!.name} on ${n.name}`);
  }
}

/** `lab exec`'s details: exit statuses passed through, stdout, bad targets, --node. */
function checkExec(tt: Test, s: LabStatus): void {
  const p0 = s.pods[0]!;
  tt.equal(sluice(['lab', 'exec', '--name', s.name, p0.name, '--', 'sh', '-c', 'exit 3']).status, 3, 'exit status 3 passed through');
  const own = sluice(['lab', 'exec', '--name', s.name, p0.pod, '--', 'ip', '-j', '-4', 'addr', 'show', 'dev', 'eth0']);
  tt.equal(own.status, 0, 'exit status 0');
  tt.match(own.stdout, `"local":"${p0.ip}"`, "exec's stdout is the command's, in the pod");
  const none = sluice(['lab', 'exec', '--name', s.name, 'default/nosuchpod', '--', 'true']);
  tt.equal(none.status, 1, 'an unknown pod is an error');
  tt.match(none.stderr, /no pod default\/nosuchpod/);
  tt.match(sluice(['lab', 'exec', '--name', s.name, p0.name, 'true']).stderr, /put -- before the command/, 'exec without -- is refused');
  const viaNode = sluice(['lab', 'exec', '--name', s.name, '--node', s.nodes[0]!.name, '--', 'ip', '-j', 'link', 'show', 'uplink0']);
  tt.equal(viaNode.status, 0, 'exec --node runs in the node (it has uplink0)');
  checkExternal(tt, s);
}

/** The outside host: listed, reached with exec --external, on the underlay, and with no way to any pod. */
function checkExternal(tt: Test, s: LabStatus): void {
  const x = s.external.find((e) => e.name === 'ext');
  tt.ok(x && existsSync(x.netns), `an outside host ext (${x?.ip}) by default`);
  if (!x) return;
  const addr = sluice(['lab', 'exec', '--name', s.name, '--external', 'ext', '--', 'ip', '-j', '-4', 'addr', 'show', 'dev', 'eth0']);
  tt.equal(addr.status, 0, 'exec --external runs in the outside host');
  tt.match(addr.stdout, `"local":"${x.ip}"`, 'with its address on eth0');
  const n = s.nodes.find((m) => m.subnet === x.subnet)!;
  tt.equal(sluice(['lab', 'exec', '--name', s.name, '--external', 'ext', '--', 'ping', '-c', '1', '-W', '2', n.underlayIP]).status, 0, `it reaches node ${n.name} on the underlay`);
  const routes = inNs(x.netns, 'ip', ['-4', 'route', 'show']).stdout;
  for (const m of s.nodes) tt.notMatch(routes, m.podCIDR!.split('/')[0]!, `no route to ${m.name}'s pod block ${m.podCIDR}`);
  tt.not(inNs(x.netns, 'ping', ['-c', '1', '-W', '1', s.pods[0]!.ip!]).status, 0, 'and a pod\'s address is not reachable from it');
  tt.match(sluice(['lab', 'exec', '--name', s.name, '--external', 'nosuch', '--', 'true']).stderr, /no outside host nosuch in lab .* \(outside hosts: ext\)/, 'an unknown outside host is an error naming the known ones');
  tt.match(sluice(['lab', 'exec', '--name', s.name, '--external', 'ext', '--node', n.name, '--', 'true']).stderr, /give --node or --external, not both/);
  tt.match(must(['lab', 'status', '--name', s.name]).stdout, /OUTSIDE HOST +SUBNET +IP +NETNS\next +\S+ +198\.18\.\d+\.201 /, 'the table lists it');
}

/** `lab down` (twice), then nothing of the lab exists. */
function downAndCheck(tt: Test, s: LabStatus): void {
  const pids = [...s.nodes.map((n) => n.agent.pid!), ...(s.underlay.etcd?.pid ? [s.underlay.etcd.pid] : [])];
  const d = must(['lab', 'down', '--name', s.name]);
  tt.match(d.stdout, `lab ${s.name} removed`);
  tt.comment(`lab down: ${d.ms} ms`);
  assertNothingLeft(tt, s.name, pids);
  for (const p of s.pods) tt.notOk(existsSync(p.netns), `pod ${p.name}'s netns is gone`);
  const again = must(['lab', 'down', '--name', s.name]);
  tt.match(again.stdout, /nothing to remove/, 'a second down is fine');
  tt.equal(sluice(['lab', 'status', '--name', s.name]).status, 1, 'status of a removed lab is an error');
}

const timings: string[] = [];

t.test('an invalid topology fails before anything is created, naming the field', async (tt) => {
  const dir = tempDir(tt, `${prefix}v`);
  const lab = `${prefix}v`;
  downAtTeardown(tt, lab);
  const f = join(dir, 'bad.yaml');
  writeFileSync(f, 'mode: vxlan\nnodes: [{name: n1}, {name: n2}]\npods:\n  - {name: a, node: n1}\n  - {name: b, node: n9}\n');
  const r = sluice(['lab', 'up', '--name', lab, '-f', f]);
  tt.equal(r.status, 1);
  tt.match(r.stderr, `${f}:5: pods[1].node: unknown node 'n9' (nodes: n1, n2)`);
  assertNothingLeft(tt, lab);
  const j = join(dir, 'bad.json');
  writeFileSync(j, '{"nodes": [{"name": "n1", "zone": "a"}]}');
  tt.match(sluice(['lab', 'up', '--name', lab, '-f', j]).stderr, /bad\.json:1: nodes\[0\]\.zone: unknown key \(known: name, subnet\)/, 'JSON: unknown key named');
  tt.match(sluice(['lab', 'up', '--name', lab, '--mode', 'ring']).stderr, /--mode: expected one of vxlan, direct, hybrid/, 'a bad flag is named');
  tt.match(sluice(['lab', 'up', '--name', 'Bad_Name']).stderr, /--name: 'Bad_Name' is not a lab name/);
  assertNothingLeft(tt, lab);
});

t.test('an underlay overlapping the root namespace is refused before anything is created', async (tt) => {
  const dir = tempDir(tt, `${prefix}o`);
  const lab = `${prefix}o`;
  downAtTeardown(tt, lab);
  const f = join(dir, 'overlap.yaml');
  writeFileSync(f, 'underlay: 127.0.0.0/24\n');
  const r = sluice(['lab', 'up', '--name', lab, '-f', f]);
  tt.equal(r.status, 1);
  tt.match(r.stderr, /subnet s1 \(127\.0\.0\.0\/24\) overlaps the root namespace's address 127\.0\.0\.1\/8 on lo/);
  assertNothingLeft(tt, lab);
});

t.test('file store: 2 nodes x 2 pods', async (tt) => {
  const lab = `${prefix}f`;
  const { status, ms } = labUp(tt, lab, []);
  timings.push(`lab up (2 nodes x 2 pods, file store): ${ms} ms`);
  tt.comment(timings.at(-1)!);
  checkLab(tt, status, { mode: 'vxlan', store: 'file' });
  checkExec(tt, status);
  tt.equal(status.underlay.etcd, null, 'no etcd');
  tt.equal(status.underlay.router, null, 'one subnet: no router');
  if (existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables')) {
    // br_netfilter exists on this kernel: the underlay is a switch, its bridge must not run netfilter.
    const rootNf = readFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8');
    for (const key of ['iptables', 'ip6tables', 'arptables']) {
      tt.equal(inNs(status.underlay.netns, 'sysctl', ['-n', `net.bridge.bridge-nf-call-${key}`]).stdout.trim(), '0', `no bridge-nf-call-${key} in the underlay`);
    }
    tt.equal(readFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8'), rootNf, "the root namespace's bridge-nf-call-iptables is untouched");
  }
  tt.match(status.storeSpec, `file:${join(LAB_ROOT, lab, 'store')}`, 'one shared file store in the lab directory');
  tt.same(labStatus(lab).pods.map((p) => p.ip), status.pods.map((p) => p.ip), 'status again: the same');
  tt.match(must(['lab', 'status', '--name', lab]).stdout, /NODE +SUBNET +UNDERLAY IP +POD CIDR/, 'a table for people');
  // A killed agent: down still removes everything.
  process.kill(status.nodes[0]!.agent.pid!, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 300));
  const after = labStatus(lab);
  tt.equal(after.nodes[0]!.agent.running, false, 'status shows the killed agent');
  tt.equal(after.pods[0]!.ip, status.pods[0]!.ip, 'pods keep their recorded addresses');
  assertCrossNodeReachability(tt, status);
  downAndCheck(tt, status);
});

t.test('etcd store: 2 nodes x 2 pods, etcd in the underlay', { skip: !HAVE_ETCD && 'needs /usr/bin/etcd' }, async (tt) => {
  const lab = `${prefix}e`;
  const { status, ms } = labUp(tt, lab, ['--store', 'etcd']);
  timings.push(`lab up (2 nodes x 2 pods, etcd store): ${ms} ms`);
  tt.comment(timings.at(-1)!);
  checkLab(tt, status, { mode: 'vxlan', store: 'etcd' });
  const e = status.underlay.etcd!;
  tt.ok(e && e.running, 'etcd runs');
  tt.equal(status.storeSpec, `etcds://${e.address}:${e.port}/${lab}/`, 'over TLS');
  tt.equal(statSync(e.tls.key).mode & 0o777, 0o600, "the lab's client key is 0600");
  for (const n of status.nodes) {
    const cfg = readFileSync(n.config, 'utf8');
    tt.match(cfg, `store: etcds://${e.address}:${e.port}/${lab}/\nstoreCA: ${e.tls.ca}\nstoreCert: `, `node ${n.name}: its config names the lab's etcd and its certificates`);
    const key = /\nstoreKey: (.*)\n/.exec(cfg)?.[1];
    tt.equal(key && statSync(key).mode & 0o777, 0o600, `node ${n.name}: its key is 0600`);
    tt.equal(inNs(n.netns, 'ping', ['-c', '1', '-W', '2', e.address]).status, 0, `node ${n.name} reaches etcd over the underlay`);
  }
  const tls = ['--cacert', e.tls.ca, '--cert', e.tls.cert, '--key', e.tls.key];
  const keys = inNs(status.underlay.netns, 'etcdctl', ['--endpoints', `https://${e.address}:${e.port}`, ...tls, 'get', '--prefix', '--keys-only', `/${lab}/nodes/`]);
  const noCert = inNs(status.underlay.netns, 'etcdctl', ['--endpoints', `https://${e.address}:${e.port}`, '--cacert', e.tls.ca, '--command-timeout=2s', 'get', 'x']);
  tt.not(noCert.status, 0, 'without a client certificate etcd refuses');
  tt.same(keys.stdout.split('\n').filter(Boolean).sort(), status.nodes.map((n) => `/${lab}/nodes/${n.name}`).sort(), 'both nodes registered in etcd');
  assertCrossNodeReachability(tt, status);
  downAndCheck(tt, status);
  tt.notOk(existsSync(e.tls.ca), 'lab down removed the certificates');
});

t.test('hybrid: two subnets joined by a router', async (tt) => {
  const lab = `${prefix}h`;
  const fwd = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
  const { status } = labUp(tt, lab, ['--mode', 'hybrid']);
  checkLab(tt, status, { mode: 'hybrid', store: 'file' });
  tt.same(status.underlay.subnets.map((x) => [x.name, x.cidr, x.router]), [['s1', '198.18.0.0/24', '198.18.0.254'], ['s2', '198.18.1.0/24', '198.18.1.254']]);
  tt.ok(status.underlay.router && existsSync(status.underlay.router.netns), 'a router namespace');
  const [n1, n2] = status.nodes;
  tt.same([n1!.subnet, n2!.subnet], ['s1', 's2'], 'one node in each subnet');
  for (const [a, b] of [[n1!, n2!], [n2!, n1!]]) {
    const r = inNs(a.netns, 'ping', ['-c', '1', '-W', '2', b.underlayIP]);
    tt.equal(r.status, 0, `${a.name} (${a.underlayIP}) pings ${b.name} (${b.underlayIP}) across the router`);
    tt.match(r.stdout, /ttl=63/, 'one hop: through the router');
  }
  tt.equal(inNs(status.underlay.router!.netns, 'sysctl', ['-n', 'net.ipv4.ip_forward']).stdout.trim(), '1', 'the router forwards');
  tt.equal(inNs(n1!.netns, 'sysctl', ['-n', 'net.ipv4.ip_forward']).stdout.trim(), '1', 'nodes forward, as real nodes do (what pods send outside the cluster goes through the node)');
  tt.equal(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8'), fwd, "the root namespace's ip_forward is untouched");
  tt.match(inNs(n1!.netns, 'ip', ['route', 'show', 'default']).stdout, `default via 198.18.0.254 dev uplink0`, "n1's default route is its router");
  const ext = status.external[0]!;
  tt.match(inNs(ext.netns, 'ip', ['route', 'show', 'default']).stdout, 'default via 198.18.0.254 dev eth0', 'the outside host\'s default route is its router');
  tt.equal(inNs(ext.netns, 'ping', ['-c', '1', '-W', '2', n2!.underlayIP]).status, 0, 'and it reaches the node behind the router');
  checkExternal(tt, status);
  assertCrossNodeReachability(tt, status);
  downAndCheck(tt, status);
});

t.test('an agent that cannot start: up fails, reports it and leaves nothing', { skip: !HAVE_ETCD && 'needs /usr/bin/etcd' }, async (tt) => {
  const lab = `${prefix}a`;
  downAtTeardown(tt, lab);
  const r = sluice(['lab', 'up', '--name', lab, '--store', 'etcd'], { SLUICE_LAB_TEST_BAD_NODE: 'n2' });
  tt.equal(r.status, 1);
  tt.match(r.stderr, /node n2: the agent exited while starting \(exit 1\): .*uplink device 'slnouplink0' does not exist/);
  tt.match(r.stderr, /starting etcd/, 'it got as far as etcd and the agents');
  tt.match(r.stderr, /removing what it made/);
  assertNothingLeft(tt, lab);
  tt.match(sluice(['lab', 'down', '--name', lab]).stdout, /nothing to remove/);
});

t.test('the pool runs out while pods are added: up fails and leaves nothing', async (tt) => {
  const dir = tempDir(tt, `${prefix}x`);
  const lab = `${prefix}x`;
  downAtTeardown(tt, lab);
  const f = join(dir, 'small.yaml');
  // Valid, but a /30 pool holds two pods: the third add fails on the agent.
  writeFileSync(f, 'clusterCIDR: 10.244.0.0/30\nblockSize: 30\nnodes: [{name: n1}]\npods: [{name: a, node: n1}, {name: b, node: n1}, {name: c, node: n1}]\n');
  const r = sluice(['lab', 'up', '--name', lab, '-f', f]);
  tt.equal(r.status, 1);
  tt.match(r.stderr, /pod default\/a on n1: 10\.244\.0\.\d/, 'the first pods were added');
  tt.match(r.stderr, /pod default\/c on n1: .*exhausted/, 'the error names the pod');
  assertNothingLeft(tt, lab);
});

t.test('timings', async (tt) => {
  for (const l of timings) tt.comment(l);
  tt.pass();
});
