/**
 * End to end on one node: a sluice node in its own network namespace (with an uplink in
 * 198.18.0.0/15), two pods in their own namespaces, and real ICMP/TCP/UDP between them,
 * checked against the datapath's counters. Then endpoint deletion, re-initialisation and
 * node reset, and that no firewall rule anywhere changed along the way.
 *
 * Runs the compiled CLI (dist/); build it first with `npx tsc -p tsconfig.json`.
 * Everything is named with a unique prefix and removed at teardown, also on failure.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { canRunCliE2e, mustSh, netns, sh, testNode, uniquePrefix, type Teardown, type TestNode, setupGate } from '../helpers/env.js';
import type { Endpoint } from '../../src/endpoint/types.js';
import { ping, sha256, tcpSend, tcpSink, udpSend, udpSink } from '../helpers/traffic.js';
import { firewall } from '../helpers/firewall.js';

type EndpointJson = Endpoint;
interface MetricRow { reason: string; direction: string; drop: boolean; packets: number; bytes: number }
interface BpfEndpointRow { ip: string; pod: string; id: number; ifindex: number; device: string | null; mac: string; host_mac: string; labels: string | null }

const UPLINK_ADDR = '198.18.0.1';
const UPLINK_GW = '198.18.0.254';
const SPOOF_ADDR = '10.244.0.200';

function linkNames(ns: string): string[] {
  return (JSON.parse(mustSh('ip', ['-n', ns, '-j', 'link', 'show']) || '[]') as { ifname: string }[]).map((l) => l.ifname);
}

function routeDsts(ns: string): string[] {
  return (JSON.parse(mustSh('ip', ['-n', ns, '-j', 'route', 'show', 'table', 'main']) || '[]') as { dst: string }[]).map((r) => r.dst);
}

function counters(node: TestNode): Map<string, { packets: number; bytes: number }> {
  const m = new Map<string, { packets: number; bytes: number }>();
  for (const r of node.json<MetricRow[]>(['bpf', 'metrics'])) {
    const c = m.get(r.reason) ?? { packets: 0, bytes: 0 };
    c.packets += r.packets;
    c.bytes += r.bytes;
    m.set(r.reason, c);
  }
  return m;
}

/** Per-reason packet/byte increases between two counter readings. */
function delta(before: ReturnType<typeof counters>, after: ReturnType<typeof counters>, reason: string) {
  const b = before.get(reason) ?? { packets: 0, bytes: 0 };
  const a = after.get(reason) ?? { packets: 0, bytes: 0 };
  return { packets: a.packets - b.packets, bytes: a.bytes - b.bytes };
}

/** Gives the node an uplink with 198.18.0.1/24 and a default route (a dummy device, or a veth into a namespace of ours when the kernel has no dummy driver). */
function addUplink(tt: Teardown, node: TestNode, prefix: string): string {
  const n = node.ns;
  if (sh('ip', ['-n', n, 'link', 'add', 'up0', 'type', 'dummy']).status !== 0) {
    const up = netns(tt, `${prefix}-up`);
    mustSh('ip', ['-n', n, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up0p', 'netns', up]);
    mustSh('ip', ['-n', up, 'addr', 'add', `${UPLINK_GW}/24`, 'dev', 'up0p']);
    mustSh('ip', ['-n', up, 'link', 'set', 'up0p', 'up']);
  }
  mustSh('ip', ['-n', n, 'addr', 'add', `${UPLINK_ADDR}/24`, 'dev', 'up0']);
  mustSh('ip', ['-n', n, 'link', 'set', 'up0', 'up']);
  mustSh('ip', ['-n', n, 'route', 'add', 'default', 'via', UPLINK_GW, 'dev', 'up0']);
  return 'up0';
}

if (canRunCliE2e(t)) {
  const prefix = uniquePrefix('sn');
  // Set up in a subtest: an exception there is a failure and teardown still runs (a
  // throw at the top level would skip every teardown and leak namespaces and pins).
  const gate = setupGate(t);
  let rootFwBefore: ReturnType<typeof firewall>;
  let nodeFwBefore: ReturnType<typeof firewall>;
  let node: TestNode;
  let uplink: string;
  let podA: string;
  let podB: string;
  let a: EndpointJson;
  let b: EndpointJson;
  const add = (ns: string, name: string, labels: string) =>
    node.json<EndpointJson>(['endpoint', 'add', '--netns', ns, '--name', name, '--labels', labels]);

  t.test('setup: a node with an uplink, node init, two pods', async (tt) => {
    rootFwBefore = firewall(null);
    node = testNode(t, prefix);
    nodeFwBefore = firewall(node.ns);
    uplink = addUplink(t, node, prefix);
    podA = netns(t, `${prefix}-a`);
    podB = netns(t, `${prefix}-b`);
    const init = JSON.parse(node.must(['node', 'init', '-o', 'json'])) as { uplink: string; podCIDR: string; mtu: number };
    tt.equal(init.uplink, uplink, 'node init found the uplink');
    tt.equal(init.podCIDR, '10.244.0.0/24', 'default pod block');
    a = add(podA, 'shop/a', 'app=a');
    b = add(podB, 'shop/b', 'app=b,tier=db');
    gate.done();
  });

  const step = gate.step;

  step('endpoint list shows both endpoints with their fields', async (t) => {
    const list = node.json<EndpointJson[]>(['endpoint', 'list']);
    t.equal(list.length, 2, 'two endpoints');
    for (const [want, ns] of [[a, podA], [b, podB]] as const) {
      const e = list.find((x) => x.name === want.name);
      if (!e) {
        t.fail(`${want.name} is listed`);
        continue;
      }
      for (const k of ['id', 'name', 'ip', 'mac', 'hostIfindex', 'hostIfname'] as const) t.ok(k in e, `${e.name} has ${k}`);
      t.match(e, { id: want.id, ip: want.ip, mac: want.mac, hostIfname: want.hostIfname, hostIfindex: want.hostIfindex, state: 'ready' });
      t.match(e.hostIfname, /^sl[0-9a-f]{11}$/, 'host interface name is sl + 11 hex');
      t.match(e.ip, /^10\.244\.0\.\d+$/, 'address from the node block');
      const host = JSON.parse(mustSh('ip', ['-n', node.ns, '-j', 'link', 'show', 'dev', e.hostIfname])) as { ifindex: number }[];
      t.equal(host[0]?.ifindex, e.hostIfindex, 'hostIfindex is the host veth');
      const pod = JSON.parse(mustSh('ip', ['-n', ns, '-j', 'addr', 'show', 'dev', 'eth0'])) as { address: string; addr_info: { local: string; prefixlen: number }[] }[];
      t.equal(pod[0]?.address, e.mac, 'mac is the pod eth0 address');
      t.same(pod[0]?.addr_info.filter((x) => x.local.includes('.')).map((x) => `${x.local}/${x.prefixlen}`), [`${e.ip}/32`], 'pod eth0 has the /32');
      t.match(mustSh('ip', ['-n', ns, 'route', 'show', 'default']), /default via 169\.254\.1\.1 dev eth0/, 'pod default route via the link-local gateway');
    }
    t.same(list.find((x) => x.name === 'shop/b')?.labels, { app: 'b', tier: 'db' }, 'labels recorded');
    t.not(a.ip, b.ip, 'distinct addresses');
  });

  step('pod to pod: ICMP, TCP and UDP through the BPF redirect', async (t) => {
    const before = counters(node);

    const p = await ping(podA, b.ip, { count: 3 });
    t.equal(p.status, 0, `ping ${b.ip} from pod a`, { output: p.stdout + p.stderr });
    t.match(p.stdout, /3 received/, 'all three echo replies');
    const p2 = await ping(podB, a.ip, { count: 2 });
    t.equal(p2.status, 0, `ping ${a.ip} from pod b`, { output: p2.stdout + p2.stderr });

    const data = randomBytes(1 << 20);
    const tcp = await tcpSink(t, podB, b.ip, 5201);
    const sent = await tcpSend(podA, b.ip, 5201, data);
    t.equal(sent.status, 0, 'TCP client sent 1 MiB', { stderr: sent.stderr });
    await tcp.waitFor(() => tcp.seen('conn').length > 0, 5000, 'the TCP connection to finish').catch((e) => t.fail(String(e)));
    t.match(tcp.seen('conn')[0], { remote: a.ip, bytes: data.length, sha256: sha256(data) }, 'server received exactly the bytes sent, from pod a');
    tcp.stop();

    const msgs = Array.from({ length: 20 }, (_, i) => `sluice-udp-${i}-${randomBytes(8).toString('hex')}`);
    const udp = await udpSink(t, podA, a.ip, 5202);
    const us = await udpSend(podB, a.ip, 5202, msgs);
    t.equal(us.status, 0, 'UDP client sent 20 datagrams', { stderr: us.stderr });
    await udp.waitFor(() => udp.seen('msg').length >= msgs.length, 5000, 'all datagrams').catch((e) => t.fail(String(e)));
    t.same(udp.seen('msg').map((m) => m.data), msgs, 'every datagram arrived, in order, with its content');
    t.ok(udp.seen('msg').every((m) => m.from === b.ip), 'datagrams came from pod b');
    udp.stop();

    const after = counters(node);
    const fwd = delta(before, after, 'forward_local');
    t.ok(fwd.packets >= 3 * 2 + 2 * 2 + 20 + (1 << 20) / 65536, `forward_local counted the pod-to-pod packets (${fwd.packets})`);
    t.ok(fwd.bytes >= (1 << 20), `forward_local counted at least the 1 MiB stream (${fwd.bytes} bytes)`);
    t.equal(delta(before, after, 'to_stack').packets, 0, 'no pod-to-pod packet went to the host stack');
    t.equal(delta(before, after, 'to_pod').packets, 0, 'nothing reached the pods through the host stack');
    for (const [reason, c] of after) if (reason.startsWith('drop_')) t.equal(c.packets - (before.get(reason)?.packets ?? 0), 0, `no ${reason} drops`);
  });

  step('node and pods reach each other (to_pod / to_stack)', async (t) => {
    const before = counters(node);
    const p = await ping(node.ns, a.ip, { count: 3 });
    t.equal(p.status, 0, 'ping from the node to pod a', { output: p.stdout + p.stderr });
    const mid = counters(node);
    t.ok(delta(before, mid, 'to_pod').packets >= 3, 'echo requests counted as to_pod');
    t.ok(delta(before, mid, 'to_stack').packets >= 3, 'echo replies counted as to_stack');

    const q = await ping(podB, UPLINK_ADDR, { count: 3 });
    t.equal(q.status, 0, `ping the node's ${UPLINK_ADDR} from pod b`, { output: q.stdout + q.stderr });
    const after = counters(node);
    t.ok(delta(mid, after, 'to_stack').packets >= 3, 'echo requests counted as to_stack');
    t.ok(delta(mid, after, 'to_pod').packets >= 3, 'echo replies counted as to_pod');
    t.equal(delta(before, after, 'forward_local').packets, 0, 'nothing node-bound was redirected to a pod');

    // A TCP stream from pod to node as well: the host stack path carries real data.
    const data = randomBytes(256 << 10);
    const srv = await tcpSink(t, node.ns, UPLINK_ADDR, 5203);
    const sent = await tcpSend(podA, UPLINK_ADDR, 5203, data);
    t.equal(sent.status, 0, 'TCP pod a -> node', { stderr: sent.stderr });
    await srv.waitFor(() => srv.seen('conn').length > 0, 5000, 'the TCP connection to finish').catch((e) => t.fail(String(e)));
    t.match(srv.seen('conn')[0], { remote: a.ip, bytes: data.length, sha256: sha256(data) }, 'node received the stream intact');
    srv.stop();
  });

  step('a pod cannot send from an address it was not given', async (t) => {
    mustSh('ip', ['-n', podA, 'addr', 'add', `${SPOOF_ADDR}/32`, 'dev', 'eth0']);
    t.teardown(() => {
      sh('ip', ['-n', podA, 'addr', 'del', `${SPOOF_ADDR}/32`, 'dev', 'eth0']);
    });
    const before = counters(node);

    const [tcp, udp] = await Promise.all([tcpSink(t, podB, '0.0.0.0', 5204), udpSink(t, podB, '0.0.0.0', 5205)]);
    // The three probes wait for timeouts, so they run side by side.
    const [p, s, u] = await Promise.all([
      ping(podA, b.ip, { count: 2, source: SPOOF_ADDR, waitS: 1 }),
      tcpSend(podA, b.ip, 5204, Buffer.from('spoofed'), { localAddress: SPOOF_ADDR, timeoutMs: 1500 }),
      udpSend(podA, b.ip, 5205, ['spoofed-1', 'spoofed-2'], { localAddress: SPOOF_ADDR }),
    ]);
    t.not(p.status, 0, `ping -I ${SPOOF_ADDR} fails`);
    t.match(p.stdout, /0 received/, 'no reply');
    t.not(s.status, 0, 'TCP connect from the spoofed address fails');
    t.equal(u.status, 0, 'spoofed datagrams left the pod');

    // The real address still works, on the same ports.
    const ok = await ping(podA, b.ip, { count: 2 });
    t.equal(ok.status, 0, 'ping from the real address still works', { output: ok.stdout + ok.stderr });
    const good = await tcpSend(podA, b.ip, 5204, Buffer.from('genuine'));
    t.equal(good.status, 0, 'TCP from the real address works', { stderr: good.stderr });
    await udpSend(podA, b.ip, 5205, ['genuine']);
    await udp.waitFor(() => udp.seen('msg').length > 0, 3000, 'the genuine datagram').catch((e) => t.fail(String(e)));
    await tcp.waitFor(() => tcp.seen('conn').length > 0, 3000, 'the genuine connection').catch((e) => t.fail(String(e)));
    t.same(udp.seen('msg').map((m) => m.data), ['genuine'], 'only the genuine datagram arrived');
    t.same(tcp.seen('conn').map((c) => c.remote), [a.ip], 'only the genuine connection arrived');
    tcp.stop();
    udp.stop();

    const after = counters(node);
    const spoofed = delta(before, after, 'drop_spoofed_ip').packets;
    t.ok(spoofed >= 2 + 1 + 2, `drop_spoofed_ip counted the spoofed packets (${spoofed})`);
  });

  step('endpoint del removes veth, route, map entry and address', async (t) => {
    const gone = b;
    const out = node.must(['endpoint', 'del', String(gone.id)]);
    t.match(out, new RegExp(`deleted endpoint ${gone.id} ${gone.name}`), 'del by id reports what it removed');
    t.notOk(linkNames(node.ns).includes(gone.hostIfname), 'host veth gone');
    t.notOk(linkNames(podB).includes('eth0'), 'pod side gone');
    t.notOk(routeDsts(node.ns).includes(gone.ip), 'host /32 route gone');
    const entries = node.json<BpfEndpointRow[]>(['bpf', 'endpoints']);
    t.notOk(entries.some((e) => e.ip === gone.ip), 'sl_endpoints entry gone');
    t.ok(entries.some((e) => e.ip === a.ip), 'the other endpoint is still in sl_endpoints');
    t.match(entries.find((e) => e.ip === a.ip), { pod: a.name, device: a.hostIfname, labels: null }, 'sl_endpoints decoded: the pod and its host veth by name (no identity without an agent)');
    t.same(node.json<EndpointJson[]>(['endpoint', 'list']).map((e) => e.name), [a.name], 'only pod a is listed');
    t.ok(existsSync(join(node.pinRoot, 'links', `${gone.hostIfname}-ingress`)) === false
      && existsSync(join(node.pinRoot, 'links', `${gone.hostIfname}-egress`)) === false, 'no tcx link pin left for it');

    // Its address is free again: the next add gets it back.
    b = add(podB, 'shop/b', 'app=b,tier=db');
    t.equal(b.ip, gone.ip, 'a new add gets the freed address');
    const p = await ping(podA, b.ip, { count: 2 });
    t.equal(p.status, 0, 'the re-added pod is reachable', { output: p.stdout + p.stderr });

    // And by name.
    const byName = JSON.parse(node.must(['endpoint', 'del', 'shop/b', '-o', 'json'])) as EndpointJson;
    t.equal(byName.name, 'shop/b', 'del by NAMESPACE/NAME');
    t.notOk(linkNames(node.ns).includes(byName.hostIfname), 'host veth gone');
    b = add(podB, 'shop/b', 'app=b,tier=db');
    t.equal(b.ip, gone.ip, 'address reused again');
  });

  step('node init is idempotent and keeps endpoints working', async (t) => {
    const endpointsBefore = node.json<EndpointJson[]>(['endpoint', 'list']);
    const mapBefore = node.json<BpfEndpointRow[]>(['bpf', 'endpoints']);
    // The node was initialised once at the start: this is the second time.
    const r = node.sluice(['node', 'init', '-o', 'json']);
    t.equal(r.status, 0, 'node init again succeeds', { stderr: r.stderr });
    if (r.status === 0) t.equal((JSON.parse(r.stdout) as { reattached: number }).reattached, 2, 're-attached both endpoints');
    t.same(node.json<EndpointJson[]>(['endpoint', 'list']), endpointsBefore, 'endpoints unchanged');
    const sortByIp = (r: BpfEndpointRow[]) => [...r].sort((x, y) => x.ip.localeCompare(y.ip));
    t.same(sortByIp(node.json<BpfEndpointRow[]>(['bpf', 'endpoints'])), sortByIp(mapBefore), 'sl_endpoints unchanged');

    const before = counters(node);
    const p = await ping(podA, b.ip, { count: 2 });
    t.equal(p.status, 0, 'pod to pod ping after re-init', { output: p.stdout + p.stderr });
    const data = randomBytes(128 << 10);
    const srv = await tcpSink(t, podA, a.ip, 5206);
    const s = await tcpSend(podB, a.ip, 5206, data);
    t.equal(s.status, 0, 'pod to pod TCP after re-init', { stderr: s.stderr });
    await srv.waitFor(() => srv.seen('conn').length > 0, 5000, 'the TCP connection').catch((e) => t.fail(String(e)));
    t.match(srv.seen('conn')[0], { bytes: data.length, sha256: sha256(data) }, 'stream intact');
    srv.stop();
    const n = await ping(node.ns, b.ip, { count: 1 });
    t.equal(n.status, 0, 'node to pod after re-init');
    const after = counters(node);
    t.ok(delta(before, after, 'forward_local').packets >= 4, 'still forwarded by the datapath (forward_local)');
    t.ok(delta(before, after, 'to_pod').packets >= 1, 'still delivered by the datapath (to_pod)');
  });

  step('node reset leaves nothing behind', async (t) => {
    const r = node.sluice(['node', 'reset', '-o', 'json']);
    t.equal(r.status, 0, 'node reset succeeds', { stderr: r.stderr });
    if (r.status === 0) {
      t.match(JSON.parse(r.stdout), { endpoints: ['shop/a', 'shop/b'], pins: true, stateDir: true, runDir: true }, 'reported what it removed');
    }
    t.same(linkNames(node.ns).filter((l) => l.startsWith('sl')), [], 'no sl* device in the node namespace');
    t.same(routeDsts(node.ns).filter((d) => d.startsWith('10.244.')), [], 'no pod route in the node namespace');
    t.same(routeDsts(node.ns).sort(), ['198.18.0.0/24', 'default'], "the node's own routes are untouched");
    t.ok(linkNames(node.ns).includes(uplink), 'the uplink is untouched');
    t.notOk(linkNames(podA).includes('eth0'), 'pod a has no eth0');
    t.notOk(linkNames(podB).includes('eth0'), 'pod b has no eth0');
    t.notOk(existsSync(node.pinRoot), `pin root ${node.pinRoot} is gone`);
    t.notOk(existsSync(node.stateDir), 'state dir is gone');
    t.notOk(existsSync(node.runDir), 'run dir is gone');

    const again = node.sluice(['node', 'reset']);
    t.equal(again.status, 0, 'a second node reset succeeds', { stderr: again.stderr });
    t.notOk(existsSync(node.pinRoot), 'and creates nothing');
    t.same(node.json<EndpointJson[]>(['endpoint', 'list']), [], 'no endpoints listed');
  });

  step('no firewall rule changed, in the root or the node namespace', async (t) => {
    t.same(firewall(null), rootFwBefore, 'root namespace: iptables-save and nft list ruleset unchanged');
    t.same(firewall(node.ns), nodeFwBefore, 'node namespace: iptables-save and nft list ruleset unchanged');
  });
}
