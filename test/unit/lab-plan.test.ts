import t from 'tap';
import { parseConfigText, resolveConfig } from '../../src/config/config.js';
import { underlayConflicts } from '../../src/lab/host.js';
import { externalCommands, makePlan, nodeUplinkCommands, planNetns, underlayCommands } from '../../src/lab/plan.js';
import { findPod } from '../../src/lab/status.js';
import { buildTopology, parseTopologyText } from '../../src/lab/topology.js';
import { parseCidr } from '../../src/util/ipv4.js';

const TOOLS = { node: '/usr/bin/node', sluice: '/repo/bin/sluice.js', etcd: '/usr/bin/etcd' };
const topo = (text: string) => buildTopology(parseTopologyText(text, 'lab.yaml'));

t.test('file store, one subnet: names, addresses, configs', async (t) => {
  const p = makePlan(buildTopology(undefined), 'sllab', '/var/lib/sluice-lab', TOOLS);
  t.equal(p.dir, '/var/lib/sluice-lab/sllab');
  t.equal(p.stateFile, '/var/lib/sluice-lab/sllab/lab.json');
  t.equal(p.pinRoot, '/sys/fs/bpf/sllab');
  t.equal(p.storeSpec, 'file:/var/lib/sluice-lab/sllab/store');
  t.equal(p.routerNetns, undefined);
  t.equal(p.etcd, undefined);
  t.same(p.nodes.map((n) => n.storeTls), [undefined, undefined], 'the file store: no TLS files');
  t.notMatch(p.nodes[0]!.configText, /storeCA|storeCert|storeKey/);
  t.same(p.subnets, [{ name: 's1', index: 0, cidr: '198.18.0.0/24', bridge: 'br0' }]);
  t.same(p.nodes.map((n) => [n.name, n.netns, n.underlayIP, n.bridgePort, n.defaultVia]), [
    ['n1', 'sllab-n1', '198.18.0.1', 'nd0', undefined], ['n2', 'sllab-n2', '198.18.0.2', 'nd1', undefined],
  ]);
  t.same(planNetns(p), ['sllab-underlay', 'sllab-n1', 'sllab-n2', 'sllab-x.ext', 'sllab-n1.default.n1-p1', 'sllab-n1.default.n1-p2', 'sllab-n2.default.n2-p1', 'sllab-n2.default.n2-p2']);
  t.same(p.external, [{ name: 'ext', subnet: 's1', netns: 'sllab-x.ext', netnsPath: '/run/netns/sllab-x.ext', ip: '198.18.0.201', bridgePort: 'nx0', bridge: 'br0' }],
    'one outside host by default, on the first subnet, after the node addresses');
  t.same(externalCommands(p.external[0]!), {
    underlay: ['link add nx0 type veth peer name eth0 netns sllab-x.ext', 'link set nx0 master br0', 'link set nx0 up'],
    host: ['link set lo up', 'addr add 198.18.0.201/24 dev eth0', 'link set eth0 up'],
  }, 'no router: no default route, and never a route to a pod block');
  const pod = p.pods[0]!;
  t.same(pod, {
    ref: 'default/n1-p1', namespace: 'default', name: 'n1-p1', node: 'n1', netns: 'sllab-n1.default.n1-p1', netnsPath: '/run/netns/sllab-n1.default.n1-p1',
    containerId: 'sllab.default.n1-p1', labels: { app: 'n1-p1' }, ports: [],
  });
  const n1 = p.nodes[0]!;
  t.equal(n1.config, '/var/lib/sluice-lab/sllab/nodes/n1/config.yaml');
  t.equal(n1.socket, '/var/lib/sluice-lab/sllab/nodes/n1/run/agent.sock');
  t.same(n1.agentArgv, ['nsenter', '--net=/run/netns/sllab-n1', '/usr/bin/node', '/repo/bin/sluice.js', '--config', n1.config, 'agent']);
  // The config is a valid node config with the lab's values.
  const cfg = resolveConfig(parseConfigText(n1.configText, n1.config), {}, n1.config);
  t.same(cfg, {
    ...cfg, nodeName: 'n1', pinRoot: '/sys/fs/bpf/sllab/n1', stateDir: '/var/lib/sluice-lab/sllab/nodes/n1/state',
    runDir: '/var/lib/sluice-lab/sllab/nodes/n1/run', store: 'file:/var/lib/sluice-lab/sllab/store', mode: 'vxlan',
    uplink: 'uplink0', metricsAddress: '127.0.0.1:9962', clusterCIDR: '10.244.0.0/16', blockSize: 24,
  });
  t.same(underlayCommands(p), [{ netns: 'sllab-underlay', lines: ['link set lo up', 'link add br0 type bridge', 'link set br0 up'] }]);
  t.same(nodeUplinkCommands(p, n1), {
    underlay: ['link add nd0 type veth peer name uplink0 netns sllab-n1', 'link set nd0 master br0', 'link set nd0 up'],
    node: ['link set lo up', 'addr add 198.18.0.1/24 dev uplink0', 'link set uplink0 up'],
  });
});

t.test('etcd and two subnets: a router, etcd on subnet 0, default routes', async (t) => {
  const p = makePlan(topo(`store: etcd
mode: hybrid
nodes: [{name: a, subnet: east}, {name: b, subnet: west}, {name: c, subnet: east}]
pods: []
`), 'lab2', '/l', TOOLS);
  t.equal(p.routerNetns, 'lab2-router');
  t.same(p.subnets.map((s) => [s.name, s.cidr, s.bridge, s.router, s.routerIf, s.routerPeer]), [
    ['east', '198.18.0.0/24', 'br0', '198.18.0.254', 'r0', 'rt0'], ['west', '198.18.1.0/24', 'br1', '198.18.1.254', 'r1', 'rt1'],
  ]);
  t.same(p.nodes.map((n) => [n.name, n.underlayIP, n.bridge, n.defaultVia]), [
    ['a', '198.18.0.1', 'br0', '198.18.0.254'], ['b', '198.18.1.1', 'br1', '198.18.1.254'], ['c', '198.18.0.2', 'br0', '198.18.0.254'],
  ]);
  t.equal(p.storeSpec, 'etcds://198.18.0.250:2379/lab2/', 'etcd over TLS');
  t.equal(p.underlayAddress, '198.18.0.250');
  t.equal(p.underlayDefaultVia, '198.18.0.254', 'etcd answers other subnets through the router');
  t.match(p.etcd, { address: '198.18.0.250', clientPort: 2379, dataDir: '/l/lab2/etcd/data', log: '/l/lab2/etcd/etcd.log' });
  t.same(p.etcd!.argv.slice(0, 3), ['nsenter', '--net=/run/netns/lab2-underlay', '/usr/bin/etcd']);
  t.match(p.etcd!.argv.join(' '), '--listen-client-urls https://198.18.0.250:2379,https://127.0.0.1:2379 --advertise-client-urls https://198.18.0.250:2379 '
    + '--cert-file /l/lab2/pki/etcd.pem --key-file /l/lab2/pki/etcd-key.pem --trusted-ca-file /l/lab2/pki/ca.pem --client-cert-auth');
  t.same(p.etcd!.pki, {
    dir: '/l/lab2/pki', ca: '/l/lab2/pki/ca.pem', serverCert: '/l/lab2/pki/etcd.pem', serverKey: '/l/lab2/pki/etcd-key.pem',
    labCert: '/l/lab2/pki/lab.pem', labKey: '/l/lab2/pki/lab-key.pem',
  });
  t.same(p.nodes.map((n) => n.storeTls), ['a', 'b', 'c'].map((n) => ({ ca: '/l/lab2/pki/ca.pem', cert: `/l/lab2/pki/node-${n}.pem`, key: `/l/lab2/pki/node-${n}-key.pem` })),
    'a client certificate per node');
  t.same(underlayCommands(p), [
    { netns: 'lab2-underlay', lines: ['link set lo up', 'link add br0 type bridge', 'link set br0 up', 'link add br1 type bridge', 'link set br1 up', 'addr add 198.18.0.250/24 dev br0'] },
    { netns: 'lab2-underlay', lines: [
      'link add rt0 type veth peer name r0 netns lab2-router', 'link set rt0 master br0', 'link set rt0 up',
      'link add rt1 type veth peer name r1 netns lab2-router', 'link set rt1 master br1', 'link set rt1 up',
    ] },
    { netns: 'lab2-router', lines: ['link set lo up', 'addr add 198.18.0.254/24 dev r0', 'link set r0 up', 'addr add 198.18.1.254/24 dev r1', 'link set r1 up'] },
    { netns: 'lab2-underlay', lines: ['route add default via 198.18.0.254'] },
  ]);
  t.same(nodeUplinkCommands(p, p.nodes[1]!).node, ['link set lo up', 'addr add 198.18.1.1/24 dev uplink0', 'link set uplink0 up', 'route add default via 198.18.1.254']);
  for (const n of p.nodes) {
    t.match(n.configText, `\nstore: etcds://198.18.0.250:2379/lab2/\nstoreCA: /l/lab2/pki/ca.pem\nstoreCert: /l/lab2/pki/node-${n.name}.pem\nstoreKey: /l/lab2/pki/node-${n.name}-key.pem\nmode: hybrid\n`);
  }
});

t.test('outside hosts: on a node subnet or their own behind the router, addresses from .201, default route via the router', async (t) => {
  const p = makePlan(topo('nodes: [{name: a}]\nexternal: [{name: web}, {name: far, subnet: wan}, {name: web2}]\n'), 'sllab', '/l', TOOLS);
  t.same(p.subnets.map((s) => [s.name, s.cidr, s.router]), [['s1', '198.18.0.0/24', '198.18.0.254'], ['wan', '198.18.1.0/24', '198.18.1.254']],
    'a subnet of its own: a second subnet, so a router');
  t.same(p.external.map((x) => [x.name, x.netns, x.ip, x.bridge, x.defaultVia]), [
    ['web', 'sllab-x.web', '198.18.0.201', 'br0', '198.18.0.254'], ['far', 'sllab-x.far', '198.18.1.201', 'br1', '198.18.1.254'], ['web2', 'sllab-x.web2', '198.18.0.202', 'br0', '198.18.0.254'],
  ]);
  t.same(externalCommands(p.external[1]!).host.at(-1), 'route add default via 198.18.1.254');
  t.same(makePlan(topo('external: []\n'), 'sllab', '/l', TOOLS).external, [], 'external: [] means none');
});

t.test('a custom underlay and the test-only bad node', async (t) => {
  const p = makePlan(topo('underlay: 10.99.0.0/16\nnodes: [{name: a}, {name: b}]\n'), 'x', '/l', TOOLS, { badConfigNode: 'b' });
  t.same(p.nodes.map((n) => n.underlayIP), ['10.99.0.1', '10.99.0.2']);
  t.match(p.nodes[0]!.configText, '\nuplink: uplink0\n');
  t.match(p.nodes[1]!.configText, '\nuplink: slnouplink0\n');
});

t.test('a socket path too long for sun_path is refused', async (t) => {
  const long = 'n'.repeat(60);
  t.throws(() => makePlan(topo(`nodes: [{name: ${long}}]\n`), 'a-rather-long-lab-name', '/var/lib/sluice-lab/deeper/still', TOOLS),
    /node n{60}: the agent socket .* is longer than 107 bytes/);
});

t.test('underlay conflicts with the root namespace', async (t) => {
  const p = makePlan(topo('mode: hybrid\nnodes: [{name: a, subnet: s1}, {name: b, subnet: s2}]\n'), 'x', '/l', TOOLS);
  t.same(underlayConflicts(p, [
    { what: 'address 192.0.2.2/24 on eth0', cidr: parseCidr('192.0.2.0/24') },
    { what: 'route 10.0.0.0/8 dev eth0', cidr: parseCidr('10.0.0.0/8') },
  ]), [], 'no overlap');
  t.same(underlayConflicts(p, [
    { what: 'route 198.18.1.0/28 dev eth1', cidr: parseCidr('198.18.1.0/28') },
    { what: 'route 198.16.0.0/12 dev eth2', cidr: parseCidr('198.16.0.0/12') },
  ]), [
    'subnet s1 (198.18.0.0/24) overlaps the root namespace\'s route 198.16.0.0/12 dev eth2',
    'subnet s2 (198.18.1.0/24) overlaps the root namespace\'s route 198.18.1.0/28 dev eth1',
    'subnet s2 (198.18.1.0/24) overlaps the root namespace\'s route 198.16.0.0/12 dev eth2',
  ]);
});

t.test('pods by NS/NAME or by a unique NAME', async (t) => {
  const pods = [{ name: 'x/a', pod: 'a' }, { name: 'y/a', pod: 'a' }, { name: 'x/b', pod: 'b' }];
  t.equal(findPod(pods, 'x/a'), pods[0]);
  t.equal(findPod(pods, 'b'), pods[2]);
  t.throws(() => findPod(pods, 'a'), /pod name a is ambiguous: x\/a, y\/a \(write NS\/NAME\)/);
  t.throws(() => findPod(pods, 'z/a'), /no pod z\/a in the lab \(pods: x\/a, y\/a, x\/b\)/);
  t.throws(() => findPod([], 'c'), /no pod c in the lab \(pods: none\)/);
});
