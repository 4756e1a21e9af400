/**
 * The demo: one sluice node in its own network namespace with three pods, shown step by
 * step with the commands a user would type. Everything it creates carries the prefix
 * "sldemo" and is removed at the end, also when a step fails.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createNetns, deleteNetns, listNetns } from '../net/netns.js';
import { ipBatch } from '../net/ip.js';
import { unpin } from '../sys/bpffs.js';
import { PACKAGE_ROOT } from '../datapath/paths.js';

const PREFIX = 'sldemo';
const NODE_NS = `${PREFIX}-node`;
const PIN_ROOT = `/sys/fs/bpf/${PREFIX}`;
/** RFC 2544 benchmarking range: not used by this machine (checked below). */
const UPLINK_ADDR = '198.18.0.1/24';

interface Pod { ns: string; name: string; labels: string; ip?: string }

const PODS: readonly Pod[] = [
  { ns: `${PREFIX}-web`, name: 'shop/web', labels: 'app=web' },
  { ns: `${PREFIX}-db`, name: 'shop/db', labels: 'app=db' },
  { ns: `${PREFIX}-cache`, name: 'shop/cache', labels: 'app=cache' },
];

const say = (s = '') => process.stdout.write(`${s}\n`);
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);

function sh(cmd: string, args: string[], o: { show?: boolean; allowFail?: boolean } = {}): { status: number; out: string } {
  if (o.show !== false) say(bold(`$ ${[cmd, ...args].join(' ')}`));
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (o.show !== false && out.trim()) say(out.trimEnd().split('\n').map((l) => `  ${l}`).join('\n'));
  if (r.status !== 0 && !o.allowFail) throw new Error(`${cmd} ${args.join(' ')} failed: ${out.trim()}`);
  return { status: r.status ?? -1, out };
}

function inNs(ns: string, cmd: string, args: string[], o: { show?: boolean; allowFail?: boolean } = {}) {
  return sh('nsenter', [`--net=/run/netns/${ns}`, cmd, ...args], o);
}

export async function runDemo(o: { keep?: boolean } = {}): Promise<void> {
  cleanup(PODS, undefined, true);
  const dir = mkdtempSync(join(tmpdir(), `${PREFIX}-`));
  const cfgPath = join(dir, 'config.yaml');
  writeFileSync(cfgPath, [
    'nodeName: demo',
    `pinRoot: ${PIN_ROOT}`,
    `stateDir: ${join(dir, 'state')}`,
    `runDir: ${join(dir, 'run')}`,
    'clusterCIDR: 10.244.0.0/16',
    'blockSize: 24',
    '',
  ].join('\n'));
  const sluice = [process.execPath, join(PACKAGE_ROOT, 'bin', 'sluice.js'), '--config', cfgPath];
  const cli = (args: string[], show = true) => inNs(NODE_NS, sluice[0]!, [...sluice.slice(1), ...args], { show });
  const pods: Pod[] = PODS.map((p) => ({ ...p }));
  try {
    say(bold('== A sluice node in network namespace sldemo-node, with an uplink ==') );
    createNetns(NODE_NS);
    // The node's uplink: one end of a veth pair (this kernel may lack the dummy driver).
    ipBatch(['link set lo up', 'link add uplink0 type veth peer name uplink0-peer', `addr add ${UPLINK_ADDR} dev uplink0`,
      'link set uplink0-peer up', 'link set uplink0 up', 'route add default via 198.18.0.254 dev uplink0'], `/run/netns/${NODE_NS}`);
    say(`config (${cfgPath}):`);
    say(sh('cat', [cfgPath], { show: false }).out.trimEnd().split('\n').map((l) => `  ${l}`).join('\n'));
    say();
    say(bold('== Build and load the eBPF datapath =='));
    cli(['node', 'init']);
    say();
    say(bold('== Three pods (network namespaces), each with a veth, a /32 and the tc programs =='));
    for (const p of pods) {
      createNetns(p.ns);
      const r = cli(['endpoint', 'add', '--netns', p.ns, '--name', p.name, '--labels', p.labels, '-o', 'json'], false);
      p.ip = (JSON.parse(r.out) as { ip: string }).ip;
      say(bold(`$ sluice endpoint add --netns ${p.ns} --name ${p.name} --labels ${p.labels}`));
      say(`  ${p.name} got ${p.ip}`);
    }
    cli(['endpoint', 'list']);
    say();
    say(bold('== Inside a pod: a /32 and a default route through the link-local gateway =='));
    inNs(pods[0]!.ns, 'ip', ['-4', '-br', 'addr']);
    inNs(pods[0]!.ns, 'ip', ['route']);
    say();
    say(bold('== Pod to pod on the same node: ARP answered in BPF, packets by bpf_redirect_peer =='));
    inNs(pods[0]!.ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', pods[1]!.ip!]);
    inNs(pods[1]!.ns, 'ip', ['neigh']);
    say();
    say(bold('== TCP and UDP between pods (iperf3, 2 seconds each) =='));
    const server = spawnServer(pods[1]!.ns);
    try {
      inNs(pods[0]!.ns, 'iperf3', ['-c', pods[1]!.ip!, '-t', '2', '-f', 'g']);
    } finally {
      server.kill();
    }
    const udp = spawnServer(pods[2]!.ns);
    try {
      inNs(pods[0]!.ns, 'iperf3', ['-c', pods[2]!.ip!, '-u', '-b', '100M', '-t', '2']);
    } finally {
      udp.kill();
    }
    say();
    say(bold('== The node reaches its pods through /32 routes =='));
    inNs(NODE_NS, 'ip', ['route']);
    inNs(NODE_NS, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', pods[2]!.ip!]);
    say();
    say(bold('== Anti-spoofing: a second address added inside a pod gets nowhere =='));
    inNs(pods[0]!.ns, 'ip', ['addr', 'add', '10.244.0.200/32', 'dev', 'eth0']);
    inNs(pods[0]!.ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '1', '-I', '10.244.0.200', pods[1]!.ip!], { allowFail: true });
    say();
    say(bold('== Every map is pinned and BTF-typed: bpftool prints field names =='));
    sh('bpftool', ['map', 'dump', 'pinned', `${PIN_ROOT}/sl_endpoints`]);
    say();
    say(bold('== Per-reason counters (sl_metrics, summed over CPUs) =='));
    cli(['bpf', 'metrics']);
  } finally {
    if (o.keep) {
      say(`\nkept: netns ${NODE_NS} and ${pods.map((p) => p.ns).join(', ')}, config ${cfgPath}; remove them with \`sluice demo --cleanup\``);
    } else {
      say();
      say(bold('== Clean up: node reset removes devices, routes, pins and state =='));
      cleanup(pods, dir, false, cli);
    }
  }
}

/** An iperf3 server for one test inside `ns`; killed by the caller. */
function spawnServer(ns: string): ChildProcess {
  const p = spawn('nsenter', [`--net=/run/netns/${ns}`, 'iperf3', '-s', '-1'], { stdio: 'ignore' });
  spawnSync('sleep', ['0.5']);
  return p;
}

export function cleanup(pods: readonly { ns: string }[], dir: string | undefined, quiet: boolean, cli?: (args: string[], show?: boolean) => unknown): void {
  const existing = new Set(listNetns());
  if (existing.has(NODE_NS) && cli) {
    try { cli(['node', 'reset']); } catch (e) { say(`  node reset: ${(e as Error).message}`); }
  }
  for (const ns of [...pods.map((p) => p.ns), NODE_NS]) if (existing.has(ns)) deleteNetns(ns);
  for (const ns of existing) if (ns.startsWith(`${PREFIX}-`)) deleteNetns(ns);
  unpin(PIN_ROOT);
  if (dir) rmSync(dir, { recursive: true, force: true });
  // State directories of earlier demos that were interrupted.
  for (const d of readdirSync(tmpdir())) if (d.startsWith(`${PREFIX}-`) && join(tmpdir(), d) !== dir) rmSync(join(tmpdir(), d), { recursive: true, force: true });
  if (!quiet) say('  done: no sldemo namespace, device or pin is left');
}
