import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { buildTopology, parseTopologyText, TopologyError, type TopologyFlags } from '../../src/lab/topology.js';

const yaml = (text: string, flags: TopologyFlags = {}) => buildTopology(parseTopologyText(text, 'lab.yaml'), flags);
const json = (text: string, flags: TopologyFlags = {}) => buildTopology(parseTopologyText(text, 'lab.json'), flags);

const EXAMPLE = `mode: vxlan
store: etcd
nodes: [{name: n1, subnet: s1}, {name: n2, subnet: s1}]
namespaces: [{name: x, labels: {team: blue}}]
pods:
  - {name: a, namespace: x, node: n1, labels: {app: web}, ports: [{name: http, port: 80, protocol: TCP}]}
`;

t.test('defaults: 2 nodes, 2 pods per node, vxlan, file', async (t) => {
  const topo = buildTopology(undefined);
  t.equal(topo.mode, 'vxlan');
  t.equal(topo.store, 'file');
  t.equal(topo.clusterCIDR, '10.244.0.0/16');
  t.equal(topo.blockSize, 24);
  t.equal(topo.underlay, '198.18.0.0/15');
  t.same(topo.nodes, [{ name: 'n1', subnet: 's1' }, { name: 'n2', subnet: 's1' }]);
  t.same(topo.namespaces, [{ name: 'default', labels: {} }]);
  t.same(topo.pods.map((p) => [p.namespace, p.name, p.node]), [
    ['default', 'n1-p1', 'n1'], ['default', 'n1-p2', 'n1'], ['default', 'n2-p1', 'n2'], ['default', 'n2-p2', 'n2'],
  ]);
  t.same(topo.pods[0]!.labels, { app: 'n1-p1' });
  t.equal(topo.name, undefined);
  t.same(topo.external, [{ name: 'ext', subnet: 's1' }], 'one outside host, ext, on the first node\'s subnet');
});

t.test('the documented example', async (t) => {
  const topo = yaml(EXAMPLE);
  t.equal(topo.store, 'etcd');
  t.same(topo.namespaces, [{ name: 'default', labels: {} }, { name: 'x', labels: { team: 'blue' } }]);
  t.same(topo.pods, [{ name: 'a', namespace: 'x', node: 'n1', labels: { app: 'web' }, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] }]);
  const same = json(JSON.stringify({
    mode: 'vxlan', store: 'etcd', nodes: [{ name: 'n1', subnet: 's1' }, { name: 'n2', subnet: 's1' }],
    namespaces: [{ name: 'x', labels: { team: 'blue' } }],
    pods: [{ name: 'a', namespace: 'x', node: 'n1', labels: { app: 'web' }, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] }],
  }, null, 2));
  t.same(same, topo, 'JSON gives the same');
});

t.test('flags override the file', async (t) => {
  const topo = yaml(EXAMPLE, { mode: 'hybrid', store: 'file', name: 'mylab' });
  t.equal(topo.mode, 'hybrid');
  t.equal(topo.store, 'file');
  t.equal(topo.name, 'mylab');
  t.equal(yaml('name: fromfile\n').name, 'fromfile');
  t.equal(yaml('name: fromfile\n', { name: 'flag' }).name, 'flag');
  const more = yaml('nodes: [{name: a}]\npods: []\n', { nodes: 3, podsPerNode: 1 });
  t.same(more.nodes.map((n) => n.name), ['n1', 'n2', 'n3'], '--nodes replaces the nodes');
  t.same(more.pods.map((p) => p.name), ['n1-p1', 'n2-p1', 'n3-p1'], '--pods-per-node replaces the pods');
  t.same(yaml('pods: []\n').pods, [], 'an empty pod list means no pods');
  t.same(yaml('nodes: [{name: a}, {name: b}]\n').pods.map((p) => p.node), ['a', 'a', 'b', 'b'], 'no pods key: 2 per node');
  t.throws(() => yaml('nodes: [{name: n1}, {name: n2}]\npods: [{name: a, node: n2}]\n', { nodes: 1 }),
    /lab\.yaml:2: pods\[0\]\.node: unknown node 'n2' \(nodes: n1 \(--nodes 1 made them\)\)/, 'pods naming nodes --nodes removed');
});

t.test('hybrid without a file: nodes alternate between two subnets', async (t) => {
  t.same(buildTopology(undefined, { mode: 'hybrid', nodes: 4 }).nodes.map((n) => n.subnet), ['s1', 's2', 's1', 's2']);
  t.same(buildTopology(undefined, { mode: 'hybrid', nodes: 1 }).nodes.map((n) => n.subnet), ['s1']);
  t.same(buildTopology(undefined, { mode: 'direct', nodes: 3 }).nodes.map((n) => n.subnet), ['s1', 's1', 's1']);
});

t.test('errors name the field and the line', async (t) => {
  const cases: [string, RegExp][] = [
    ['mode: ring\n', /^lab\.yaml:1: mode: expected one of vxlan, direct, hybrid, got "ring"$/],
    ['store: consul\n', /^lab\.yaml:1: store: expected one of file, etcd/],
    ['mode: vxlan\ncolour: red\n', /^lab\.yaml:2: colour: unknown key \(known: name, mode, store/],
    ['nodes: [{name: n1, zone: a}]\n', /^lab\.yaml:1: nodes\[0\]\.zone: unknown key \(known: name, subnet\)$/],
    ['external: [{name: ext, ip: 1.2.3.4}]\n', /^lab\.yaml:1: external\[0\]\.ip: unknown key \(known: name, subnet\)$/],
    ['external:\n  - name: ext\n  - name: ext\n', /^lab\.yaml:3: external\[1\]\.name: outside host 'ext' is declared twice$/],
    ['external: [{name: Ext}]\n', /external\[0\]\.name: 'Ext' is not a valid outside host name/],
    ['external: [{subnet: s1}]\n', /external\[0\]: missing 'name'/],
    ['external: {ext: {}}\n', /external: expected a list/],
    [`external: [${Array.from({ length: 41 }, (_, i) => `{name: x${i}}`).join(', ')}]\n`, /external\[40\]: subnet 's1' has more than 40 outside hosts/],
    ['underlay: 198.18.0.0/24\nexternal: [{name: ext, subnet: far}]\n', /underlay: 198\.18\.0\.0\/24 has room for 1 \/24 subnet\(s\); the nodes use 1, the outside hosts 1 more/],
    ['nodes:\n  - name: n1\n  - name: n1\n', /^lab\.yaml:3: nodes\[1\]\.name: node 'n1' is declared twice$/],
    ['nodes: [{name: N1}]\n', /nodes\[0\]\.name: 'N1' is not a valid node name/],
    ['nodes: [{subnet: s1}]\n', /nodes\[0\]: missing 'name'/],
    ['nodes: [{name: router}]\n', /nodes\[0\]\.name: 'router' is reserved/],
    ['nodes: []\n', /nodes: a lab needs at least one node/],
    ['nodes: {n1: {}}\n', /nodes: expected a list/],
    ['namespaces: [{name: x}, {name: x}]\n', /namespaces\[1\]\.name: namespace 'x' is declared twice/],
    ['namespaces: [{name: x, labels: {"-bad": v}}]\n', /namespaces\[0\]\.labels\.-bad: label key '-bad'/],
    ['namespaces: [{name: x, labels: {tier: 1}}]\n', /namespaces\[0\]\.labels\.tier: label values are strings: got 1 \(quote it\)/],
    ['nodes: [{name: n1}]\npods:\n  - {name: a, node: n2}\n', /^lab\.yaml:3: pods\[0\]\.node: unknown node 'n2' \(nodes: n1\)$/],
    ['nodes: [{name: n1}]\npods: [{name: a, node: n1, namespace: y}]\n', /pods\[0\]\.namespace: unknown namespace 'y' \(declared: default\)/],
    ['nodes: [{name: n1}]\npods: [{name: a}]\n', /pods\[0\]: missing 'node'/],
    ['nodes: [{name: n1}]\npods: [{name: a, node: n1}, {name: a, node: n1}]\n', /pods\[1\]\.name: pod 'default\/a' is declared twice/],
    ['nodes: [{name: n1}]\npods: [{name: a, node: n1, labels: {app: "a b"}}]\n', /pods\[0\]\.labels\.app: label 'app': value 'a b'/],
    ['nodes: [{name: n1}]\npods: [{name: a, node: n1, ports: [{port: 0}]}]\n', /pods\[0\]\.ports\[0\]\.port: must be an integer from 1 to 65535, got 0/],
    ['nodes: [{name: n1}]\npods: [{name: a, node: n1, ports: [{port: 80, protocol: ICMP}]}]\n', /pods\[0\]\.ports\[0\]\.protocol: must be TCP, UDP or SCTP/],
    ['nodes: [{name: n1}]\npods: [{name: a, node: n1, ports: [{name: h, port: 80}, {name: h, port: 81}]}]\n', /pods\[0\]\.ports\[1\]\.name: 'h' is used twice/],
    ['nodes: [{name: n1}]\npods: [{name: a, node: n1, ports: 80}]\n', /pods\[0\]\.ports: must be a list/],
    ['clusterCIDR: 10.244.0.0/33\n', /clusterCIDR: .*prefix length 33/],
    ['blockSize: 12\n', /blockSize: \/12 blocks do not fit in the pool 10\.244\.0\.0\/16/],
    ['underlay: 198.18.0.0/25\n', /underlay: 198\.18\.0\.0\/25 is smaller than a \/24/],
    ['underlay: 198.18.0.0/24\nmode: hybrid\nnodes: [{name: a, subnet: x}, {name: b, subnet: y}]\n', /underlay: 198\.18\.0\.0\/24 has room for 1 \/24 subnet\(s\); the nodes use 2/],
    ['mode: direct\nnodes: [{name: a, subnet: x}, {name: b, subnet: y}]\n', /nodes\[1\]\.subnet: direct routing needs every node on one L2 subnet/],
    ['name: Lab_1\n', /name: 'Lab_1' is not a lab name/],
    ['- a\n- b\n', /\(file\): expected a mapping/],
    ['mode: vxlan\nmode: direct\n', /lab\.yaml:2: \(file\): not valid YAML: Map keys must be unique/],
  ];
  for (const [text, want] of cases) {
    const err = t.throws(() => yaml(text), TopologyError, text.trim()) as Error | undefined;
    t.match(err?.message, want, text.trim());
  }
  t.throws(() => json('{"nodes": [1,]}'), /lab\.json: \(file\): not valid JSON/);
  t.throws(() => json('{\n  "nodes": [{"name": "n1", "zone": "a"}]\n}'), /^lab\.json:2: nodes\[0\]\.zone: unknown key/);
});

t.test('flag errors name the flag', async (t) => {
  t.throws(() => buildTopology(undefined, { nodes: 0 }), /command line: --nodes: expected an integer from 1 to 64, got 0/);
  t.throws(() => buildTopology(undefined, { nodes: 65 }), /--nodes/);
  t.throws(() => buildTopology(undefined, { podsPerNode: 101 }), /--pods-per-node: expected an integer from 0 to 100/);
  t.throws(() => buildTopology(undefined, { mode: 'mesh' }), /--mode: expected one of vxlan, direct, hybrid, got "mesh"/);
  t.throws(() => buildTopology(undefined, { store: 'zk' }), /--store: expected one of file, etcd/);
  t.throws(() => buildTopology(undefined, { name: '9lab' }), /--name: '9lab' is not a lab name/);
  t.throws(() => yaml('mode: hybrid\nnodes: [{name: a, subnet: x}, {name: b, subnet: y}]\n', { mode: 'direct' }), /command line: --mode: direct routing needs every node on one L2 subnet/);
});

t.test('the example topologies are valid', async (t) => {
  const dir = new URL('../../examples/lab/', import.meta.url);
  const files = readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f));
  t.ok(files.length >= 2, `${files.length} examples`);
  for (const f of files) {
    const topo = buildTopology(parseTopologyText(readFileSync(new URL(f, dir), 'utf8'), f));
    t.ok(topo.nodes.length >= 2 && topo.pods.length >= 2, `${f}: ${topo.nodes.length} nodes, ${topo.pods.length} pods`);
  }
});
