/**
 * Bad input to the CLI is a clear error that changes nothing: every case exits non-zero,
 * prints `sluice: error: ...` naming what is wrong, and leaves the endpoint list, the
 * address table, the sl_endpoints map and the devices and routes of the node (and of the
 * pods) exactly as they were.
 *
 * Runs the compiled CLI (dist/); build it first with `npx tsc -p tsconfig.json`.
 */
import t, { type Test } from 'tap';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  canRunCliE2e, SLUICE_BIN, inNetns, mustSh, netns, sh, tempDir, testNode, uniquePrefix, type RunResult, type TestNode, setupGate } from '../helpers/env.js';

interface EndpointJson { id: number; name: string; ip: string; hostIfname: string }

function links(ns: string): string[] {
  return (JSON.parse(mustSh('ip', ['-n', ns, '-j', 'link', 'show']) || '[]') as { ifindex: number; ifname: string; operstate: string }[])
    .map((l) => `${l.ifindex}:${l.ifname}:${l.operstate}`);
}

function routes(ns: string): string {
  return mustSh('ip', ['-n', ns, 'route', 'show', 'table', 'all']);
}

function addrs(ns: string): string {
  return mustSh('ip', ['-n', ns, '-4', '-o', 'addr', 'show']);
}

/** Everything a failed command must leave alone. */
function snapshot(node: TestNode, pods: readonly string[]) {
  const endpointsDir = join(node.stateDir, 'endpoints');
  const mapPin = join(node.pinRoot, 'sl_endpoints');
  const map = existsSync(mapPin) ? sh('bpftool', ['-j', 'map', 'dump', 'pinned', mapPin]) : undefined;
  if (map && map.status !== 0) throw new Error(`bpftool map dump ${mapPin}: ${map.stderr}`);
  return {
    list: node.must(['endpoint', 'list', '-o', 'json']),
    ipam: existsSync(join(node.stateDir, 'ipam.json')) ? readFileSync(join(node.stateDir, 'ipam.json'), 'utf8') : null,
    records: existsSync(endpointsDir) ? readdirSync(endpointsDir).sort() : [],
    map: map ? (JSON.parse(map.stdout) as unknown[]).map((e) => JSON.stringify(e)).sort() : null,
    pins: existsSync(node.pinRoot) ? readdirSync(node.pinRoot, { recursive: true }).map(String).sort() : null,
    nodeLinks: links(node.ns),
    nodeRoutes: routes(node.ns),
    nodeNeigh: mustSh('ip', ['-n', node.ns, 'neigh', 'show']),
    pods: Object.fromEntries(pods.map((p) => [p, { links: links(p), addrs: addrs(p), routes: routes(p) }])),
  };
}

type Tap = Test;
type Snapshot = ReturnType<typeof snapshot>;

/** Asserts that `r` is a clean sluice error: non-zero exit, one `sluice: error:` line matching `message`, no output. */
function assertError(t: Tap, r: RunResult, message: RegExp, what = ''): void {
  const w = what ? `${what}: ` : '';
  t.not(r.status, 0, `${w}exit code is non-zero`);
  t.ok(r.stderr.startsWith('sluice: error: '), `${w}stderr starts with "sluice: error:"`, { stderr: r.stderr });
  t.match(r.stderr, message, `${w}the message says what is wrong`, { stderr: r.stderr });
  t.equal(r.stderr.trimEnd().split('\n').length, 1, `${w}one line, no stack trace`);
  t.equal(r.stdout, '', `${w}nothing on stdout`);
}

const UNCHANGED = 'endpoint list, addresses, records, sl_endpoints, pins, and the devices, routes and neighbours of node and pods unchanged';

/** assertError, then that nothing changed. */
function assertCleanError(t: Tap, r: RunResult, message: RegExp, before: Snapshot | undefined, after: () => Snapshot): void {
  assertError(t, r, message);
  t.same(after(), before, UNCHANGED);
}

if (canRunCliE2e(t)) {
  const prefix = uniquePrefix('ce');
  // Created in a subtest: an exception there fails it and teardown still runs (a throw at
  // the top level would skip every teardown and leak namespaces and pins).
  const gate = setupGate(t);
  let node: TestNode;
  let podA: string;
  let podB: string;
  let dir: string;
  const snap = () => snapshot(node, [podA, podB]);

  t.test('setup: a node namespace and two pod namespaces', async () => {
    node = testNode(t, prefix);
    podA = netns(t, `${prefix}-a`);
    podB = netns(t, `${prefix}-b`);
    dir = tempDir(t, `${prefix}-cfg`);
    gate.done();
  });

  const step = gate.step;

  step('endpoint add before node init', async (t) => {
    const before = snap();
    const r = node.sluice(['endpoint', 'add', '--netns', podA, '--name', 'shop/a']);
    assertCleanError(t, r, /not initialised.*run `sluice node init` first/, before, snap);
    t.notOk(existsSync(node.pinRoot), 'no pin root was created');
    t.notOk(existsSync(node.stateDir), 'no state dir was created');
  });

  step('endpoint del before node init', async (t) => {
    const before = snap();
    const r = node.sluice(['endpoint', 'del', '1']);
    assertCleanError(t, r, /no endpoint '1' on node/, before, snap);
    t.notOk(existsSync(node.stateDir), 'no state dir was created');
  });

  let a: EndpointJson | undefined;
  /** The state every failed command below must leave as it found it. */
  let baseline: Snapshot | undefined;
  step('setup: node init and one endpoint', async (t) => {
    node.must(['node', 'init']);
    a = JSON.parse(node.must(['endpoint', 'add', '--netns', podA, '--name', 'shop/a', '-o', 'json'])) as EndpointJson;
    t.equal(a.ip, '10.244.0.1', 'pod a got the first address');
    baseline = snap();
    const host = a.hostIfname;
    t.equal(baseline.nodeLinks.filter((l) => l.includes(`:${host}:`)).length, 1, 'its host veth is there');
  });

  const aIp = () => a?.ip ?? '10.244.0.1';

  const quote = (x: string) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  /** Runs the CLI in the node namespace with a config file that is the node's plus `extra` (or a missing file). */
  const withConfig = (name: string, extra: string | null, args: string[]) => {
    const file = join(dir, `${name}.yaml`);
    if (extra !== null) writeFileSync(file, `${readFileSync(node.config, 'utf8')}${extra}\n`);
    return { file: quote(file), r: inNetns(node.ns, process.execPath, [SLUICE_BIN, '--config', file, ...args]) };
  };
  const addPodB = (...more: string[]) => ['endpoint', 'add', '--netns', podB, '--name', 'shop/b', ...more];

  /**
   * Bad commands against the initialised node. Cases without a group get a subtest each
   * and a full before/after comparison; grouped cases (further variations) share a
   * subtest and one comparison at its end, to keep the file fast.
   */
  const cases: { name: string; group?: string; run: () => RunResult; message: () => RegExp }[] = [
    { name: 'unknown netns', run: () => node.sluice(['endpoint', 'add', '--netns', `${prefix}-nope`, '--name', 'shop/b']), message: () => new RegExp(`network namespace '${prefix}-nope' does not exist`) },
    { name: '--ip outside the block', run: () => node.sluice(addPodB('--ip', '10.245.0.5')), message: () => /10\.245\.0\.5 is outside this node's pod block 10\.244\.0\.0\/24/ },
    { name: '--ip already taken', run: () => node.sluice(addPodB('--ip', aIp())), message: () => new RegExp(`${quote(aIp())} is already allocated`) },
    { name: 'a second add with the same --name', run: () => node.sluice(['endpoint', 'add', '--netns', podB, '--name', 'shop/a']), message: () => /endpoint shop\/a already exists/ },
    { name: 'bad label', run: () => node.sluice(addPodB('--labels', 'bad key=x')), message: () => /label key 'bad key'/ },
    { name: 'endpoint del of an unknown id', run: () => node.sluice(['endpoint', 'del', '999']), message: () => /no endpoint '999' on node/ },
    { name: 'config: bad YAML', run: () => { const c = withConfig('bad-yaml', 'clusterCIDR: [10.244.0.0/16', addPodB()); lastFile = c.file; return c.r; }, message: () => new RegExp(`^sluice: error: ${lastFile}: \\(file\\): not valid YAML`) },
    { name: 'config: unknown key', run: () => { const c = withConfig('unknown-key', 'podCidr: 10.244.0.0/24', addPodB()); lastFile = c.file; return c.r; }, message: () => new RegExp(`^sluice: error: ${lastFile}: podCidr: unknown key`) },
    { name: 'config: bad CIDR', run: () => { const c = withConfig('bad-cidr', 'clusterCIDR: 10.244.0.0/33', addPodB()); lastFile = c.file; return c.r; }, message: () => new RegExp(`^sluice: error: ${lastFile}: clusterCIDR: .*prefix length 33`) },

    { group: 'more bad --netns', name: 'a path that is not a network namespace', run: () => node.sluice(['endpoint', 'add', '--netns', '/etc/hostname', '--name', 'shop/b']), message: () => /\/etc\/hostname.*is not a network namespace/ },
    { group: 'more bad --netns', name: "the node's own namespace", run: () => node.sluice(['endpoint', 'add', '--netns', node.ns, '--name', 'shop/b']), message: () => /node's own network namespace/ },
    { group: 'more bad --netns', name: 'a pod that already has an endpoint', run: () => node.sluice(['endpoint', 'add', '--netns', podA, '--name', 'shop/a2']), message: () => /already has eth0 from endpoint shop\/a/ },
    { group: 'more bad --ip', name: 'the network address', run: () => node.sluice(addPodB('--ip', '10.244.0.0')), message: () => /10\.244\.0\.0 is the network or broadcast address/ },
    { group: 'more bad --ip', name: 'the broadcast address', run: () => node.sluice(addPodB('--ip', '10.244.0.255')), message: () => /10\.244\.0\.255 is the network or broadcast address/ },
    { group: 'more bad --ip', name: 'not an address', run: () => node.sluice(addPodB('--ip', '10.244.0.300')), message: () => /--ip '10\.244\.0\.300' is not an IPv4 address/ },
    { group: 'more bad names, labels and output formats', name: 'bad --name', run: () => node.sluice(['endpoint', 'add', '--netns', podB, '--name', 'Shop/B']), message: () => /endpoint name 'Shop\/B'/ },
    { group: 'more bad names, labels and output formats', name: 'label without a value', run: () => node.sluice(addPodB('--labels', 'app=b,novalue')), message: () => /label 'novalue' is not of the form key=value/ },
    { group: 'more bad names, labels and output formats', name: 'label value too long', run: () => node.sluice(addPodB('--labels', `app=${'x'.repeat(64)}`)), message: () => /label 'app': value 'x+' must be at most 63 characters/ },
    { group: 'more bad names, labels and output formats', name: 'endpoint del of an unknown name', run: () => node.sluice(['endpoint', 'del', 'shop/nope']), message: () => /no endpoint 'shop\/nope' on node/ },
    { group: 'more bad names, labels and output formats', name: 'bad -o', run: () => node.sluice(addPodB('-o', 'yaml')), message: () => /-o yaml: expected table or json/ },
    { group: 'more config errors', name: 'podCIDR not an address', run: () => { const c = withConfig('pod-cidr-bad', 'podCIDR: 10.999.0.0/24', addPodB()); lastFile = c.file; return c.r; }, message: () => new RegExp(`^sluice: error: ${lastFile}: podCIDR: .*10\\.999\\.0\\.0`) },
    { group: 'more config errors', name: 'podCIDR outside the pool', run: () => { const c = withConfig('pod-cidr-out', 'podCIDR: 10.99.0.0/24', addPodB()); lastFile = c.file; return c.r; }, message: () => new RegExp(`^sluice: error: ${lastFile}: podCIDR: 10\\.99\\.0\\.0/24 is not a /24 block of 10\\.244\\.0\\.0/16`) },
    { group: 'more config errors', name: 'blockSize not a number', run: () => { const c = withConfig('block-size', 'blockSize: big', addPodB()); lastFile = c.file; return c.r; }, message: () => new RegExp(`^sluice: error: ${lastFile}: blockSize: expected an integer`) },
    { group: 'more config errors', name: 'missing file', run: () => { const c = withConfig('missing', null, ['endpoint', 'list']); lastFile = c.file; return c.r; }, message: () => new RegExp(`^sluice: error: cannot read config ${lastFile}: ENOENT`) },
  ];
  let lastFile = '';

  for (const c of cases.filter((x) => !x.group)) {
    step(c.name, async (t) => {
      assertCleanError(t, c.run(), c.message(), baseline, snap);
    });
  }
  for (const group of new Set(cases.flatMap((x) => (x.group ? [x.group] : [])))) {
    step(group, async (t) => {
      for (const c of cases.filter((x) => x.group === group)) assertError(t, c.run(), c.message(), c.name);
      t.same(snap(), baseline, UNCHANGED);
    });
  }

  step('usage error: endpoint add without --netns', async (t) => {
    const r = node.sluice(['endpoint', 'add', '--name', 'shop/b']);
    t.not(r.status, 0, 'exit code is non-zero');
    t.match(r.stderr, /required option '--netns <name\|path>' not specified/, 'names the missing option');
    t.ok(r.stderr.startsWith('sluice: error: '), 'stderr starts with "sluice: error:"', { stderr: r.stderr });
    t.same(snap(), baseline, 'nothing changed');
  });

  step('after all the errors, a good add still gets the next address', async (t) => {
    const b = JSON.parse(node.must(['endpoint', 'add', '--netns', podB, '--name', 'shop/b', '-o', 'json'])) as EndpointJson;
    t.equal(b.ip, '10.244.0.2', 'no address leaked to a failed add');
    t.equal(b.id, 2, 'no endpoint id leaked to a failed add');
    t.same((JSON.parse(node.must(['endpoint', 'list', '-o', 'json'])) as EndpointJson[]).map((e) => e.name), ['shop/a', 'shop/b']);
    const ping = inNetns(podB, 'ping', ['-n', '-c', '1', '-W', '2', aIp()]);
    t.equal(ping.status, 0, 'and the two pods talk', { output: ping.stdout });
  });
}
