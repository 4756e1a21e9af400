/**
 * Two nodes sharing one etcd: each node is a network namespace with its own agent, etcd
 * runs in an "infra" namespace that both reach over a veth. Checks that concurrent adds
 * on both nodes never hand out an address twice, that DEL releases everything, that an
 * etcd outage gives a clear error and leaves nothing half-done, and that the agents
 * recover when etcd returns. Node records live on leases and vanish when an agent dies.
 */
import t from 'tap';
import { IS_ROOT, inNetns, mustSh, netns, setupGate, testNode, uniquePrefix, type TestNode } from '../helpers/env.js';
import { agentProcess, type AgentProcess } from '../helpers/agent.js';
import { HAVE_ETCD, startEtcd, type EtcdServer } from '../helpers/etcd.js';
import type { Endpoint } from '../../src/endpoint/types.js';

if (!IS_ROOT || !HAVE_ETCD) {
  t.plan(0, !IS_ROOT ? 'needs root' : 'needs etcd (Debian etcd-server)');
  process.exit(0);
}

const prefix = uniquePrefix('et');
const keyPrefix = `/${prefix}/`;
const gate = setupGate(t);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
let etcd: EtcdServer;
let infra: string;
const nodes: TestNode[] = [];
const agents: AgentProcess[] = [];

interface AddAnswer { endpoint: { ip: string; name: string; hostIfname: string }; podCIDR: string }

/** Keys (and values) under the test's prefix, read with etcdctl inside the infra namespace. */
function etcdKeys(sub: string): Map<string, string> {
  const out = inNetns(infra, 'etcdctl', [...etcd.etcdctlArgs(), 'get', '--prefix', `${keyPrefix}${sub}`, '-w', 'json']);
  if (out.status !== 0) throw new Error(`etcdctl failed: ${out.stderr}`);
  const j = JSON.parse(out.stdout) as { kvs?: { key: string; value: string }[] };
  const dec = (b: string) => Buffer.from(b, 'base64').toString('utf8');
  return new Map((j.kvs ?? []).map((kv) => [dec(kv.key).slice(keyPrefix.length), dec(kv.value)]));
}

function endpointsOf(i: number): Endpoint[] {
  return nodes[i]!.json<Endpoint[]>(['endpoint', 'list']);
}

function veths(i: number): string[] {
  return (JSON.parse(mustSh('ip', ['-n', nodes[i]!.ns, '-j', 'link', 'show']) || '[]') as { ifname: string }[])
    .map((l) => l.ifname.replace(/@.*/, '')).filter((n) => /^sl[0-9a-f]{11}$/.test(n));
}

t.test('setup: etcd in an infra namespace, two nodes reaching it, an agent on each', async () => {
  infra = netns(t, `${prefix}-infra`);
  // TLS with client certificates; the server certificate names the address each node reaches it at.
  etcd = await startEtcd(t, { netns: infra, listenHost: '0.0.0.0', sans: ['198.18.1.254', '198.18.2.254'] });
  for (const i of [1, 2]) {
    const up = `198.18.${i}.1`;
    const gw = `198.18.${i}.254`;
    const node = testNode(t, `${prefix}n${i}`, {
      store: etcd.spec(keyPrefix, gw), storeCA: etcd.tls.ca!, storeCert: etcd.tls.cert!, storeKey: etcd.tls.key!, metricsAddress: 'off', blockSize: 27, uplink: 'uplink0',
    });
    mustSh('ip', ['-n', infra, 'link', 'add', `${prefix}-i${i}`, 'type', 'veth', 'peer', 'name', 'uplink0', 'netns', node.ns]);
    mustSh('ip', ['-n', infra, 'addr', 'add', `${gw}/24`, 'dev', `${prefix}-i${i}`]);
    mustSh('ip', ['-n', infra, 'link', 'set', `${prefix}-i${i}`, 'up']);
    mustSh('ip', ['-n', node.ns, 'addr', 'add', `${up}/24`, 'dev', 'uplink0']);
    mustSh('ip', ['-n', node.ns, 'link', 'set', 'uplink0', 'up']);
    nodes.push(node);
    agents.push(agentProcess(t, node, ['--reconcile-interval', '0', '--node-ttl', '3']));
  }
  await Promise.all(agents.map((a) => a.start()));
  gate.done();
});

gate.step('each node claims its own block, publishes its record and its health on a lease', async (t) => {
  const blocks = etcdKeys('ipam/blocks/');
  t.same([...blocks.values()].map((v) => (JSON.parse(v) as { node: string }).node).sort(), nodes.map((n) => n.name).sort(), 'one block per node');
  const recs = etcdKeys('nodes/');
  const health = etcdKeys('health/');
  t.same([...recs.keys()].sort(), nodes.map((n) => `nodes/${n.name}`).sort());
  for (const [i, n] of nodes.entries()) {
    const rec = JSON.parse(recs.get(`nodes/${n.name}`)!) as { podCIDR: string; underlayIP: string; subnet: string; mode: string };
    t.match(rec, { underlayIP: `198.18.${i + 1}.1`, subnet: `198.18.${i + 1}.0/24`, mode: 'vxlan' }, `${n.name}'s record: underlay and mode`);
    t.match(rec.podCIDR, /^10\.244\.0\.(0|32)\/27$/);
    t.equal((JSON.parse(health.get(`health/${n.name}`)!) as { pid: number }).pid, agents[i]!.pid, `${n.name}'s health names its agent`);
  }
});

gate.step('concurrent adds on both nodes: every address distinct, each inside its node\'s blocks; DEL releases all', async (t) => {
  const per = 40;
  const pods = nodes.map((_, i) => Array.from({ length: per }, (_, k) => netns(t, `${prefix}-p${i}x${k}`)));
  const started = Date.now();
  const answers = await Promise.all(nodes.flatMap((_, i) => pods[i]!.map((ns, k) =>
    agents[i]!.post<AddAnswer>('/v1/cni/add', { containerId: `c${i}x${k}`, ifname: 'eth0', netns: `/run/netns/${ns}` }).then((a) => ({ node: i, ...a })))));
  t.comment(`${answers.length} adds on two nodes in ${Date.now() - started} ms`);
  const ips = answers.map((a) => a.endpoint.ip);
  t.equal(new Set(ips).size, ips.length, `${ips.length} distinct addresses`);
  const owner = new Map([...etcdKeys('ipam/blocks/')].map(([k, v]) => [k.slice('ipam/blocks/'.length).replace('-', '/'), (JSON.parse(v) as { node: string }).node]));
  t.equal(owner.size, 4, 'two /27 blocks per node (40 pods need 2 x 30 hosts)');
  const inBlock = (ip: string, block: string) => {
    const [base, len] = block.split('/');
    const n = (s: string) => s.split('.').reduce((a, o) => a * 256 + Number(o), 0);
    const mask = 2 ** (32 - Number(len));
    return Math.floor(n(ip) / mask) === Math.floor(n(base!) / mask);
  };
  const misplaced = answers.filter((a) => {
    const block = [...owner.keys()].find((b) => inBlock(a.endpoint.ip, b));
    return !block || owner.get(block) !== nodes[a.node]!.name;
  });
  t.same(misplaced.map((a) => a.endpoint.ip), [], "every address is in a block of the node that gave it");
  t.equal(etcdKeys('ipam/addrs/').size, nodes.length * per, 'one address record per pod');
  await Promise.all(nodes.flatMap((_, i) => pods[i]!.map((_, k) => agents[i]!.post('/v1/cni/del', { containerId: `c${i}x${k}`, ifname: 'eth0' }))));
  t.equal(etcdKeys('ipam/addrs/').size, 0, 'no address left allocated');
  t.equal(etcdKeys('ipam/handles/').size, 0, 'no handle left');
  t.same([endpointsOf(0).length, endpointsOf(1).length], [0, 0]);
  t.same([veths(0), veths(1)], [[], []], 'no veth left');
});

gate.step('etcd stopped: a clear error, nothing half-done; recovery when it returns', async (t) => {
  const a = agents[0]!;
  const pod = netns(t, `${prefix}-out`);
  const kept = netns(t, `${prefix}-kept`);
  const keptIp = (await a.post<AddAnswer>('/v1/cni/add', { containerId: 'kept', ifname: 'eth0', netns: `/run/netns/${kept}` })).endpoint.ip;
  await etcd.stop();
  const t0 = Date.now();
  await t.rejects(a.post('/v1/cni/add', { containerId: 'outage', ifname: 'eth0', netns: `/run/netns/${pod}` }),
    { status: 503, code: 'unavailable', message: /etcds:\/\/198\.18\.1\.254:\d+.*failed: etcd unavailable/ }, 'ADD: 503 unavailable naming the store');
  t.ok(Date.now() - t0 < 20_000, `answered in ${Date.now() - t0} ms`);
  // Whether etcd applied the allocation before it went away is unknown: the failed add's
  // record stays 'deleting' (no device) until its address is surely released.
  t.same(endpointsOf(0).map((e) => [e.name, e.state]), [['default/kept', 'ready'], ['default/outage', 'deleting']], 'only a cleanup record of the failed add');
  t.equal(veths(0).length, 1, 'no veth of the failed add');
  t.equal(inNetns(pod, 'ip', ['link', 'show', 'eth0']).status, 1, 'nothing inside the pod');
  const st = await a.get<{ ready: boolean; reason?: string }>('/v1/status');
  t.equal(st.ready, false, 'status: not ready');
  t.match(st.reason, /store problem: .*etcd unavailable/);
  // A delete during the outage removes the pod's devices and keeps the record until the address is released.
  await t.rejects(a.post('/v1/cni/del', { containerId: 'kept', ifname: 'eth0' }), { status: 503, code: 'unavailable', message: /deleting endpoint default\/kept was incomplete: address: .*etcd unavailable/ }, 'DEL: 503, the runtime retries');
  t.same(endpointsOf(0).map((e) => [e.name, e.state]), [['default/kept', 'deleting'], ['default/outage', 'deleting']], 'the records wait for the store');
  t.same(veths(0), [], 'the veth is gone already');

  await etcd.start();
  await sleep(500);
  const r = await a.post<{ finished: string[]; problems: string[] }>('/v1/reconcile');
  t.same(r.finished, ['default/kept', 'default/outage'], 'the next reconcile finishes the delete and the failed add');
  t.same(r.problems, []);
  t.equal((await a.get<{ ready: boolean }>('/v1/status')).ready, true, 'ready again');
  const again = await a.post<AddAnswer>('/v1/cni/add', { containerId: 'outage', ifname: 'eth0', netns: `/run/netns/${pod}` });
  t.equal(again.endpoint.ip, keptIp, "the retried add succeeds and gets the released address");
  t.same([...etcdKeys('ipam/handles/').keys()].length, 1);
  await a.post('/v1/cni/del', { containerId: 'outage', ifname: 'eth0' });
});

gate.step("a killed agent's health record expires with its lease; its node record stays; a restart is healthy again", async (t) => {
  const b = agents[1]!;
  const name = nodes[1]!.name;
  await b.kill('SIGKILL');
  const deadline = Date.now() + 15_000;
  while (etcdKeys('health/').has(`health/${name}`) && Date.now() < deadline) await sleep(250);
  t.notOk(etcdKeys('health/').has(`health/${name}`), 'health gone after the TTL (3 s)');
  t.ok(etcdKeys('nodes/').has(`nodes/${name}`), 'the node record stays: peers keep routing to its pods while the agent is down');
  t.ok([...etcdKeys('ipam/blocks/').values()].some((v) => v.includes(name)), 'its blocks stay: the node keeps them across restarts');
  await b.start();
  t.ok(etcdKeys('health/').has(`health/${name}`), 'healthy again');
  await b.kill('SIGTERM');
  await sleep(500);
  t.ok(etcdKeys('health/').has(`health/${name}`), 'a clean stop leaves the health record to its lease (a restart is not a departure)');
});
