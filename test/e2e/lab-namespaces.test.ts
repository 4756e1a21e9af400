/**
 * A new user's lab: `sluice lab up -f examples/lab/two-nodes.yaml` (a labelled namespace)
 * on etcd and on the file store, and sluice run on a node with `lab exec --node`. The
 * lab's store is reachable only inside the lab: while all of this runs, a capture on the
 * machine's own default-route device must see not one packet to or from the lab's
 * addresses, and a command given a node's config in the root namespace is refused before
 * it sends anything.
 *
 * The namespace labels must work, not only be stored: a policy admitting `team=blue`
 * namespaces lets x/a (n1) reach x/c (n2) until x is relabelled `team=red`.
 */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IS_ROOT, REPO, sh, tempDir, uniquePrefix } from '../helpers/env.js';
import { labUp, must, sluice } from '../helpers/lab.js';
import { HAVE_ETCD } from '../helpers/etcd.js';

if (!IS_ROOT) {
  t.plan(0, 'needs root');
  process.exit(0);
}
t.setTimeout(600_000);
const prefix = uniquePrefix('ln');
const EXAMPLE = join(REPO, 'examples/lab/two-nodes.yaml');
/** The lab's default underlay and pod pool. */
const LAB_NETS = ['198.18.0.0/15', '10.244.0.0/16'];

const POLICY = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: blue-only, namespace: x}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Ingress]
  ingress: [{from: [{namespaceSelector: {matchLabels: {team: blue}}}]}]
`;

/** The root namespace's default-route device, if it has one. */
function uplinkDevice(): string | undefined {
  const r = sh('ip', ['-o', 'route', 'show', 'default']);
  return /\bdev (\S+)/.exec(r.stdout)?.[1];
}

interface Capture { stop(): Promise<{ packets: string[]; stderr: string }> }

/** tcpdump on `dev` for packets to or from the lab's networks; resolves once it listens. */
async function capture(tt: Test, dev: string, file: string): Promise<Capture> {
  const filter = LAB_NETS.map((n) => `net ${n}`).join(' or ');
  const p = spawn('tcpdump', ['-i', dev, '-n', '-U', '-w', file, filter], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  p.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<void>((resolve) => p.once('close', () => resolve()));
  tt.teardown(() => { if (p.exitCode === null) p.kill('SIGKILL'); });
  const deadline = Date.now() + 10_000;
  while (!/listening on/.test(stderr)) {
    if (p.exitCode !== null || Date.now() > deadline) throw new Error(`tcpdump on ${dev} did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    async stop() {
      p.kill('SIGINT');
      await exited;
      const read = sh('tcpdump', ['-n', '-r', file]);
      return { packets: read.stdout.split('\n').filter(Boolean), stderr };
    },
  };
}

/** Polls `ok` for up to `ms`; true as soon as it holds. */
async function eventually(ok: () => boolean, ms = 20_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (ok()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 500));
  }
}

const stores = [{ store: 'etcd', skip: !HAVE_ETCD && 'needs /usr/bin/etcd' }, { store: 'file', skip: false }] as const;

for (const { store, skip } of stores) {
  t.test(`lab up -f examples/lab/two-nodes.yaml on ${store}: labelled namespaces, nothing leaves the lab`, { skip }, async (tt) => {
    const dev = uplinkDevice();
    const dir = tempDir(tt, `${prefix}${store[0]}`);
    const cap = dev ? await capture(tt, dev, join(dir, 'uplink.pcap')) : undefined;
    if (!dev) tt.comment('no default route in the root namespace: nothing to capture on');

    const lab = `${prefix}${store[0]}`;
    const { status } = labUp(tt, lab, ['-f', EXAMPLE, '--store', store]);
    tt.equal(status.phase, 'up');
    tt.same(status.namespaces.find((n) => n.name === 'x')?.labels, { team: 'blue' }, 'the namespace and its labels in the status');
    const [n1, n2] = status.nodes;
    const exec = (node: string, args: readonly string[]) => sluice(['lab', 'exec', '--name', lab, '--node', node, '--', 'sluice', ...args]);

    // The labels are in the store, as every node sees them.
    for (const n of [n1!, n2!]) {
      const r = exec(n.name, ['namespace', 'list', '-o', 'json']);
      tt.equal(r.status, 0, `node ${n.name}: namespace list through lab exec --node`);
      tt.same(JSON.parse(r.stdout || '[]'), [{ name: 'x', labels: { team: 'blue' } }], `node ${n.name}: x is team=blue in the store`);
    }

    // A node's config from the root namespace: refused before anything is sent.
    const root = sluice(['--config', n1!.config, 'namespace', 'list']);
    tt.equal(root.status, 1, "a node's config is refused outside the node's namespace");
    tt.match(root.stderr, new RegExp(`node n1 lives in network namespace ${n1!.netns} \\(config key nodeNetns\\) and this command runs in another one.*sluice lab exec \\[--name LAB\\] --node n1 -- sluice`));
    tt.match(readFileSync(n1!.config, 'utf8'), `nodeNetns: ${n1!.netns}`, 'the lab writes nodeNetns into each node config');

    // The labels work: namespaceSelector team=blue admits x/a (n1) to x/c (n2), across nodes.
    const file = join(dir, 'blue-only.yaml');
    writeFileSync(file, POLICY);
    const applied = exec('n1', ['policy', 'apply', '-f', file]);
    tt.equal(applied.status, 0, `policy apply through lab exec --node n1`);
    const c = status.pods.find((p) => p.name === 'x/c')!;
    const ping = () => sluice(['lab', 'exec', '--name', lab, 'x/a', '--', 'ping', '-c', '1', '-W', '1', c.ip!]).status === 0;
    tt.ok(await eventually(ping), 'x/a reaches x/c: its namespace is team=blue');
    const relabel = exec('n2', ['namespace', 'label', 'x', 'team=red']);
    tt.equal(relabel.status, 0, `namespace label through lab exec --node n2`);
    tt.ok(await eventually(() => !ping()), 'relabelled team=red: x/a no longer reaches x/c');

    const exitCode = sluice(['lab', 'exec', '--name', lab, '--node', 'n1', '--', 'sluice', 'namespace', 'label', 'Bad_Name', 'a=b']);
    tt.equal(exitCode.status, 1, "sluice's exit status comes back through lab exec");
    tt.match(exitCode.stderr, /namespace 'Bad_Name' is not a valid name/);

    must(['lab', 'down', '--name', lab]);
    if (cap) {
      const { packets, stderr } = await cap.stop();
      tt.match(stderr, new RegExp(`listening on ${dev}`), `the capture ran on ${dev}`);
      tt.same(packets, [], `not one packet to or from ${LAB_NETS.join(', ')} on ${dev}`);
    }
  });
}
