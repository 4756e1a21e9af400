/**
 * The node agent end to end: a test node (its own netns, pin root, state) with a real
 * `sluice agent` process, pods made through it, and the agent killed (SIGKILL), stopped
 * (SIGTERM) and restarted while traffic flows. Checks what users rely on: the datapath
 * keeps forwarding without the agent, a restart adopts it without flushing anything, an
 * established TCP flow loses no segment across a kill and restart, reconciliation
 * repairs what was broken behind the agent's back, a pass whose inputs did not change
 * leaves sl_policy alone while drift checks still repair it, and metrics count real traffic.
 *
 * Runs the compiled CLI (dist/): build first. Everything is removed at teardown.
 */
import t from 'tap';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { IS_ROOT, mustSh, netns, setupGate, tempDir, testNode, uniquePrefix, type TestNode } from '../helpers/env.js';
import { agentProcess, type AgentProcess } from '../helpers/agent.js';
import { ping, runIn } from '../helpers/traffic.js';
import type { Endpoint } from '../../src/endpoint/types.js';
import { policyId } from '../../src/policy/compile.js';

if (!IS_ROOT) {
  t.plan(0, 'needs root (network namespaces, BPF)');
  process.exit(0);
}

const prefix = uniquePrefix('ag');
let node: TestNode;
let agent: AgentProcess;
const pods: Record<string, string> = {};
const gate = setupGate(t);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function endpoints(): Endpoint[] {
  return node.json<Endpoint[]>(['endpoint', 'list']);
}

function sluiceVeths(): string[] {
  return (JSON.parse(mustSh('ip', ['-n', node.ns, '-j', 'link', 'show']) || '[]') as { ifname: string }[])
    .map((l) => l.ifname.replace(/@.*/, '')).filter((n) => /^sl[0-9a-f]{11}$/.test(n));
}

function progIds(): number[] {
  return readdirSync(join(node.pinRoot, 'progs')).map((p) => {
    const info = JSON.parse(mustSh('bpftool', ['-j', 'prog', 'show', 'pinned', join(node.pinRoot, 'progs', p)])) as { id: number };
    return info.id;
  }).sort();
}

function mapIds(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of ['sl_endpoints', 'sl_metrics']) {
    out[m] = (JSON.parse(mustSh('bpftool', ['-j', 'map', 'show', 'pinned', join(node.pinRoot, m)])) as { id: number }).id;
  }
  return out;
}

/** Parses Prometheus text: "name{labels}" -> value; fails on any line that is not a sample, comment or blank. */
function parseProm(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const s = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})?) (-?[0-9.e+]+|NaN|[+-]Inf)$/.exec(line);
    if (!s) throw new Error(`not Prometheus text: ${JSON.stringify(line)}`);
    m.set(s[1]!, Number(s[2]));
  }
  return m;
}

async function scrape(): Promise<Map<string, number>> {
  const r = await runIn(node.ns, process.execPath, ['-e',
    "fetch('http://127.0.0.1:19962/metrics').then((r) => r.text()).then((b) => process.stdout.write(b), (e) => { console.error(String(e)); process.exit(1); })"]);
  if (r.status !== 0) throw new Error(`scrape failed: ${r.stderr}`);
  return parseProm(r.stdout);
}

t.test('setup: a node, its agent and two pods', async () => {
  node = testNode(t, prefix, { metricsAddress: '127.0.0.1:19962' });
  agent = agentProcess(t, node);
  for (const p of ['a', 'b', 'c']) pods[p] = netns(t, `${prefix}-${p}`);
  await agent.start();
  for (const p of ['a', 'b']) node.must(['endpoint', 'add', '--netns', pods[p]!, '--name', `shop/${p}`]);
  gate.done();
});

gate.step('the CLI goes through the agent, and the agent sees the same endpoints', async (t) => {
  const viaCli = endpoints();
  const viaApi = (await agent.get<{ endpoints: Endpoint[] }>('/v1/endpoints')).endpoints;
  t.same(viaCli.map((e) => [e.name, e.ip, e.state]), [['shop/a', '10.244.0.1', 'ready'], ['shop/b', '10.244.0.2', 'ready']]);
  t.same(viaApi.map((e) => e.ip), viaCli.map((e) => e.ip));
  t.ok((await ping(pods.a!, '10.244.0.2')).status === 0, 'a pings b');
  const status = await agent.get<{ ready: boolean; node: string; podCIDR: string; store: string }>('/v1/status');
  t.same({ ready: status.ready, node: status.node, podCIDR: status.podCIDR }, { ready: true, node: node.name, podCIDR: '10.244.0.0/24' });
  t.match(status.store, /^file:/);
  const r = node.sluice(['agent', 'status']);
  t.equal(r.status, 0, 'agent status exits 0');
  t.match(r.stdout, /ready\npod block 10\.244\.0\.0\/24, 2 endpoint\(s\)/);
});

gate.step('a second agent for the same node refuses to start', async (t) => {
  const r = node.sluice(['agent']);
  t.equal(r.status, 1);
  t.match(r.stderr, /another sluice agent is running for node .* \(it holds .*agent\.lock\)/);
  t.ok(existsSync(agent.socket), "the running agent's socket is still there");
  t.equal((await agent.get<{ ready: boolean }>('/v1/status')).ready, true);
});

gate.step('API errors are JSON with a code and a message', async (t) => {
  await t.rejects(agent.post('/v1/endpoints/add', { netns: `${prefix}-nope`, name: 'shop/x' }),
    { name: 'AgentHttpError', status: 400, code: 'invalid_request', message: /network namespace '.*-nope' does not exist/ });
  await t.rejects(agent.post('/v1/endpoints/del', { ref: 'shop/nope' }), { status: 404, code: 'not_found', message: /no endpoint 'shop\/nope'/ });
  await t.rejects(agent.post('/v1/cni/add', { ifname: 'eth0' }), { status: 400, code: 'invalid_request', message: /"containerId" must be a non-empty string/ });
  await t.rejects(agent.get('/v1/nope'), { status: 404, code: 'not_found', message: /no such API: GET \/v1\/nope/ });
  await t.rejects(agent.get('/v1/cni/add'), { status: 405, message: /GET is not allowed on \/v1\/cni\/add/ });
  t.equal(endpoints().length, 2, 'nothing was created');
});

gate.step('metrics: valid Prometheus text that counts the traffic sent', async (t) => {
  const before = await scrape();
  t.ok((await ping(pods.a!, '10.244.0.2', { count: 5 })).status === 0);
  const after = await scrape();
  const key = 'sluice_datapath_packets_total{direction="egress",reason="forward_local"}';
  const grew = (after.get(key) ?? 0) - (before.get(key) ?? 0);
  t.ok(grew >= 10, `forward_local grew by ${grew} (5 echo requests + 5 replies)`);
  t.equal(after.get('sluice_endpoints{state="ready"}'), 2);
  t.equal(after.get('sluice_map_entries{map="sl_endpoints"}'), 2);
  t.equal(after.get('sluice_map_max_entries{map="sl_endpoints"}'), 65536);
  t.equal(after.get('sluice_agent_up'), 1);
  t.ok((after.get('sluice_agent_reconcile_duration_seconds_count') ?? 0) >= 1, 'reconcile durations are counted');
});

gate.step('reconciliation repairs what was broken behind the agent', async (t) => {
  const [a, b] = endpoints();
  node.must(['endpoint', 'add', '--netns', pods.c!, '--name', 'shop/c']);
  await sleep(2000); // the reconciliation an add schedules has run
  // A lost map entry, a detached program, a stray device, and a pod that vanished.
  mustSh('bpftool', ['map', 'delete', 'pinned', join(node.pinRoot, 'sl_endpoints'), 'key', ...a!.ip.split('.')]);
  rmSync(join(node.pinRoot, 'links', `${b!.hostIfname}-ingress`));
  mustSh('ip', ['-n', node.ns, 'link', 'add', 'sl0123456789a', 'type', 'veth', 'peer', 'name', `${prefix}-x`]);
  mustSh('ip', ['netns', 'del', pods.c!]);
  const r = await agent.post<{ collected: string[]; repairedEntries: string[]; reattached: string[]; strays: string[]; problems: string[] }>('/v1/reconcile');
  t.same(r.collected, ['shop/c'], 'the vanished pod is collected');
  t.same(r.repairedEntries, ['shop/a'], 'the lost map entry is written again');
  t.same(r.reattached, ['shop/b'], 'the detached program is attached again');
  t.same(r.strays, ['sl0123456789a'], 'the stray device is removed');
  t.same(r.problems, []);
  t.same(endpoints().map((e) => e.name), ['shop/a', 'shop/b']);
  t.same(sluiceVeths().sort(), [a!.hostIfname, b!.hostIfname].sort());
  t.ok((await ping(pods.a!, '10.244.0.2')).status === 0, 'a and b talk again');
  const again = await agent.post<{ collected: string[]; repairedEntries: string[]; reattached: string[]; strays: string[]; releasedHandles: string[] }>('/v1/reconcile');
  t.same([again.collected, again.repairedEntries, again.reattached, again.strays, again.releasedHandles], [[], [], [], [], []], 'a second pass finds nothing to do');
  // The collected pod's address is free again: the next pod gets it.
  pods.c = netns(t, `${prefix}-c2`);
  t.equal(node.json<Endpoint>(['endpoint', 'add', '--netns', pods.c, '--name', 'shop/c2']).ip, '10.244.0.3');
  node.must(['endpoint', 'del', 'shop/c2']);
});

gate.step('status: features, programs with their attachments, map fill; a detached link shows and is repaired', async (t) => {
  const [, b] = endpoints();
  type Status = {
    node: string; agent: { running: boolean; ready: boolean }; store: { reachable: boolean }; counts: { endpoints: number };
    kernel: { redirectPeer: boolean; ringBuffer: boolean; fallbacks: string[] };
    programs: { name: string; id: number; attachments: { device: string; hook: string; state: string; linkId: number }[] }[];
    maps: { name: string; type: string; entries: number | null; maxEntries: number }[];
  };
  const status = () => node.json<Status>(['status']);
  const s = status();
  t.match(s, { agent: { running: true, ready: true }, store: { reachable: true }, counts: { endpoints: 2 }, kernel: { redirectPeer: true, ringBuffer: true } });
  const fc = s.programs.find((p) => p.name === 'from_container')!;
  t.same(fc.attachments.map((a) => `${a.device} ${a.hook} ${a.state}`).sort(), endpoints().map((e) => `${e.hostIfname} ingress attached`).sort(), 'from_container: on each pod veth\'s ingress');
  t.match(s.maps.find((m) => m.name === 'sl_endpoints'), { type: 'hash', entries: 2, maxEntries: 65536 }, 'sl_endpoints: 2 of 65536');
  t.match(s.maps.find((m) => m.name === 'sl_events'), { type: 'ringbuf', entries: null });
  // bpftool alone can read every pinned map by field name (BTF): `formatted` in its JSON.
  for (const m of s.maps) {
    if (m.type === 'ringbuf') continue; // a ring buffer has no elements to dump
    const dump = JSON.parse(mustSh('bpftool', ['-j', 'map', 'dump', 'pinned', join(node.pinRoot, m.name)])) as { formatted?: unknown }[];
    t.ok(dump.every((e) => e.formatted !== undefined), `bpftool dumps ${m.name} (${dump.length} element(s)) with BTF field names`);
  }
  const eps = JSON.parse(mustSh('bpftool', ['-j', 'map', 'dump', 'pinned', join(node.pinRoot, 'sl_endpoints')])) as { formatted: { key: { ip: number }; value: Record<string, unknown> } }[];
  t.same(Object.keys(eps[0]!.formatted.value).sort(), ['flags', 'host_mac', 'id', 'identity', 'ifindex', 'mac'], 'sl_endpoints values by field name');
  // Detach b's link behind the agent's back (the pin stays): status says so, reconcile repairs it.
  const link = fc.attachments.find((a) => a.device === b!.hostIfname)!;
  mustSh('bpftool', ['link', 'detach', 'id', String(link.linkId)]);
  const detached = status().programs.find((p) => p.name === 'from_container')!.attachments.find((a) => a.device === b!.hostIfname)!;
  t.equal(detached.state, 'detached', 'status shows the detached link');
  t.match(node.must(['status']), new RegExp(`DETACHED: ${b!.hostIfname} ingress`), 'and the text output names it');
  const r = await agent.post<{ reattached: string[] }>('/v1/reconcile');
  t.same(r.reattached, ['shop/b'], 'reconcile checks the link itself, not only its pin, and attaches again');
  t.equal(status().programs.find((p) => p.name === 'from_container')!.attachments.find((a) => a.device === b!.hostIfname)!.state, 'attached');
  t.ok((await ping(pods.a!, '10.244.0.2')).status === 0, 'a and b talk');
});

/** An sl_policy entry as `bpftool -j` prints it: raw bytes ("0x2a") and, from BTF, the fields. */
interface PolicyElem { key: string[]; value: string[]; formatted: { value: { policy: number; flags: number } } }
interface MapSync { action: string; reason: string; written?: number; removed?: number }

const policyPin = () => join(node.pinRoot, 'sl_policy');
const hexArgs = (bytes: readonly string[]) => ['hex', ...bytes.map((b) => b.replace(/^0x/, ''))];
const policyValue = (key: readonly string[]) =>
  (JSON.parse(mustSh('bpftool', ['-j', 'map', 'lookup', 'pinned', policyPin(), 'key', ...hexArgs(key)])) as PolicyElem).value;
/** Linux 6.4+ accounts an LPM trie's memory by its entries: the agent notices a deleted entry at the next pass. */
const memlockFollowsEntries = (() => {
  const [major, minor] = release().split('.').map(Number);
  return major! > 6 || (major === 6 && minor! >= 4);
})();

gate.step('policy: a change applied at the next pass, unchanged inputs leave sl_policy alone, drift repaired', async (t) => {
  const passes = async (a: AgentProcess, driftCheck: boolean) => {
    const r = await a.post<{ features: Record<string, { sync?: Record<string, MapSync> }> }>('/v1/reconcile', { driftCheck });
    return { policy: r.features.policy!.sync!.sl_policy!, ipcache: r.features.routing!.sync!.sl_ipcache! };
  };
  const pass = async (a: AgentProcess, driftCheck: boolean) => (await passes(a, driftCheck)).policy;
  const syncs = async (action: string) => (await scrape()).get(`sluice_agent_map_syncs_total{action="${action}",map="sl_policy"}`) ?? 0;
  const file = join(tempDir(t, `${prefix}-pol`), 'drift.yaml');
  // Every pod of shop talks to every other (a pings b still), and a few ipBlock entries.
  writeFileSync(file, `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: drift, namespace: shop}
spec:
  podSelector: {}
  ingress:
  - from: [{podSelector: {}}]
  - from: [{ipBlock: {cidr: 172.20.0.0/30}}]
    ports: [{protocol: TCP, port: 80}]
`);
  const id = policyId('shop/drift');
  const ours = () => (JSON.parse(mustSh('bpftool', ['-j', 'map', 'dump', 'pinned', policyPin()])) as PolicyElem[])
    .filter((e) => e.formatted.value.policy === id && e.formatted.value.flags === 1);

  // (a) A policy change: the next pass compiles it and writes sl_policy.
  const applied = await syncs('applied');
  node.must(['policy', 'apply', '-f', file]);
  await sleep(2000); // the pass the store's watch schedules has run, most likely
  const next = await pass(agent, false);
  t.ok(next.action === 'apply' || next.action === 'skip', `the next pass applies it, or finds it applied by the pass the watch scheduled (${next.action})`);
  t.equal(await syncs('applied'), applied + 1, 'the change was compiled and written once');
  const entries = ours();
  t.equal(entries.length, 2 * 2, `sl_policy allows shop's pods and the ipBlock on TCP/80 for both pods (${entries.length} entries of shop/drift)`);
  t.ok((await ping(pods.a!, '10.244.0.2')).status === 0, 'a still pings b');

  // (c) Unchanged inputs: the pass neither reads sl_policy back nor rewrites it. Evidence: an
  // entry edited behind the agent's back (same key, another policy id: the entry count and
  // the map's memory stay the same) is still edited after the pass.
  const target = entries[0]!;
  const edited = ['0x01', '0x00', '0x00', '0x00', ...target.value.slice(4)]; // policy id 1, same verdict
  mustSh('bpftool', ['map', 'update', 'pinned', policyPin(), 'key', ...hexArgs(target.key), 'value', ...hexArgs(edited)]);
  const skipped = await syncs('skipped');
  const logBefore = agent.log(10_000);
  const idle = await passes(agent, false);
  t.same(idle.policy, { action: 'skip', reason: 'inputs unchanged' }, 'a pass with unchanged inputs skips sl_policy');
  t.same(idle.ipcache, { action: 'skip', reason: 'inputs unchanged' }, 'and sl_ipcache');
  t.same(policyValue(target.key), edited, 'and did not touch it: the edited value is still there');
  t.ok((await syncs('skipped')) > skipped, 'sluice_agent_map_syncs_total counts it as skipped');
  t.equal(agent.log(10_000), logBefore, 'a skipped pass logs nothing');

  // (b) Drift: a drift check reads sl_policy back and repairs it.
  const v = await pass(agent, true);
  t.same([v.action, v.reason, v.written, v.removed], ['verify', 'drift check requested', 1, 0], 'a drift check (sluice agent reconcile) rewrites the edited entry');
  t.same(policyValue(target.key), target.value, 'restored');
  t.match(agent.log(3), /policy: sl_policy: 1 written, 0 removed \(\d+ entries\): drift repaired \(drift check requested\)/, 'and logs the repair');
  mustSh('bpftool', ['map', 'delete', 'pinned', policyPin(), 'key', ...hexArgs(target.key)]);
  const d = await pass(agent, false);
  if (memlockFollowsEntries) {
    t.same([d.action, d.written, d.removed], ['verify', 1, 0], 'an entry deleted behind the agent\'s back: the next pass reads sl_policy back without waiting for a drift check');
    t.match(d.reason, /^sl_policy changed behind the agent's back \(kernel memory \d+ bytes after the agent's last write, now \d+\)$/);
  } else {
    t.equal(d.action, 'skip', `kernel ${release()}: the map's memory does not follow its entries; the drift check repairs it`);
    t.equal((await pass(agent, true)).written, 1);
  }
  t.same(policyValue(target.key), target.value, 'the deleted entry is back');
  t.ok(((await scrape()).get('sluice_agent_map_drift_repairs_total{map="sl_policy"}') ?? 0) >= 2, 'sluice_agent_map_drift_repairs_total counts the repairs');

  // The same for sl_ipcache: the ipBlock's CIDR identity (172.20.0.0/30) deleted behind the agent's back.
  const cidrKey = ['0x1e', '0x00', '0x00', '0x00', '0xac', '0x14', '0x00', '0x00'];
  const ipcachePin = join(node.pinRoot, 'sl_ipcache');
  const cidrValue = (JSON.parse(mustSh('bpftool', ['-j', 'map', 'lookup', 'pinned', ipcachePin, 'key', ...hexArgs(cidrKey)])) as PolicyElem).value;
  mustSh('bpftool', ['map', 'delete', 'pinned', ipcachePin, 'key', ...hexArgs(cidrKey)]);
  const i = (await passes(agent, !memlockFollowsEntries)).ipcache;
  t.same([i.action, i.written, i.removed], ['verify', 1, 0], 'sl_ipcache is read back and the deleted CIDR identity written again');
  t.same((JSON.parse(mustSh('bpftool', ['-j', 'map', 'lookup', 'pinned', ipcachePin, 'key', ...hexArgs(cidrKey)])) as PolicyElem).value, cidrValue, 'restored');

  // The periodic drift check (--drift-check-interval): an agent that checks every second
  // repairs an edited entry at the first pass a second or more after its last read-back.
  await agent.kill('SIGTERM');
  const quick = agentProcess(t, node, ['--reconcile-interval', '0', '--drift-check-interval', '1']);
  await quick.start();
  mustSh('bpftool', ['map', 'update', 'pinned', policyPin(), 'key', ...hexArgs(target.key), 'value', ...hexArgs(edited)]);
  await sleep(1100);
  const q = await pass(quick, false);
  t.same([q.action, q.written], ['verify', 1], 'with --drift-check-interval 1, a pass 1.1 s after the last read-back checks for drift');
  t.match(q.reason, /^drift check \(last read back \d+ s ago\)$/);
  t.same(policyValue(target.key), target.value, 'and repairs it');
  await quick.kill('SIGTERM');
  await agent.start();

  node.must(['policy', 'delete', 'shop/drift']);
  await sleep(2000);
  await pass(agent, false);
  t.same(ours(), [], 'the policy deleted: its entries are gone');
  t.ok((await ping(pods.a!, '10.244.0.2')).status === 0, 'a pings b');
});

gate.step('SIGKILL: the datapath keeps forwarding; a restart adopts it without reloading or flushing', async (t) => {
  const progs = progIds();
  const maps = mapIds();
  const entries = mustSh('bpftool', ['-j', 'map', 'dump', 'pinned', join(node.pinRoot, 'sl_endpoints')]);
  const pid = agent.pid;
  const r = await agent.kill('SIGKILL');
  t.equal(r.signal, 'SIGKILL');
  t.ok((await ping(pods.a!, '10.244.0.2', { count: 3 })).status === 0, 'pods talk while no agent runs');
  t.ok(existsSync(agent.socket), 'the killed agent left its socket file');
  await agent.start();
  t.not(agent.pid, pid, 'a new agent process');
  t.match(agent.log(5), /adopted the pinned datapath/);
  t.same(progIds(), progs, 'the same programs (not reloaded)');
  t.same(mapIds(), maps, 'the same maps');
  t.equal(mustSh('bpftool', ['-j', 'map', 'dump', 'pinned', join(node.pinRoot, 'sl_endpoints')]), entries, 'the same map contents');
  t.same(endpoints().map((e) => e.name), ['shop/a', 'shop/b']);
});

/** IP packets a namespace has sent and received (/proc/net/snmp is per network namespace; ARP is not counted). */
async function ipCounters(ns: string): Promise<{ out: number; in: number }> {
  const r = await runIn(ns, 'cat', ['/proc/net/snmp']);
  const [head, vals] = r.stdout.split('\n').filter((l) => l.startsWith('Ip:'));
  const h = head!.split(/\s+/);
  const v = vals!.split(/\s+/);
  return { out: Number(v[h.indexOf('OutRequests')]), in: Number(v[h.indexOf('InReceives')]) };
}

/**
 * A TCP flow a -> b (iperf3, 6 s) while `during` runs. Lost packets are what one pod sent
 * and the other never received, counted at the IP layer of both pods in both directions.
 */
async function flow(during: () => Promise<void>) {
  const [a0, b0] = [await ipCounters(pods.a!), await ipCounters(pods.b!)];
  const server = runIn(pods.b!, 'iperf3', ['-s', '-1', '-B', '10.244.0.2', '-p', '5201'], { timeoutMs: 60_000 });
  await sleep(300);
  const client = runIn(pods.a!, 'iperf3', ['-c', '10.244.0.2', '-p', '5201', '-t', '6', '-i', '0.5', '-J', '-b', '200M'], { timeoutMs: 60_000 });
  await sleep(1500);
  const t0 = Date.now();
  await during();
  const ms = Date.now() - t0;
  const c = await client;
  await server;
  const [a1, b1] = [await ipCounters(pods.a!), await ipCounters(pods.b!)];
  const j = JSON.parse(c.stdout || '{}') as { intervals?: { sum: { bytes: number; start: number } }[]; end?: { sum_sent: { retransmits: number; bytes: number } } };
  return {
    status: c.status, stderr: c.stderr, ms,
    sent: (a1.out - a0.out) + (b1.out - b0.out),
    lost: (a1.out - a0.out) - (b1.in - b0.in) + (b1.out - b0.out) - (a1.in - a0.in),
    stalls: (j.intervals ?? []).filter((i) => i.sum.bytes === 0).map((i) => i.sum.start),
    bytes: j.end?.sum_sent.bytes ?? 0,
    retransmits: j.end?.sum_sent.retransmits ?? -1,
  };
}

gate.step('an established TCP flow loses no packet while the agent is killed and restarted', async (t) => {
  const f = await flow(async () => {
    await agent.kill('SIGKILL');
    await agent.start();
  });
  t.equal(f.status, 0, `iperf3 finished: ${f.stderr}`);
  t.same(f.stalls, [], 'no half-second interval without data');
  t.equal(f.lost, 0, 'every IP packet one pod sent, the other received');
  t.ok(f.sent > 1000, `the flow was busy (${f.sent} packets)`);
  t.comment(`agent killed and ready again in ${f.ms} ms; ${f.sent} IP packets (both directions), ${f.lost} lost, `
    + `${f.bytes} bytes, ${f.retransmits} TCP retransmits (retransmits with no packet lost are spurious: timers delayed while the restart keeps both CPUs busy)`);
});

gate.step('SIGKILL in the middle of adds: nothing leaks, the restart repairs, retries succeed', async (t) => {
  const many = Array.from({ length: 12 }, (_, i) => netns(t, `${prefix}-k${i}`));
  const adds = many.map((ns, i) => agent.post('/v1/cni/add', { containerId: `kill${i}`, ifname: 'eth0', netns: `/run/netns/${ns}` }).then(() => 'ok', (e: Error) => e.name));
  await sleep(250);
  await agent.kill('SIGKILL');
  const outcomes = await Promise.all(adds);
  t.comment(`adds before the kill: ${outcomes.filter((o) => o === 'ok').length} of ${many.length} answered`);
  await agent.start();
  const eps = endpoints();
  t.same(eps.filter((e) => e.state !== 'ready').map((e) => e.name), [], 'no half-made endpoint after the restart');
  const ips = eps.map((e) => e.ip);
  t.equal(new Set(ips).size, ips.length, 'addresses are distinct');
  const veths = sluiceVeths().sort();
  t.same(veths, eps.map((e) => e.hostIfname).sort(), 'every veth belongs to an endpoint and every endpoint has its veth');
  const entries = (JSON.parse(mustSh('bpftool', ['-j', 'map', 'dump', 'pinned', join(node.pinRoot, 'sl_endpoints')])) as unknown[]).length;
  t.equal(entries, eps.length, 'one map entry per endpoint');
  // The runtime retries every ADD: all succeed, idempotently for those that had completed.
  const results = await Promise.all(many.map((ns, i) => agent.post<{ endpoint: { ip: string; name: string } }>('/v1/cni/add', { containerId: `kill${i}`, ifname: 'eth0', netns: `/run/netns/${ns}` })));
  const all = endpoints();
  t.equal(all.length, 2 + many.length);
  t.equal(new Set(all.map((e) => e.ip)).size, all.length, 'still distinct');
  t.ok((await ping(many[0]!, results[many.length - 1]!.endpoint.ip)).status === 0, 'the retried pods talk');
  await Promise.all(many.map((_, i) => agent.post('/v1/cni/del', { containerId: `kill${i}`, ifname: 'eth0' })));
  t.same(endpoints().map((e) => e.name), ['shop/a', 'shop/b'], 'DEL removed them all');
  const r = await agent.post<{ releasedHandles: string[] }>('/v1/reconcile');
  t.same(r.releasedHandles, [], 'no address was left allocated');
});

gate.step('SIGTERM: a clean exit that leaves the datapath forwarding', async (t) => {
  const progs = progIds();
  const r = await agent.kill('SIGTERM');
  t.same(r, { code: 0, signal: null }, 'exit code 0');
  t.notOk(existsSync(agent.socket), 'the socket is removed');
  t.match(agent.log(3), /SIGTERM: shutting down \(the datapath keeps running\)/);
  t.ok((await ping(pods.a!, '10.244.0.2', { count: 2 })).status === 0, 'pods still talk');
  t.same(progIds(), progs);
  t.equal(readdirSync(join(node.pinRoot, 'links')).filter((f) => /^sl[0-9a-f]{11}-/.test(f)).length, 4, 'both endpoints keep both links');
  // Without an agent the CLI works directly on the node.
  t.same(endpoints().map((e) => e.name), ['shop/a', 'shop/b']);
});
