/**
 * The CNI plugin against a real agent, driven exactly as a container runtime drives it:
 * `node bin/sluice-cni.js` spawned with CNI_* in the environment and the network
 * configuration on stdin, its stdout parsed and its exit code checked. The agent runs
 * for a test node (its own netns, pin root, state); pods are namespaces of their own.
 *
 *   per cniVersion (0.4.0, 1.0.0, 1.1.0): ADD (result format, the address really in the
 *   pod, pods pinging each other), repeated ADD, CHECK with prevResult, CHECK after the
 *   pod's address was removed (1000), DEL, repeated DEL, DEL after the netns is gone,
 *   VERSION; STATUS and GC (1.1.0); endpoint names from K8S_POD_NAMESPACE/K8S_POD_NAME;
 *   error paths (6, 4, 3, 11, 50); 100 concurrent ADDs and DELs.
 *
 * Runs the compiled plugin and CLI (dist/): build first (`npm run build`).
 * Everything is named with a unique prefix and removed at teardown, also on failure.
 */
import t, { type Test } from 'tap';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { IS_ROOT, REPO, mustSh, netns, setupGate, sh, tempDir, testNode, uniquePrefix, type TestNode } from '../helpers/env.js';
import { agentProcess, type AgentProcess } from '../helpers/agent.js';
import { spawnCollect } from '../helpers/spawn.js';
import { ping } from '../helpers/traffic.js';
import { openStore } from '../../src/store/open.js';
import type { Endpoint } from '../../src/endpoint/types.js';

const CNI_BIN = join(REPO, 'bin', 'sluice-cni.js');
const VERSIONS = ['0.4.0', '1.0.0', '1.1.0'] as const;
type Version = (typeof VERSIONS)[number];
const SUPPORTED = ['0.4.0', '1.0.0', '1.1.0'];
const GATEWAY = '169.254.1.1';
const HOST_VETH = /^sl[0-9a-f]{11}$/;
const CONCURRENT = 100;

interface PluginRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (undefined when empty or not JSON). */
  out: any;
  /** Wall time of the plugin process. */
  ms: number;
}

interface CniCall {
  command: string;
  containerId?: string;
  netns?: string;
  ifname?: string;
  args?: string;
}

const children = new Set<ChildProcess>();
t.teardown(() => {
  for (const c of children) if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) process.kill(c.pid, 'SIGKILL');
});

/** Runs the plugin as a runtime does: CNI_* env, config on stdin; killed by PID after `timeoutMs`. */
async function plugin(call: CniCall, stdin: string, timeoutMs = 120_000): Promise<PluginRun> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: call.command,
    CNI_PATH: '/opt/cni/bin',
  };
  if (call.containerId !== undefined) env.CNI_CONTAINERID = call.containerId;
  if (call.netns !== undefined) env.CNI_NETNS = call.netns;
  if (call.ifname !== undefined) env.CNI_IFNAME = call.ifname;
  if (call.args !== undefined) env.CNI_ARGS = call.args;
  const c = await spawnCollect(process.execPath, [CNI_BIN], { env, input: stdin, timeoutMs, track: children });
  let parsed: unknown;
  try {
    parsed = c.stdout.trim() ? JSON.parse(c.stdout) : undefined;
  } catch { /* left undefined: the assertions on `out` say so */ }
  return { code: c.code, signal: c.signal, stdout: c.stdout, stderr: c.stderr, out: parsed, ms: c.ms };
}

const prefix = uniquePrefix('cn');
// 100 concurrent ADDs and DELs through one agent take minutes on a small machine.
t.setTimeout(900_000);
const gate = setupGate(t);
let node: TestNode;
let agent: AgentProcess;
let podCIDR: string;

const nsPath = (ns: string) => `/run/netns/${ns}`;

function netconf(version: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ cniVersion: version, name: 'sluice-e2e', type: 'sluice', socket: agent.socket, ...extra });
}

function endpoints(): Endpoint[] {
  return node.json<Endpoint[]>(['endpoint', 'list']);
}

function sluiceVeths(): string[] {
  return (JSON.parse(mustSh('ip', ['-n', node.ns, '-j', 'link', 'show']) || '[]') as { ifname: string }[])
    .map((l) => l.ifname.replace(/@.*/, '')).filter((n) => HOST_VETH.test(n));
}

/** The node's address records in its store: allocated addresses and handles. */
async function allocations(): Promise<{ addrs: string[]; handles: string[] }> {
  const store = await openStore('file', { stateDir: node.stateDir });
  try {
    const addrs = (await store.list('ipam/addrs/')).map((kv) => kv.key.replace(/^.*\//, ''));
    const handles = (await store.list('ipam/handles/')).map((kv) => decodeURIComponent(kv.key.slice('ipam/handles/'.length)));
    return { addrs: addrs.sort(), handles: handles.sort() };
  } finally {
    await store.close();
  }
}

interface PodIf { mac: string; mtu: number; addrs: string[] }

function podInterface(ns: string, ifname = 'eth0'): PodIf | undefined {
  const r = sh('ip', ['-n', ns, '-j', 'addr', 'show', 'dev', ifname]);
  if (r.status !== 0) return undefined;
  const l = (JSON.parse(r.stdout) as { address: string; mtu: number; addr_info: { family: string; local: string; prefixlen: number }[] }[])[0];
  if (!l) return undefined;
  return { mac: l.address, mtu: l.mtu, addrs: l.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`) };
}

function inBlock(ip: string, cidr: string): boolean {
  const [base, len] = cidr.split('/') as [string, string];
  const n = (s: string) => s.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(len));
  return Math.floor(n(ip) / size) === Math.floor(n(base) / size);
}

/** Asserts the whole ADD result of `version` for `ns`, against what is really in the pod; returns the pod address. */
function checkAddResult(t: Test, version: Version, r: PluginRun, ns: string, dns: Record<string, unknown> = {}): string | undefined {
  t.equal(r.code, 0, `ADD exits 0 (${version})`, { stdout: r.stdout, stderr: r.stderr, log: agent.log(10) });
  const res = r.out as {
    cniVersion: string; interfaces: { name: string; mac: string; sandbox: string; mtu?: number }[];
    ips: { version?: string; address: string; gateway: string; interface: number }[]; routes: unknown[]; dns: unknown;
  } | undefined;
  if (!res || !Array.isArray(res.interfaces) || !Array.isArray(res.ips)) {
    t.fail('ADD printed a result', { stdout: r.stdout });
    return undefined;
  }
  t.same(Object.keys(res).sort(), ['cniVersion', 'dns', 'interfaces', 'ips', 'routes'], 'result has exactly the CNI result fields');
  t.equal(res.cniVersion, version, 'result cniVersion is the configuration\'s');
  const pod = podInterface(ns);
  if (!pod) {
    t.fail(`eth0 exists in ${ns}`);
    return undefined;
  }
  t.equal(res.interfaces.length, 1, 'one interface');
  const want: Record<string, unknown> = { name: 'eth0', mac: pod.mac, sandbox: nsPath(ns) };
  if (version === '1.1.0') want.mtu = pod.mtu;
  t.same(res.interfaces[0], want, `interface: eth0, the pod's MAC, the sandbox${version === '1.1.0' ? ', the MTU' : ''}`);
  t.equal(res.ips.length, 1, 'one address');
  const ip = res.ips[0]!;
  const address = ip.address.replace(/\/32$/, '');
  t.match(ip.address, /^\d+\.\d+\.\d+\.\d+\/32$/, 'address is a /32');
  t.ok(inBlock(address, podCIDR), `${address} is in the node's block ${podCIDR}`);
  t.same(ip, { ...(version === '0.4.0' ? { version: '4' } : {}), address: ip.address, gateway: GATEWAY, interface: 0 },
    version === '0.4.0' ? 'ip has version "4", the gateway and interface 0' : 'ip has the gateway and interface 0, no version');
  t.same(res.routes, [{ dst: '0.0.0.0/0', gw: GATEWAY }], 'default route through the link-local gateway');
  t.same(res.dns, dns, 'dns');
  t.same(pod.addrs, [ip.address], `the pod's eth0 really has ${ip.address}`);
  t.match(mustSh('ip', ['-n', ns, 'route', 'show', 'default']), /default via 169\.254\.1\.1 dev eth0/, 'the pod really has the default route');
  return address;
}

if (!IS_ROOT) {
  t.plan(0, 'needs root: creates network namespaces and loads eBPF programs');
} else if (!existsSync(join(REPO, 'dist', 'cni', 'plugin.js')) || !existsSync(join(REPO, 'dist', 'cli', 'main.js'))) {
  t.fail('dist/ is missing: build first with `npm run build`');
} else {
  t.test('setup: a node and its agent', async (tt) => {
    node = testNode(t, prefix, { metricsAddress: 'off' });
    agent = agentProcess(t, node);
    await agent.start();
    podCIDR = (await agent.get<{ podCIDR: string }>('/v1/status')).podCIDR;
    tt.match(podCIDR, /^\d+\.\d+\.\d+\.\d+\/\d+$/, `the node's block is ${podCIDR}`);
    gate.done();
  });

  const step = gate.step;

  for (const version of VERSIONS) {
    const tag = version.replace(/\./g, '');
    step(`cniVersion ${version}: ADD, ADD again, CHECK, CHECK of a broken pod, DEL, DEL again, DEL after the netns went, VERSION`, async (t) => {
      const podA = netns(t, `${prefix}-${tag}a`);
      const podB = netns(t, `${prefix}-${tag}b`);
      const idA = `c${tag}a${prefix}`;
      const idB = `c${tag}b${prefix}`;
      const k8s = (pod: string) => `IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=${pod};K8S_POD_INFRA_CONTAINER_ID=x`;
      // 1.0.0 also carries dns (copied into the result) and labels (args.cni.labels) to the endpoint.
      const dns = version === '1.0.0' ? { nameservers: ['10.96.0.10'], search: ['shop.svc.cluster.local'], options: ['ndots:5'] } : undefined;
      const extra = version === '1.0.0' ? { dns, args: { cni: { labels: [{ key: 'app', value: 'web' }] } } } : {};
      const conf = netconf(version, extra);
      const callA = { containerId: idA, netns: nsPath(podA), ifname: 'eth0', args: k8s(`web-${tag}-a`) };
      const callB = { containerId: idB, netns: nsPath(podB), ifname: 'eth0', args: k8s(`web-${tag}-b`) };

      const [addA, addB] = await Promise.all([plugin({ command: 'ADD', ...callA }, conf), plugin({ command: 'ADD', ...callB }, conf)]);
      const ipA = checkAddResult(t, version, addA, podA, dns);
      const ipB = checkAddResult(t, version, addB, podB, dns);
      if (!ipA || !ipB) return;
      t.not(ipA, ipB, 'distinct addresses');

      const eps = endpoints();
      const epA = eps.find((e) => e.containerId === idA);
      const epB = eps.find((e) => e.containerId === idB);
      t.equal(epA?.name, `shop/web-${tag}-a`, 'K8S_POD_NAMESPACE/K8S_POD_NAME name the endpoint');
      t.equal(epB?.name, `shop/web-${tag}-b`, 'K8S_POD_NAMESPACE/K8S_POD_NAME name the endpoint');
      t.match(epA, { ip: ipA, ifname: 'eth0', netns: nsPath(podA), state: 'ready', mac: addA.out.interfaces[0].mac }, 'endpoint list agrees with the result');
      if (version === '1.0.0') t.same(epA?.labels, { app: 'web' }, 'args.cni.labels became the endpoint\'s labels');
      t.ok(epA && sluiceVeths().includes(epA.hostIfname), 'the host-side veth is in the node\'s namespace');

      const p1 = await ping(podA, ipB, { count: 2 });
      t.equal(p1.status, 0, `pod a pings pod b (${ipB})`, { output: p1.stdout + p1.stderr });
      const p2 = await ping(podB, ipA, { count: 2 });
      t.equal(p2.status, 0, `pod b pings pod a (${ipA})`, { output: p2.stdout + p2.stderr });

      const again = await plugin({ command: 'ADD', ...callA }, conf);
      t.equal(again.code, 0, 'a repeated ADD succeeds', { stdout: again.stdout });
      t.same(again.out, addA.out, 'a repeated ADD returns the same result');
      t.equal(endpoints().filter((e) => e.containerId === idA).length, 1, 'and makes no second endpoint');

      const confPrev = (prev: unknown) => netconf(version, { ...extra, prevResult: prev });
      const check = await plugin({ command: 'CHECK', ...callA }, confPrev(addA.out));
      t.equal(check.code, 0, 'CHECK with the prevResult passes', { stdout: check.stdout, stderr: check.stderr });
      t.equal(check.stdout, '', 'CHECK prints nothing');

      const checkUnknown = await plugin({ command: 'CHECK', ...callA, containerId: `nobody${prefix}` }, confPrev(addA.out));
      t.equal(checkUnknown.code, 1, 'CHECK of a container the agent does not know fails');
      t.match(checkUnknown.out, { cniVersion: version, code: 3, msg: /no endpoint for container nobody/ }, 'with code 3 naming the container');

      mustSh('ip', ['-n', podA, 'addr', 'del', `${ipA}/32`, 'dev', 'eth0']);
      const broken = await plugin({ command: 'CHECK', ...callA }, confPrev(addA.out));
      t.equal(broken.code, 1, 'CHECK after the pod lost its address fails');
      t.match(broken.out, {
        cniVersion: version, code: 1000, msg: `interface eth0 of container ${idA} is not as expected`,
        details: new RegExp(`interface eth0 does not have ${ipA.replace(/\./g, '\\.')}/32`),
      }, 'with code 1000 naming the missing address');

      const del = await plugin({ command: 'DEL', ...callA }, confPrev(addA.out));
      t.equal(del.code, 0, 'DEL succeeds', { stdout: del.stdout, stderr: del.stderr });
      t.equal(del.stdout, '', 'DEL prints nothing');
      t.notOk(endpoints().some((e) => e.containerId === idA), 'the endpoint is gone');
      t.notOk(podInterface(podA), 'eth0 is gone from the pod');
      t.notOk(epA && sluiceVeths().includes(epA.hostIfname), 'the host veth is gone');
      t.notOk((await allocations()).addrs.includes(ipA), `${ipA} is released`);
      const del2 = await plugin({ command: 'DEL', ...callA }, confPrev(addA.out));
      t.equal(del2.code, 0, 'a repeated DEL succeeds', { stdout: del2.stdout });
      t.equal(del2.stdout, '', 'and prints nothing');

      mustSh('ip', ['netns', 'del', podB]);
      const delGone = await plugin({ command: 'DEL', ...callB }, netconf(version, extra));
      t.equal(delGone.code, 0, 'DEL after the pod\'s netns was deleted succeeds', { stdout: delGone.stdout });
      t.notOk(endpoints().some((e) => e.containerId === idB), 'the endpoint is gone');
      t.notOk(epB && sluiceVeths().includes(epB.hostIfname), 'its host veth is gone');
      const al = await allocations();
      t.notOk(al.addrs.includes(ipB), `${ipB} is released`);
      t.notOk(al.handles.some((h) => h.includes(idA) || h.includes(idB)), 'no handle of either container is left');

      const ver = await plugin({ command: 'VERSION' }, JSON.stringify({ cniVersion: version }));
      t.equal(ver.code, 0, 'VERSION exits 0');
      t.same(ver.out, { cniVersion: version, supportedVersions: SUPPORTED }, 'VERSION lists 0.4.0, 1.0.0, 1.1.0');
    });
  }

  step('ADD again after the pod\'s netns was replaced without a DEL', async (t) => {
    const conf = netconf('1.0.0');
    // (a) The same container id in a new netns at another path, the old one gone: ctr passes
    // /proc/<pid>/ns/net, so re-running a container id after a kill (ctr sends no DEL) is this.
    const oldNs = netns(t, `${prefix}-rpa`);
    const newNs = netns(t, `${prefix}-rpb`);
    const id1 = `replaced1${prefix}`;
    const first = await plugin({ command: 'ADD', containerId: id1, netns: nsPath(oldNs), ifname: 'eth0' }, conf);
    t.equal(first.code, 0, 'first ADD', { stdout: first.stdout });
    mustSh('ip', ['netns', 'del', oldNs]);
    const second = await plugin({ command: 'ADD', containerId: id1, netns: nsPath(newNs), ifname: 'eth0' }, conf);
    t.equal(second.code, 0, 'ADD into the new netns succeeds (the stale endpoint is replaced)', { stdout: second.stdout });
    t.same(podInterface(newNs)?.addrs, second.out?.ips?.map((i: { address: string }) => i.address) ?? ['(no result)'],
      'the new netns has the address of the result');

    // (b) The same container id and netns path, but a new namespace behind the path.
    const samePath = netns(t, `${prefix}-rpc`);
    const id2 = `replaced2${prefix}`;
    const before = await plugin({ command: 'ADD', containerId: id2, netns: nsPath(samePath), ifname: 'eth0' }, conf);
    t.equal(before.code, 0, 'first ADD', { stdout: before.stdout });
    mustSh('ip', ['netns', 'del', samePath]);
    mustSh('ip', ['netns', 'add', samePath]);
    const after = await plugin({ command: 'ADD', containerId: id2, netns: nsPath(samePath), ifname: 'eth0' }, conf);
    t.equal(after.code, 0, 'ADD into the new namespace succeeds', { stdout: after.stdout });
    t.ok(podInterface(samePath), 'the new namespace really has eth0 (the stale endpoint was replaced, not returned)');

    for (const id of [id1, id2]) {
      const del = await plugin({ command: 'DEL', containerId: id, ifname: 'eth0' }, conf);
      t.equal(del.code, 0, `DEL ${id} (without CNI_NETNS) succeeds`, { stdout: del.stdout });
    }
    t.notOk(endpoints().some((e) => e.containerId === id1 || e.containerId === id2), 'no endpoint of either container left');
    const al = await allocations();
    t.notOk(al.handles.some((h) => h.includes(id1) || h.includes(id2)), 'no address of either container left');
  });

  step('STATUS and GC (1.1.0)', async (t) => {
    const status = await plugin({ command: 'STATUS' }, netconf('1.1.0'));
    t.equal(status.code, 0, 'STATUS succeeds while the agent is ready', { stdout: status.stdout });
    t.equal(status.stdout, '', 'STATUS prints nothing');
    const old = await plugin({ command: 'STATUS' }, netconf('1.0.0'));
    t.equal(old.code, 1, 'STATUS with cniVersion 1.0.0 fails');
    t.match(old.out, { code: 1, msg: /STATUS needs cniVersion 1\.1\.0/ }, 'with code 1');

    const ids = ['1', '2', '3'].map((i) => `gc${i}${prefix}`);
    const pods = ['1', '2', '3'].map((i) => netns(t, `${prefix}-gc${i}`));
    const adds = await Promise.all(ids.map((id, i) => plugin({ command: 'ADD', containerId: id, netns: nsPath(pods[i]!), ifname: 'eth0' }, netconf('1.1.0'))));
    for (const a of adds) t.equal(a.code, 0, 'ADD', { stdout: a.stdout });
    const ips = adds.map((a) => String(a.out?.ips?.[0]?.address ?? '').replace(/\/32$/, ''));
    t.same(endpoints().filter((e) => ids.includes(e.containerId ?? '')).map((e) => e.name).sort(), ids.map((id) => `default/${id}`),
      'without K8S_POD_NAME the endpoints are named default/<container id>');
    const manualPod = netns(t, `${prefix}-gcm`);
    node.must(['endpoint', 'add', '--netns', manualPod, '--name', 'ops/manual']);

    const noList = await plugin({ command: 'GC' }, netconf('1.1.0'));
    t.equal(noList.code, 1, 'GC without cni.dev/valid-attachments fails');
    t.match(noList.out, { code: 7, msg: /GC needs cni\.dev\/valid-attachments/ }, 'with code 7');
    const oldGc = await plugin({ command: 'GC' }, netconf('1.0.0', { 'cni.dev/valid-attachments': [] }));
    t.match(oldGc.out, { code: 1, msg: /GC needs cniVersion 1\.1\.0/ }, 'GC with cniVersion 1.0.0 fails with code 1');
    t.equal(endpoints().length, 4, 'the failed GCs removed nothing');

    const gc = await plugin({ command: 'GC' }, netconf('1.1.0', { 'cni.dev/valid-attachments': [{ containerID: ids[0], ifname: 'eth0' }] }));
    t.equal(gc.code, 0, 'GC succeeds', { stdout: gc.stdout, stderr: gc.stderr });
    t.equal(gc.stdout, '', 'GC prints nothing');
    const left = endpoints();
    t.same(left.map((e) => e.name).sort(), ['default/' + ids[0], 'ops/manual'].sort(),
      'GC removed the endpoints not listed, kept the listed one and the one no runtime made');
    t.notOk(podInterface(pods[1]!) ?? podInterface(pods[2]!), 'the collected pods lost eth0');
    const al = await allocations();
    t.notOk(al.addrs.includes(ips[1]!) || al.addrs.includes(ips[2]!), `their addresses ${ips[1]}, ${ips[2]} are released`);
    t.ok(al.addrs.includes(ips[0]!), `the listed one keeps ${ips[0]}`);
    t.equal(sluiceVeths().length, 2, 'two sluice veths left on the node');

    const gcAll = await plugin({ command: 'GC' }, netconf('1.1.0', { 'cni.dev/valid-attachments': [] }));
    t.equal(gcAll.code, 0, 'GC with an empty list succeeds');
    t.same(endpoints().map((e) => e.name), ['ops/manual'], 'an empty list collects every runtime endpoint');
    node.must(['endpoint', 'del', 'ops/manual']);
    t.same(await allocations(), { addrs: [], handles: [] }, 'no allocation left');
  });

  step('error paths against the real agent', async (t) => {
    const pod = netns(t, `${prefix}-err`);
    const call = { containerId: `err${prefix}`, netns: nsPath(pod), ifname: 'eth0' };
    const before = { eps: endpoints(), veths: sluiceVeths(), al: await allocations() };
    const unchanged = async (what: string) => {
      t.same(endpoints(), before.eps, `${what}: no endpoint made`);
      t.same(sluiceVeths(), before.veths, `${what}: no veth made`);
      t.same(await allocations(), before.al, `${what}: no address taken`);
    };

    const garbage = await plugin({ command: 'ADD', ...call }, '{"cniVersion": "1.0.0", garbage');
    t.equal(garbage.code, 1, 'garbage on stdin: exit 1');
    t.match(garbage.out, { code: 6, msg: 'the network configuration on stdin is not valid JSON' }, 'garbage on stdin: code 6');
    const empty = await plugin({ command: 'ADD', ...call }, '');
    t.match(empty.out, { code: 6, msg: 'no network configuration on stdin' }, 'empty stdin: code 6');
    const notObject = await plugin({ command: 'ADD', ...call }, '[1, 2]');
    t.match(notObject.out, { code: 6, msg: /not a JSON object/ }, 'a JSON array on stdin: code 6');

    const unknown = await plugin({ command: 'FROB', ...call }, netconf('1.0.0'));
    t.equal(unknown.code, 1, 'unknown CNI_COMMAND: exit 1');
    t.match(unknown.out, { cniVersion: '1.0.0', code: 4, msg: "unknown CNI_COMMAND 'FROB'" }, 'unknown CNI_COMMAND: code 4 naming it');
    const noId = await plugin({ command: 'ADD', netns: call.netns, ifname: 'eth0' }, netconf('1.0.0'));
    t.match(noId.out, { code: 4, msg: /CNI_CONTAINERID/ }, 'ADD without CNI_CONTAINERID: code 4 naming it');
    const badArgs = await plugin({ command: 'ADD', ...call, args: 'K8S_POD_NAME' }, netconf('1.0.0'));
    t.match(badArgs.out, { code: 4, msg: /CNI_ARGS/ }, 'CNI_ARGS segment without "=": code 4');
    const badVersion = await plugin({ command: 'ADD', ...call }, netconf('0.3.1'));
    t.match(badVersion.out, { code: 1, msg: /incompatible CNI versions/ }, 'cniVersion 0.3.1: code 1');

    const missing = `/run/netns/${prefix}-nonexistent`;
    const noNetns = await plugin({ command: 'ADD', ...call, netns: missing }, netconf('1.0.0'));
    t.equal(noNetns.code, 1, 'ADD into a netns that does not exist: exit 1');
    t.match(noNetns.out, { cniVersion: '1.0.0', code: 3, msg: new RegExp(`${missing}.*does not exist|does not exist.*${missing}`) },
      'code 3 naming the missing netns');
    await unchanged('ADD into a missing netns');
    await unchanged('the failed calls above');

    const nowhere = join(tempDir(t, `${prefix}-nosock`), 'agent.sock');
    const unreachable = await plugin({ command: 'ADD', ...call }, netconf('1.0.0', { socket: nowhere }));
    t.equal(unreachable.code, 1, 'ADD with no agent on the socket: exit 1');
    t.match(unreachable.out, { code: 11, msg: `cannot reach the sluice agent at ${nowhere}: is it running?`, details: /ENOENT/ },
      'code 11: cannot reach the sluice agent');
    await unchanged('ADD without an agent');
  });

  step(`${CONCURRENT} concurrent ADDs, then ${CONCURRENT} concurrent DELs`, async (t) => {
    const made = Date.now();
    const pods = Array.from({ length: CONCURRENT }, (_, i) => netns(t, `${prefix}-p${i}`));
    t.comment(`${CONCURRENT} pod namespaces made in ${Date.now() - made} ms`);
    // The agent serialises adds; on a small machine running other test files alongside,
    // the last of 100 can wait longer than the plugin's default 60 s (it would then say
    // "try again later", code 11, as a runtime expects). This checks correctness under
    // concurrency, so it waits longer; the comments report the times.
    const conf = netconf('1.0.0', { timeoutSeconds: 300 });
    const calls = pods.map((p, i) => ({ containerId: `many${i}${prefix}`, netns: nsPath(p), ifname: 'eth0', args: `K8S_POD_NAMESPACE=load;K8S_POD_NAME=pod-${i}` }));

    const started = performance.now();
    const adds = await Promise.all(calls.map((c) => plugin({ command: 'ADD', ...c }, conf)));
    const addMs = performance.now() - started;
    t.comment(`${CONCURRENT} concurrent ADDs (one plugin process each) took ${(addMs / 1000).toFixed(2)} s wall time; `
      + `the slowest plugin process ${(Math.max(...adds.map((a) => a.ms)) / 1000).toFixed(2)} s (default plugin timeout: 60 s)`);
    const failed = adds.filter((a) => a.code !== 0);
    t.equal(failed.length, 0, `all ${CONCURRENT} ADDs succeed`, { first: failed[0]?.stdout, stderr: failed[0]?.stderr, log: agent.log(10) });
    const ips = adds.map((a) => String(a.out?.ips?.[0]?.address ?? '').replace(/\/32$/, ''));
    t.equal(new Set(ips).size, CONCURRENT, `${CONCURRENT} distinct addresses`);
    t.ok(ips.every((ip) => inBlock(ip, podCIDR)), `all inside the node's block ${podCIDR}`);
    const realOk = pods.filter((p, i) => podInterface(p)?.addrs[0] === `${ips[i]}/32`).length;
    t.equal(realOk, CONCURRENT, 'every pod really has its address');
    const eps = endpoints();
    t.equal(eps.length, CONCURRENT, `${CONCURRENT} endpoints listed`);
    t.same(eps.map((e) => e.name).sort(), calls.map((_, i) => `load/pod-${i}`).sort(), 'named after K8S_POD_NAMESPACE/K8S_POD_NAME');
    t.equal(sluiceVeths().length, CONCURRENT, `${CONCURRENT} sluice veths on the node`);
    t.equal((await allocations()).addrs.length, CONCURRENT, `${CONCURRENT} addresses allocated`);
    const last = CONCURRENT - 1;
    const p = await ping(pods[0]!, ips[last]!, { count: 1 });
    t.equal(p.status, 0, `pod 0 pings pod ${last}`, { output: p.stdout + p.stderr });

    const delStarted = performance.now();
    const dels = await Promise.all(calls.map((c) => plugin({ command: 'DEL', ...c }, conf)));
    t.comment(`${CONCURRENT} concurrent DELs took ${((performance.now() - delStarted) / 1000).toFixed(2)} s wall time; `
      + `the slowest plugin process ${(Math.max(...dels.map((d) => d.ms)) / 1000).toFixed(2)} s`);
    const delFailed = dels.filter((d) => d.code !== 0);
    t.equal(delFailed.length, 0, `all ${CONCURRENT} DELs succeed`, { first: delFailed[0]?.stdout });
    t.same(endpoints(), [], 'no endpoint left');
    t.same(sluiceVeths(), [], 'no sluice veth left in the node\'s namespace');
    t.same(await allocations(), { addrs: [], handles: [] }, 'no allocation left');
    t.equal(pods.filter((p) => podInterface(p)).length, 0, 'no pod has eth0 any more');
  });

  step('the agent stopped: ADD and DEL say try again later (11), STATUS fails (50)', async (t) => {
    const pod = netns(t, `${prefix}-stop`);
    const call = { containerId: `stop${prefix}`, netns: nsPath(pod), ifname: 'eth0' };
    const stopped = await agent.kill('SIGTERM');
    t.equal(stopped.code, 0, 'the agent exits 0 on SIGTERM', { log: agent.log(5) });
    const add = await plugin({ command: 'ADD', ...call }, netconf('1.0.0'));
    t.equal(add.code, 1, 'ADD with the agent stopped: exit 1');
    t.match(add.out, { code: 11, msg: `cannot reach the sluice agent at ${agent.socket}: is it running?` }, 'code 11: cannot reach the sluice agent');
    t.notOk(podInterface(pod), 'nothing was made in the pod');
    const del = await plugin({ command: 'DEL', ...call }, netconf('1.0.0'));
    t.match(del.out, { code: 11, msg: /cannot reach the sluice agent/ }, 'DEL with the agent stopped: code 11 (the runtime retries)');
    const status = await plugin({ command: 'STATUS' }, netconf('1.1.0'));
    t.equal(status.code, 1, 'STATUS with the agent stopped: exit 1');
    t.match(status.out, { cniVersion: '1.1.0', code: 50, msg: /cannot reach the sluice agent/ }, 'STATUS: code 50, cannot reach the agent');
  });
}
