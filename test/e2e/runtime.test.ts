/**
 * A real container runtime calls the sluice CNI plugin: podman 4.3 (CNI backend) runs
 * busybox containers on a `sluice` network whose plugin talks to the agent of a test
 * node. podman runs inside the node's network namespace (so the pods' host-side veths
 * land there) and in a private mount namespace (test/helpers/runtime.ts), so the
 * machine's /etc/cni, /var/lib/containers, /var/lib/cni and /run stay untouched.
 *
 * Checks: two containers get addresses from the node's block and ping each other,
 * `sluice endpoint list` names them after the containers (podman passes K8S_POD_NAME;
 * K8S_POD_NAMESPACE through podman's CNI_ARGS), stop/start goes through DEL and ADD, and
 * `podman rm -f` releases the endpoints, veths and addresses.
 *
 * Skipped (with the reason) only when podman cannot run a container here at all: not
 * installed, or failing with `--network none`, where sluice plays no part.
 * Runs the compiled plugin and CLI (dist/): build first (`npm run build`).
 */
import t, { type Test } from 'tap';
import { existsSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { IS_ROOT, REPO, mustSh, testNode, uniquePrefix, type TestNode } from '../helpers/env.js';
import { agentProcess, type AgentProcess } from '../helpers/agent.js';
import { IMAGE, hostSnapshot, isolatedPodman, podmanMissing, type Podman } from '../helpers/runtime.js';
import { openStore } from '../../src/store/open.js';
import type { Endpoint } from '../../src/endpoint/types.js';

const NSFS_MAGIC = 0x6e736673;
const prefix = uniquePrefix('rt');
const A = `${prefix}-a`;
const B = `${prefix}-b`;

let node: TestNode;
let agent: AgentProcess;
let podman: Podman;
let podCIDR: string;
let hostBefore: ReturnType<typeof hostSnapshot>;
let ready = false;
let skipReason: string | undefined;
const ids: Record<string, string> = {};

function endpoints(): Endpoint[] {
  return node.json<Endpoint[]>(['endpoint', 'list']);
}

function sluiceVeths(): string[] {
  return (JSON.parse(mustSh('ip', ['-n', node.ns, '-j', 'link', 'show']) || '[]') as { ifname: string }[])
    .map((l) => l.ifname.replace(/@.*/, '')).filter((n) => /^sl[0-9a-f]{11}$/.test(n));
}

async function allocations(): Promise<string[]> {
  const store = await openStore('file', { stateDir: node.stateDir });
  try {
    return [...(await store.list('ipam/addrs/')), ...(await store.list('ipam/handles/'))].map((kv) => kv.key).sort();
  } finally {
    await store.close();
  }
}

function inBlock(ip: string, cidr: string): boolean {
  const [base, len] = cidr.split('/') as [string, string];
  const n = (s: string) => s.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(len));
  return Math.floor(n(ip) / size) === Math.floor(n(base) / size);
}

/** The container's eth0 address as the container itself sees it (busybox ip inside it). */
async function containerIp(name: string): Promise<string | undefined> {
  const out = await podman.must(['exec', name, 'ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
  return /inet (\d+\.\d+\.\d+\.\d+)\/32/.exec(out)?.[1];
}

async function inspectNet(name: string): Promise<{ ip: string; mac: string; sandbox: string; id: string }> {
  const out = await podman.must(['inspect', '--format',
    '{{.Id}} {{(index .NetworkSettings.Networks "sluice").IPAddress}} {{(index .NetworkSettings.Networks "sluice").MacAddress}} {{.NetworkSettings.SandboxKey}}', name]);
  const [id, ip, mac, sandbox] = out.split(' ') as [string, string, string, string];
  return { id, ip, mac, sandbox };
}

async function pingFrom(container: string, ip: string): Promise<{ status: number; output: string }> {
  const r = await podman.run(['exec', container, 'ping', '-c', '2', '-W', '2', ip], { timeoutMs: 20_000 });
  return { status: r.status, output: r.stdout + r.stderr };
}

/** A step that runs after setup; skipped (with the reason) when podman cannot run here. */
function step(name: string, fn: (t: Test) => Promise<void>): void {
  t.test(name, async (tt) => {
    if (skipReason) {
      tt.plan(0, skipReason);
      return;
    }
    if (!ready) {
      tt.fail('setup did not complete');
      return;
    }
    await fn(tt);
  });
}

const missing = IS_ROOT ? podmanMissing() : 'needs root';
if (!IS_ROOT) {
  t.plan(0, 'needs root: creates network and mount namespaces, loads eBPF programs, runs podman');
} else if (missing) {
  t.plan(0, `podman cannot run on this machine: ${missing}`);
} else if (!existsSync(join(REPO, 'dist', 'cni', 'plugin.js'))) {
  t.fail('dist/ is missing: build first with `npm run build`');
} else {
  t.test('setup: a node and its agent, an isolated podman with a sluice network, a busybox image', async (tt) => {
    const started = Date.now();
    node = testNode(t, prefix, { metricsAddress: 'off' });
    agent = agentProcess(t, node);
    await agent.start();
    podCIDR = (await agent.get<{ podCIDR: string }>('/v1/status')).podCIDR;
    hostBefore = hostSnapshot();
    // Registered after the agent: its teardown runs first, while the agent answers the DELs.
    podman = await isolatedPodman(t, prefix, { netns: node.ns, network: 'sluice', socket: agent.socket });
    await podman.importBusybox();
    const probe = await podman.run(['run', '--rm', '--network', 'none', IMAGE, 'true']);
    if (probe.status !== 0) {
      // sluice plays no part without a network: podman itself cannot run containers here.
      skipReason = `podman cannot run a container on this machine (even with --network none): ${(probe.stderr || probe.stdout).trim()}`;
      tt.comment(skipReason);
      return;
    }
    const nets = await podman.must(['network', 'ls', '--format', '{{.Name}} {{.Driver}}']);
    tt.match(nets, /^sluice sluice$/m, 'podman sees the sluice network (type sluice)');
    tt.comment(`setup took ${Date.now() - started} ms`);
    ready = true;
  });

  step('two containers get addresses from the node\'s block and ping each other', async (t) => {
    const started = Date.now();
    ids[A] = await podman.must(['run', '-d', '--name', A, '--network', 'sluice', '--cap-add', 'NET_RAW', IMAGE, 'sleep', '600']);
    // podman passes K8S_POD_NAME=<container name>; a namespace only through its CNI_ARGS.
    ids[B] = await podman.must(['run', '-d', '--name', B, '--network', 'sluice', '--cap-add', 'NET_RAW', IMAGE, 'sleep', '600'],
      { env: { CNI_ARGS: 'K8S_POD_NAMESPACE=shop' } });
    t.comment(`two podman run -d took ${Date.now() - started} ms`);
    await podman.track(A);
    await podman.track(B);
    const a = await inspectNet(A);
    const b = await inspectNet(B);
    t.equal(a.id, ids[A], 'podman inspect agrees on the container id');
    for (const [name, c] of [[A, a], [B, b]] as const) {
      t.ok(inBlock(c.ip, podCIDR), `${name}: podman reports ${c.ip}, in the node's block ${podCIDR}`);
      t.equal(await containerIp(name), c.ip, `${name}: the container's eth0 really has ${c.ip}/32`);
      t.match(c.sandbox, /^\/run\/netns\/(netns|cni)-[0-9a-f-]+$/, `${name}: podman made its sandbox ${c.sandbox}`);
      t.equal(existsSync(c.sandbox) && statfsSync(c.sandbox).type, NSFS_MAGIC, `${name}: the sandbox is a network namespace outside podman's mount namespace too`);
    }
    t.not(a.ip, b.ip, 'distinct addresses');

    const eps = endpoints();
    t.equal(eps.length, 2, 'two endpoints on the node');
    const ea = eps.find((e) => e.containerId === a.id);
    const eb = eps.find((e) => e.containerId === b.id);
    t.match(ea, { name: `default/${A}`, ip: a.ip, mac: a.mac, netns: a.sandbox, ifname: 'eth0', state: 'ready' },
      `${A} is listed as default/${A} (K8S_POD_NAME from podman)`);
    t.match(eb, { name: `shop/${B}`, ip: b.ip, mac: b.mac, netns: b.sandbox, ifname: 'eth0', state: 'ready' },
      `${B} is listed as shop/${B} (K8S_POD_NAMESPACE through podman's CNI_ARGS)`);
    t.same(sluiceVeths().sort(), [ea?.hostIfname, eb?.hostIfname].sort(), 'both host-side veths are in the node\'s namespace');

    const ab = await pingFrom(A, b.ip);
    t.equal(ab.status, 0, `${A} pings ${B} (${b.ip}) with busybox ping inside the container`, { output: ab.output });
    t.match(ab.output, /2 packets received/, 'both echo replies');
    const ba = await pingFrom(B, a.ip);
    t.equal(ba.status, 0, `${B} pings ${A} (${a.ip})`, { output: ba.output });
  });

  step('podman stop sends DEL, podman start sends ADD again', async (t) => {
    const before = await inspectNet(B);
    await podman.must(['stop', '-t', '0', B]);
    t.same(endpoints().map((e) => e.name), [`default/${A}`], `stopping ${B} released its endpoint`);
    t.notOk((await allocations()).some((k) => k.endsWith(`/${before.ip}`)), `${before.ip} is released`);
    t.notOk(existsSync(before.sandbox), 'podman removed the stopped container\'s sandbox');
    await podman.must(['start', B], { env: { CNI_ARGS: 'K8S_POD_NAMESPACE=shop' } });
    await podman.track(B);
    const after = await inspectNet(B);
    t.ok(inBlock(after.ip, podCIDR), `restarted ${B} has ${after.ip}`);
    t.match(endpoints().find((e) => e.containerId === after.id), { name: `shop/${B}`, ip: after.ip, netns: after.sandbox, state: 'ready' },
      'the endpoint is back, in the new sandbox');
    const a = await inspectNet(A);
    const ping = await pingFrom(B, a.ip);
    t.equal(ping.status, 0, `the restarted ${B} pings ${A}`, { output: ping.output });
  });

  step('podman rm -f releases the endpoints, veths and addresses; the machine\'s paths are untouched', async (t) => {
    const sandboxes = [(await inspectNet(A)).sandbox, (await inspectNet(B)).sandbox];
    const started = Date.now();
    await podman.must(['rm', '-f', '-t', '0', A, B]);
    t.comment(`podman rm -f of both took ${Date.now() - started} ms`);
    t.same(endpoints(), [], 'no endpoint left');
    t.same(sluiceVeths(), [], 'no sluice veth left in the node\'s namespace');
    t.same(await allocations(), [], 'no address allocated');
    t.same(sandboxes.filter((s) => existsSync(s)), [], 'the containers\' network namespaces are gone');
    t.same(podman.sandboxes(), [], 'podman left no network namespace behind');
    t.same(hostSnapshot(), hostBefore, `podman wrote nothing to the machine's ${'/etc/cni, /var/lib/containers, /var/lib/cni, /run/...'}`);
  });
}
