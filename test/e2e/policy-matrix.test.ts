/**
 * The NetworkPolicy connectivity matrix, end to end: three namespaces × three pods spread
 * over two lab nodes, plus a host outside the cluster on the underlay. Every participant
 * serves TCP and UDP on ports 80 and 81 and probes every other one on all four. Under each
 * scenario (default deny, allow by pod, by namespace, by both, by CIDR with except, by
 * port, named port, port range, egress, ipBlocks over pods' addresses (two pods of one
 * identity told apart), labels changed at run time, and all of them at once) the measured matrix must equal what the reference evaluator decides from the same
 * policies, labels and ports, cell by cell; hand-picked cells per scenario check that the
 * evaluator says what the API means. Run in vxlan mode, then again after switching the
 * running cluster to direct routing.
 */
import t, { type Test } from 'tap';
import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { IS_ROOT, SLUICE_BIN, mustSh, netns, tempDir, uniquePrefix } from '../helpers/env.js';
import { inNs, labStatus, labUp, must } from '../helpers/lab.js';
import { allCells, cellName, diff, measure, startPeer, type Participant, type Peer, type Proto } from '../helpers/matrix.js';
import { parsePolicies } from '../../src/policy/parse.js';
import { createCluster, evaluate, type Endpoint } from '../../src/policy/evaluate.js';
import type { Labels } from '../../src/util/labels.js';
import type { PodPort } from '../../src/endpoint/ports.js';
import type { LabStatus } from '../../src/lab/status.js';

if (!IS_ROOT) {
  t.plan(0, 'needs root');
  process.exit(0);
}
t.setTimeout(900_000);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const SERVICES: { protocol: Proto; port: number }[] = [
  { protocol: 'TCP', port: 80 }, { protocol: 'TCP', port: 81 }, { protocol: 'UDP', port: 80 }, { protocol: 'UDP', port: 81 },
];
const PROBE_TIMEOUT_MS = 1500;
const CONVERGE_MS = 25_000;

/** http is 80 on x and z and 81 on y (a named port resolves per destination pod); dns is UDP 81 everywhere. */
const portsOf = (pod: string): string =>
  `[{name: http, port: ${pod === 'y' ? 81 : 80}}, {name: dns, port: 81, protocol: UDP}]`;
const PODS = ['x', 'y', 'z'];
const NAMESPACES = ['a', 'b', 'c'];
const placement = (ns: string, pod: string) => ((NAMESPACES.indexOf(ns) * 3 + PODS.indexOf(pod)) % 2 === 0 ? 'n1' : 'n2');

const TOPOLOGY = `mode: vxlan
store: file
nodes: [{name: n1}, {name: n2}]
namespaces: [{name: a, labels: {team: red}}, {name: b, labels: {team: blue}}, {name: c}]
pods:
${NAMESPACES.flatMap((ns) => PODS.map((p) => `  - {name: ${p}, namespace: ${ns}, node: ${placement(ns, p)}, labels: {app: ${p}}, ports: ${portsOf(p)}}`)).join('\n')}
  - {name: w, namespace: a, node: n2, labels: {app: x}, ports: ${portsOf('x')}}
`;

interface Scenario {
  name: string;
  /**
   * NetworkPolicy YAML (documents separated by ---); EXT is replaced by the outside host's
   * address, UNDERLAY by the first underlay subnet, POOL by the pods' /16 and IP(ns/pod) by
   * that pod's address.
   */
  policies: string;
  /** Label changes made after the policies are applied: [kind, target, ...kubectl-style changes]. */
  relabel?: ['namespace' | 'endpoint', string, ...string[]][];
  /** Cells the API's definition decides this way, read by hand ("a/x -> b/y TCP/80"). */
  allowed: string[];
  denied: string[];
}

const policy = (ns: string, name: string, spec: string) => `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ${name}, namespace: ${ns}}
spec:
${spec.replace(/^/gm, '  ')}
---
`;

const P = {
  denyA: policy('a', 'default-deny', `podSelector: {}
policyTypes: [Ingress]`),
  byPod: policy('b', 'y-from-x', `podSelector: {matchLabels: {app: y}}
ingress: [{from: [{podSelector: {matchLabels: {app: x}}}]}]`),
  byNamespace: policy('c', 'from-red', `podSelector: {}
ingress: [{from: [{namespaceSelector: {matchLabels: {team: red}}}]}]`),
  byBoth: policy('a', 'x-from-blue-z', `podSelector: {matchLabels: {app: x}}
ingress: [{from: [{namespaceSelector: {matchLabels: {team: blue}}, podSelector: {matchExpressions: [{key: app, operator: In, values: [z]}]}}]}]`),
  cidrExcept: policy('a', 'y-from-underlay', `podSelector: {matchLabels: {app: y}}
ingress: [{from: [{ipBlock: {cidr: UNDERLAY, except: [EXT/32]}}]}]`),
  cidrPort: policy('c', 'z-from-ext', `podSelector: {matchLabels: {app: z}}
ingress: [{from: [{ipBlock: {cidr: EXT/32}}], ports: [{port: 81, protocol: TCP}]}]`),
  byPort: policy('b', 'tcp-80', `podSelector: {}
ingress: [{ports: [{port: 80, protocol: TCP}]}]`),
  namedPort: policy('a', 'http-from-cluster', `podSelector: {}
ingress: [{from: [{namespaceSelector: {}}], ports: [{port: http}, {port: dns, protocol: UDP}]}]`),
  portRange: policy('c', 'udp-range', `podSelector: {matchExpressions: [{key: app, operator: NotIn, values: [z]}]}
ingress: [{ports: [{protocol: UDP, port: 80, endPort: 81}]}]`),
  egress: policy('b', 'x-egress', `podSelector: {matchLabels: {app: x}}
policyTypes: [Egress]
egress:
- to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: c}}}]
  ports: [{port: 81, protocol: TCP}]
- to: [{ipBlock: {cidr: EXT/32}}]`),
  // a/w has a/x's labels, so its identity: only the address tells them apart.
  podAddresses: policy('b', 'y-from-ax-address', `podSelector: {matchLabels: {app: y}}
ingress: [{from: [{ipBlock: {cidr: IP(a/x)/32}}], ports: [{port: 80, protocol: TCP}]}]`)
    + policy('c', 'z-to-pods-but-bx', `podSelector: {matchLabels: {app: z}}
policyTypes: [Egress]
egress: [{to: [{ipBlock: {cidr: POOL, except: [IP(b/x)/32]}}]}]`),
};

const SCENARIOS: Scenario[] = [
  { name: 'no policy', policies: '', allowed: ['a/x -> c/z TCP/80', 'ext -> b/y UDP/81', 'c/y -> ext TCP/81'], denied: [] },
  {
    name: 'default deny ingress in a', policies: P.denyA,
    allowed: ['a/x -> b/x TCP/80', 'ext -> c/x UDP/80'], denied: ['b/x -> a/x TCP/80', 'a/y -> a/x UDP/81', 'ext -> a/z TCP/81'],
  },
  {
    name: 'allow by pod', policies: P.byPod,
    allowed: ['b/x -> b/y TCP/81', 'b/x -> b/y UDP/80', 'a/y -> b/x TCP/80'], denied: ['a/x -> b/y TCP/80', 'b/z -> b/y TCP/80', 'ext -> b/y UDP/80'],
  },
  {
    name: 'allow by namespace', policies: P.byNamespace,
    allowed: ['a/y -> c/x TCP/80', 'a/z -> c/z UDP/81'], denied: ['b/x -> c/y TCP/80', 'c/x -> c/y TCP/80', 'ext -> c/z TCP/80'],
  },
  {
    name: 'allow by namespace and pod together', policies: P.byBoth,
    allowed: ['b/z -> a/x TCP/80', 'a/z -> a/y TCP/80'], denied: ['b/x -> a/x TCP/80', 'a/z -> a/x TCP/80', 'c/z -> a/x UDP/80'],
  },
  {
    name: 'allow by CIDR with except', policies: P.cidrExcept + P.cidrPort,
    allowed: ['ext -> c/z TCP/81', 'a/x -> c/y TCP/80'],
    denied: ['ext -> a/y TCP/80', 'a/x -> a/y TCP/80', 'ext -> c/z TCP/80', 'ext -> c/z UDP/81', 'a/x -> c/z TCP/81'],
  },
  {
    name: 'allow by port', policies: P.byPort,
    allowed: ['ext -> b/x TCP/80', 'c/z -> b/y TCP/80'], denied: ['c/z -> b/y TCP/81', 'a/x -> b/x UDP/80'],
  },
  {
    name: 'named ports', policies: P.namedPort,
    allowed: ['b/x -> a/x TCP/80', 'b/x -> a/y TCP/81', 'c/z -> a/z UDP/81'],
    denied: ['b/x -> a/x TCP/81', 'b/x -> a/y TCP/80', 'c/z -> a/z UDP/80', 'ext -> a/x TCP/80'],
  },
  {
    name: 'port range', policies: P.portRange,
    allowed: ['a/x -> c/x UDP/80', 'b/y -> c/y UDP/81', 'ext -> c/x UDP/81', 'a/x -> c/z TCP/80'], denied: ['a/x -> c/x TCP/80', 'b/y -> c/y TCP/81'],
  },
  {
    name: 'egress', policies: P.egress,
    allowed: ['b/x -> c/y TCP/81', 'b/x -> ext UDP/80', 'b/y -> a/x TCP/80', 'a/x -> b/x TCP/80'],
    denied: ['b/x -> c/y TCP/80', 'b/x -> c/y UDP/81', 'b/x -> b/y TCP/81', 'b/x -> a/x TCP/80'],
  },
  {
    name: 'ipBlock over pod addresses', policies: P.podAddresses,
    allowed: ['a/x -> b/y TCP/80', 'c/z -> a/y TCP/81', 'c/z -> a/w UDP/80'],
    denied: ['a/w -> b/y TCP/80', 'a/x -> b/y TCP/81', 'c/x -> b/y TCP/80', 'c/z -> b/x TCP/80', 'c/z -> ext TCP/80'],
  },
  {
    name: 'labels changed at run time', policies: P.byNamespace + P.byPod,
    relabel: [['namespace', 'b', 'team=red'], ['endpoint', 'b/z', 'app=x'], ['namespace', 'a', 'team-']],
    allowed: ['b/x -> c/y TCP/80', 'b/z -> b/y TCP/80'], denied: ['a/x -> c/y TCP/80', 'c/x -> c/y TCP/80', 'a/y -> b/y TCP/80'],
  },
  {
    name: 'all of them at once', policies: Object.values(P).join(''),
    allowed: ['b/z -> a/x TCP/80', 'ext -> b/y TCP/80', 'b/x -> ext TCP/80'],
    denied: ['ext -> a/y TCP/81', 'b/x -> a/x TCP/80', 'b/x -> c/x TCP/81'],
  },
];

type Pod = LabStatus['pods'][number];
type Node = LabStatus['nodes'][number];

function cli(n: Node, args: readonly string[]): string {
  const r = inNs(n.netns, process.execPath, [SLUICE_BIN, '--config', n.config, ...args]);
  if (r.status !== 0) throw new Error(`sluice ${args.join(' ')} on ${n.name} failed: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** A host outside the cluster on the first underlay subnet, routing every pod block through its node. */
function outsideHost(tt: Test, s: LabStatus): Participant {
  const name = netns(tt, `${s.name}-ext`);
  const subnet = s.underlay.subnets[0]!;
  const underlay = basename(s.underlay.netns);
  const ip = subnet.cidr.replace(/\.0\/24$/, '.240');
  mustSh('ip', ['-n', name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'ext0', 'netns', underlay]);
  mustSh('ip', ['-n', underlay, 'link', 'set', 'ext0', 'master', subnet.bridge, 'up']);
  mustSh('ip', ['-n', name, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
  mustSh('ip', ['-n', name, 'link', 'set', 'eth0', 'up']);
  for (const n of s.nodes) mustSh('ip', ['-n', name, 'route', 'add', n.podCIDR!, 'via', n.underlayIP]);
  return { name: 'ext', netns: `/run/netns/${name}`, ip };
}

/** The cluster model the reference evaluator decides on; label changes are applied to it as to the lab. */
class Model {
  namespaces: Record<string, Labels> = {};
  pods: { namespace: string; name: string; ip: string; labels: Labels; ports: PodPort[] }[] = [];

  reset(s: LabStatus): void {
    this.namespaces = Object.fromEntries(s.namespaces.map((n) => [n.name, { ...n.labels }]));
    this.pods = s.pods.map((p) => ({ namespace: p.namespace, name: p.pod, ip: p.ip!, labels: { ...p.labels }, ports: p.ports }));
  }

  /** The label changes that bring the lab back to the labels of `s` (after a scenario changed some). */
  undo(s: LabStatus): ['namespace' | 'endpoint', string, string[]][] {
    const back = (now: Labels, was: Labels) => [
      ...Object.keys(now).filter((k) => !(k in was)).map((k) => `${k}-`),
      ...Object.entries(was).filter(([k, v]) => now[k] !== v).map(([k, v]) => `${k}=${v}`),
    ];
    const out: ['namespace' | 'endpoint', string, string[]][] = [];
    for (const n of s.namespaces) out.push(['namespace', n.name, back(this.namespaces[n.name] ?? n.labels, n.labels)]);
    for (const p of s.pods) out.push(['endpoint', p.name, back(this.pods.find((q) => `${q.namespace}/${q.name}` === p.name)?.labels ?? p.labels, p.labels)]);
    return out.filter(([, , changes]) => changes.length > 0);
  }

  relabel(kind: 'namespace' | 'endpoint', target: string, changes: readonly string[]): void {
    const labels = kind === 'namespace'
      ? (this.namespaces[target] ??= {})
      : this.pods.find((p) => `${p.namespace}/${p.name}` === target)!.labels;
    for (const c of changes) {
      if (c.endsWith('-')) delete labels[c.slice(0, -1)];
      else labels[c.slice(0, c.indexOf('='))] = c.slice(c.indexOf('=') + 1);
    }
  }

  /** The cells the evaluator allows. */
  expected(policiesYaml: string, cells: ReturnType<typeof allCells>, ext: Participant): Set<string> {
    const cluster = createCluster({ policies: policiesYaml ? parsePolicies(policiesYaml, 'scenario') : [], namespaces: this.namespaces, pods: this.pods });
    const endpoint = (name: string): Endpoint => {
      if (name === ext.name) return ext.ip;
      const [namespace, pod] = name.split('/') as [string, string];
      return { namespace, name: pod };
    };
    return new Set(cells.filter((c) => evaluate(cluster, { src: endpoint(c.from), dst: endpoint(c.probe.to), protocol: c.probe.protocol, port: c.probe.port }).allowed).map(cellName));
  }
}

t.test('connectivity matrix under NetworkPolicy, vxlan then direct', async (tt) => {
  const lab = uniquePrefix('pm');
  const dir = tempDir(tt, lab);
  const topo = join(dir, 'topo.yaml');
  writeFileSync(topo, TOPOLOGY);
  const { status: s } = labUp(tt, lab, ['-f', topo]);
  const [n1, n2] = s.nodes as [Node, Node];
  const ext = outsideHost(tt, s);
  /** Pod labels are changed through the pod's own node. */
  const nodeOf = (pod: string) => s.nodes.find((n) => n.name === s.pods.find((p) => p.name === pod)!.node)!;
  const participants: Participant[] = [
    ...s.pods.map((p: Pod) => ({ name: `${p.namespace}/${p.pod}`, netns: p.netns, ip: p.ip! })),
    ext,
  ];
  const peers = new Map<string, Peer>();
  await Promise.all(participants.map(async (p) => peers.set(p.name, await startPeer(tt, p, [80, 81]))));
  const cells = allCells(participants, SERVICES);
  const underlay = s.underlay.subnets[0]!.cidr;
  const pool = `${n1.podCIDR!.split('.').slice(0, 2).join('.')}.0.0/16`;
  const model = new Model();

  /** Polls the matrix until it equals `expected` (policy and label changes reach the datapath within a reconcile). */
  async function converge(expected: Set<string>): Promise<{ problems: string[]; rounds: number }> {
    const deadline = Date.now() + CONVERGE_MS;
    for (let rounds = 1; ; rounds++) {
      const problems = diff(cells, expected, await measure(peers, cells, PROBE_TIMEOUT_MS));
      if (problems.length === 0 || Date.now() > deadline) return { problems, rounds };
      await sleep(500);
    }
  }

  async function run(mode: string, st: Test): Promise<void> {
    for (const sc of SCENARIOS) {
      await st.test(`${mode}: ${sc.name}`, async (x) => {
        cli(n1, ['policy', 'delete', '--all']);
        for (const [kind, target, changes] of model.undo(s)) cli(kind === 'namespace' ? n2 : nodeOf(target), [kind, 'label', target, ...changes]);
        model.reset(s);
        const yaml = sc.policies.replaceAll('EXT', ext.ip).replaceAll('UNDERLAY', underlay).replaceAll('POOL', pool)
          .replace(/IP\(([a-z]+)\/([a-z]+)\)/g, (_, ns: string, pod: string) => s.pods.find((p) => p.namespace === ns && p.pod === pod)!.ip!);
        if (yaml) {
          const file = join(dir, 'policies.yaml');
          writeFileSync(file, yaml);
          cli(n1, ['policy', 'apply', '-f', file]);
        }
        for (const [kind, target, ...changes] of sc.relabel ?? []) {
          cli(kind === 'namespace' ? n2 : nodeOf(target), [kind, 'label', target, ...changes]);
          model.relabel(kind, target, changes);
        }
        const expected = model.expected(yaml, cells, ext);
        for (const c of sc.allowed) x.ok(expected.has(c), `the evaluator allows ${c}`);
        for (const c of sc.denied) x.notOk(expected.has(c), `the evaluator denies ${c}`);
        const { problems, rounds } = await converge(expected);
        x.same(problems, [], `${cells.length} cells as the evaluator decides (${expected.size} open; ${rounds} round(s))`);
      });
    }
  }

  await run('vxlan', tt);
  must(['lab', 'restart', '--name', lab, '--mode', 'direct']);
  const after = labStatus(lab);
  tt.ok(after.nodes.every((n) => n.agent.ready), 'both agents back in direct mode');
  await run('direct', tt);
});
