/**
 * Upgrading a running node across a map layout change, with live traffic.
 *
 * The lab comes up from the build of OLD_LAYOUT (conntrack layout 1: map sl_ct), taken from
 * this repository's history; pods ping each other through a policy that makes conntrack
 * matter: pod a admits no ingress at all, so what it gets passes only as the replies of a
 * tracked flow. Pings go on through the upgrade, and so do two UDP flows that only reply
 * (b and c stream numbered datagrams to a after a's one datagram): a packet of theirs
 * passes only if the upgraded datapath knows the flow from before. `lab restart --upgrade` then starts every agent from this build: the agent
 * loads the new datapath (sl_ct_v2) over the old one, copies the flows, attaches, and
 * retires sl_ct. Every echo request before, during and after must get its reply, the flows
 * must be the same entries (their packet counts carried over, each naming its endpoints),
 * the counters of sl_metrics must go on from where they were, and sl_ct must be gone.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IS_ROOT, REPO, sh, tempDir, uniquePrefix } from '../helpers/env.js';
import { downAtTeardown, must, sluice } from '../helpers/lab.js';
import { background } from '../helpers/spawn.js';
import type { LabStatus } from '../../src/lab/status.js';

/** The last commit whose datapath has conntrack layout 1 (map sl_ct, struct sl_ct_entry of 32 bytes). */
const OLD_LAYOUT = 'f809cc11b91d805f08bb6c99e640c4a0bf1a8ec5';

if (!IS_ROOT) {
  t.plan(0, 'needs root');
  process.exit(0);
}
t.setTimeout(600_000);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const NO_INGRESS = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-no-ingress, namespace: x}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
`;

/** The old build: its tree from git, this checkout's node_modules, compiled with this checkout's tsc. */
function oldBuild(dir: string): string {
  const have = sh('git', ['-C', REPO, 'cat-file', '-e', `${OLD_LAYOUT}^{commit}`]);
  if (have.status !== 0) {
    throw new Error(`the upgrade test builds commit ${OLD_LAYOUT} from this repository's history, which this clone lacks `
      + '(a shallow clone? `git fetch --unshallow`)');
  }
  mkdirSync(dir, { recursive: true });
  execFileSync('sh', ['-c', `git -C '${REPO}' archive ${OLD_LAYOUT} | tar -x -C '${dir}'`]);
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  execFileSync(process.execPath, [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(dir, 'tsconfig.json')], { stdio: 'inherit' });
  return join(dir, 'bin', 'sluice.js');
}

/** bpftool prints an sl_ipv4_t as the number its bytes make on this (little-endian) machine. */
interface CtRow { key: { saddr: number; daddr: number; sport: number; protocol: number }; value: Record<string, unknown> }
const asDumped = (ip: string) => ip.split('.').reduce((n, x, i) => n + Number(x) * 2 ** (8 * i), 0);

/** sl_ct (layout 1) or sl_ct_v2 of a lab node, as bpftool dumps it with BTF. */
function ctDump(netns: string, pinRoot: string, map: string): CtRow[] {
  const path = join(pinRoot, map);
  if (!existsSync(path)) return [];
  const r = sh('nsenter', [`--net=${netns}`, 'bpftool', '-j', 'map', 'dump', 'pinned', path]);
  if (r.status !== 0) throw new Error(`bpftool map dump ${path}: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { formatted: CtRow }[]).map((e) => e.formatted);
}

function forwardLocal(lab: string, node: string): number {
  const r = must(['lab', 'exec', '--name', lab, '--node', node, '--', 'sluice', 'bpf', 'metrics', '-o', 'json']);
  return (JSON.parse(r.stdout) as { reason: string; packets: number }[]).filter((x) => x.reason === 'forward_local').reduce((a, x) => a + Number(x.packets), 0);
}

/** Endpoint ids by address, as a node's sl_endpoints holds them. */
function endpointIds(lab: string, node: string): Map<string, number> {
  const r = must(['lab', 'exec', '--name', lab, '--node', node, '--', 'sluice', 'bpf', 'endpoints', '-o', 'json']);
  return new Map((JSON.parse(r.stdout) as { ip: string; id: number }[]).map((e) => [e.ip, e.id]));
}

/** Answers one datagram with a numbered datagram every 10 ms, forever: a flow that only replies. */
const UDP_STREAMER = `const s = require('dgram').createSocket('udp4');
s.bind(Number(process.argv[1]));
s.on('message', (m, r) => { let i = 0; setInterval(() => s.send(String(++i), r.port, r.address), 10); });`;
/** Sends one datagram and prints the number of every one that comes back. */
const UDP_LISTENER = `const s = require('dgram').createSocket('udp4');
s.on('message', (m) => console.log('[' + Date.now() / 1000 + '] seq=' + m.toString()));
s.send('go', Number(process.argv[2]), process.argv[1]);`;

/**
 * A run's output ("[SECONDS] ... seq=N" lines: ping -D, the listener): the numbers missing
 * up to the last one seen, and when the last one came (ms since the epoch).
 */
function gaps(out: string): { last: number; lastAt: number; lost: number[] } {
  const seen = [...out.matchAll(/^\[(\d+(?:\.\d+)?)\].*\b(?:icmp_)?seq=(\d+)/gm)].map((m) => ({ at: Number(m[1]) * 1000, seq: Number(m[2]) }));
  const seqs = new Set(seen.map((x) => x.seq));
  const last = Math.max(0, ...seqs);
  const lost: number[] = [];
  for (let s = 1; s <= last; s++) if (!seqs.has(s)) lost.push(s);
  return { last, lastAt: Math.max(0, ...seen.map((x) => x.at)), lost };
}

t.test('a node upgraded from conntrack layout 1 to 2 under live traffic loses nothing', async (tt) => {
  const lab = uniquePrefix('up');
  const dir = tempDir(tt, `${lab}o`);
  const oldSluice = oldBuild(join(dir, 'old'));
  downAtTeardown(tt, lab);
  const up = execFileSync(process.execPath, [oldSluice, 'lab', 'up', '--name', lab, '-f', join(REPO, 'examples', 'lab', 'two-nodes.yaml'), '--store', 'file', '-o', 'json'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const status = JSON.parse(up) as LabStatus;
  const [n1, n2] = status.nodes;
  const pod = (name: string) => status.pods.find((p) => p.name === `x/${name}`)!;
  const [a, b, c] = [pod('a'), pod('b'), pod('c')].map((p) => ({ ...p, ip: p.ip! }));
  tt.ok(existsSync(join(n1!.pinRoot, 'sl_ct')) && !existsSync(join(n1!.pinRoot, 'sl_ct_v2')), 'the old build runs conntrack layout 1 (sl_ct)');

  writeFileSync(join(dir, 'policy.yaml'), NO_INGRESS);
  must(['lab', 'exec', '--name', lab, '--node', n1!.name, '--', 'sluice', 'policy', 'apply', '-f', join(dir, 'policy.yaml')]);
  await sleep(1500);
  tt.not(sh('nsenter', [`--net=${b.netns}`, 'ping', '-n', '-c', '1', '-W', '1', a.ip]).status, 0, 'a admits no new flow: b cannot ping it');

  // a pings b (same node) and c (across the overlay) every 10 ms; their replies pass as replies only.
  const toB = background(tt, a.netns, ['ping', '-n', '-D', '-i', '0.01', '-W', '2', b.ip]);
  const toC = background(tt, a.netns, ['ping', '-n', '-D', '-i', '0.01', '-W', '2', c.ip]);
  const streamers = [b, c].map((p) => background(tt, p.netns, [process.execPath, '-e', UDP_STREAMER, '7001']));
  await sleep(500);
  const fromB = background(tt, a.netns, [process.execPath, '-e', UDP_LISTENER, b.ip, '7001']);
  const fromC = background(tt, a.netns, [process.execPath, '-e', UDP_LISTENER, c.ip, '7001']);
  await sleep(2000);
  const before = { n1: ctDump(n1!.netns, n1!.pinRoot, 'sl_ct'), n2: ctDump(n2!.netns, n2!.pinRoot, 'sl_ct'), forwarded: forwardLocal(lab, n1!.name) };
  // An echo flow (its id in the ports), not an ICMP error the end of the UDP runs may cause.
  const flow = (rows: CtRow[], src: string, dst: string) => rows.find((r) => r.key.saddr === asDumped(src) && r.key.daddr === asDumped(dst) && r.key.protocol === 1 && r.key.sport !== 0);
  tt.ok(flow(before.n1, a.ip, b.ip) && flow(before.n1, a.ip, c.ip) && flow(before.n2, a.ip, c.ip), 'the flows are tracked in sl_ct on both nodes');

  const started = Date.now();
  const r = sluice(['lab', 'restart', '--name', lab, '--upgrade']);
  tt.equal(r.status, 0, `lab restart --upgrade: ${r.stderr.trim()}`);
  const upgraded = Date.now();
  const upgradeMs = upgraded - started;
  await sleep(2000);
  const stopped = Date.now();
  for (const p of [toB, toC, fromB, fromC, ...streamers]) await p.stop();

  for (const [what, p] of [['ping a -> b (same node)', toB], ['ping a -> c (across nodes)', toC], ['UDP replies b -> a (same node)', fromB], ['UDP replies c -> a (across nodes)', fromC]] as const) {
    const m = gaps(p.out());
    tt.ok(m.lastAt > upgraded + 1000 && m.lastAt > stopped - 500, `${what}: still flowing 2 s after the upgrade (last packet ${stopped - m.lastAt} ms before the stop)`);
    tt.same(m.lost, [], `${what}: not one of ${m.last} lost over the ${upgradeMs} ms upgrade and 4.5 s around it`);
  }

  const after = { n1: ctDump(n1!.netns, n1!.pinRoot, 'sl_ct_v2'), n2: ctDump(n2!.netns, n2!.pinRoot, 'sl_ct_v2') };
  tt.notOk(existsSync(join(n1!.pinRoot, 'sl_ct')) || existsSync(join(n2!.pinRoot, 'sl_ct')), 'sl_ct is retired on both nodes');
  const ids = new Map([...endpointIds(lab, n1!.name), ...endpointIds(lab, n2!.name)]);
  const id = (p: typeof a) => ids.get(p.ip) ?? -1;
  for (const [node, src, dst, rows, old, ep] of [
    ['n1', a, b, after.n1, before.n1, [id(a), id(b)]],
    ['n1', a, c, after.n1, before.n1, [id(a), 0]],
    ['n2', a, c, after.n2, before.n2, [0, id(c)]],
  ] as const) {
    const now = flow(rows, src.ip, dst.ip);
    const then = flow(old, src.ip, dst.ip)!;
    tt.ok(now && Number(now.value.packets) > Number(then.value.packets), `${node}: the flow ${src.name} -> ${dst.name} went on in sl_ct_v2 from its count in sl_ct (${then.value.packets} -> ${now?.value.packets})`);
    tt.same(now && [now.value.src_ep, now.value.dst_ep], ep, `${node}: it names the endpoints it was admitted for (${ep.join(', ')})`);
  }
  tt.ok(forwardLocal(lab, n1!.name) > before.forwarded, 'sl_metrics went on counting from where it was (the map is the same)');
  tt.equal(sh('nsenter', [`--net=${b.netns}`, 'ping', '-n', '-c', '1', '-W', '1', a.ip]).status === 0, false, 'the policy still holds after the upgrade: b cannot ping a');
});
