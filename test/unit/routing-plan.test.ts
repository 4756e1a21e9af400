import t from 'tap';
import { planRoutes, SLUICE_RT_PROTO, type NodeInfo } from '../../src/routing/plan.js';

const POOL = '10.244.0.0/16';
const self: NodeInfo = { name: 'n1', podCIDR: '10.244.0.0/24', underlayIP: '198.18.0.1', subnet: '198.18.0.0/24' };
const near: NodeInfo = { name: 'n2', podCIDR: '10.244.1.0/24', underlayIP: '198.18.0.2', subnet: '198.18.0.0/24' };
const far: NodeInfo = { name: 'n3', podCIDR: '10.244.2.0/24', underlayIP: '198.18.1.3', subnet: '198.18.1.0/24' };
const nodes = [self, near, far];

const summary = (p: ReturnType<typeof planRoutes>) => Object.fromEntries([...p.ipcache].map(([k, v]) => [k, `${v.flags === 1 ? 'tunnel' : 'direct'} ${v.tunnel_endpoint}`]));

t.test('vxlan: every peer through the overlay', async (t) => {
  const p = planRoutes(self, 'vxlan', nodes, [], POOL);
  t.same(summary(p), { '10.244.1.0/24': 'tunnel 198.18.0.2', '10.244.2.0/24': 'tunnel 198.18.1.3' });
  t.same(p.routes, [{ dst: '10.244.1.0/24', path: 'tunnel', via: '198.18.0.2' }, { dst: '10.244.2.0/24', path: 'tunnel', via: '198.18.1.3' }]);
  t.same(p.problems, []);
});

t.test('direct: peers in the subnet routed; a peer beyond it is reported, not installed', async (t) => {
  const p = planRoutes(self, 'direct', nodes, [], POOL);
  t.same(summary(p), { '10.244.1.0/24': 'direct 198.18.0.2' });
  t.equal(p.peers.find((x) => x.name === 'n3')?.path, 'unreachable');
  t.match(p.problems, [/node n3: direct mode needs the nodes on one L2 segment: 198\.18\.1\.3 is outside this node's subnet 198\.18\.0\.0\/24 \(use mode hybrid or vxlan\)/]);
});

t.test('hybrid: direct inside the subnet, overlay beyond', async (t) => {
  const p = planRoutes(self, 'hybrid', nodes, [], POOL);
  t.same(summary(p), { '10.244.1.0/24': 'direct 198.18.0.2', '10.244.2.0/24': 'tunnel 198.18.1.3' });
  t.same(p.peers.map((x) => [x.name, x.path]), [['n2', 'direct'], ['n3', 'tunnel']]);
});

t.test('incomplete or conflicting records are reported', async (t) => {
  const p = planRoutes(self, 'vxlan', [self, { ...near, underlayIP: '' }, { ...far, podCIDR: '10.244.0.0/23' }], [], POOL);
  t.same(summary(p), {});
  t.match(p.problems, [/node n2 has no underlay address/, /node n3 claims 10\.244\.0\.0\/23, which overlaps this node's block 10\.244\.0\.0\/24/]);
});

t.test('kernel routes of a routing daemon inside the pool become direct entries', async (t) => {
  const kernel = [
    { dst: '10.244.7.0/24', gateway: '198.18.0.9', dev: 'up0', protocol: 'bird' },
    { dst: '10.244.1.0/24', gateway: '198.18.0.99', protocol: 'bird' }, // the store covers it: the store wins
    { dst: '10.244.8.0/24', gateway: '198.18.0.2', protocol: String(SLUICE_RT_PROTO) }, // ours: not an input
    { dst: '10.244.9.0/24', dev: 'up0', protocol: 'kernel' }, // no gateway
    { dst: '192.168.0.0/24', gateway: '198.18.0.9', protocol: 'bird' }, // outside the pool
    { dst: '10.244.0.128/25', gateway: '198.18.0.9', protocol: 'bird' }, // inside our own block
    { dst: 'default', gateway: '198.18.0.254', protocol: 'static' },
    { dst: '10.244.10.5', gateway: '198.18.0.9', protocol: 'static' }, // a host route
  ];
  const p = planRoutes(self, 'vxlan', [self, near], kernel, POOL);
  t.same(summary(p), { '10.244.1.0/24': 'tunnel 198.18.0.2', '10.244.7.0/24': 'direct 198.18.0.9', '10.244.10.5/32': 'direct 198.18.0.9' });
  t.same(p.routes.map((r) => r.dst), ['10.244.1.0/24'], 'sluice installs no kernel route for prefixes the kernel already has');
  t.same(p.peers.filter((x) => x.source === 'kernel').map((x) => x.name), ['route 10.244.7.0/24 via 198.18.0.9 (proto bird)', 'route 10.244.10.5/32 via 198.18.0.9 (proto static)']);
});

t.test('sl_nodes: every other node with an underlay address, whatever its path, with its MAC when its record names one', async (t) => {
  const withMac = { ...near, underlayMAC: '02:00:00:00:00:02' };
  for (const mode of ['vxlan', 'direct', 'hybrid'] as const) {
    const p = planRoutes(self, mode, [self, withMac, far], [], POOL);
    t.same(Object.fromEntries(p.nodes), {
      '198.18.0.2': { pod_block: '10.244.1.0', pod_mask: '255.255.255.0', mac: '02:00:00:00:00:02', flags: 3 },
      '198.18.1.3': { pod_block: '10.244.2.0', pod_mask: '255.255.255.0', mac: '00:00:00:00:00:00', flags: 2 },
    }, `${mode}: n2 with its block and MAC, n3 (unreachable in direct mode) with its block; not this node`);
  }
  const blockless = planRoutes(self, 'vxlan', [self, { ...near, podCIDR: '' }, { ...far, podCIDR: '10.244.0.0/23' }], [], POOL);
  t.same(Object.fromEntries(blockless.nodes), {
    '198.18.0.2': { pod_block: '0.0.0.0', pod_mask: '0.0.0.0', mac: '00:00:00:00:00:00', flags: 0 },
    '198.18.1.3': { pod_block: '0.0.0.0', pod_mask: '0.0.0.0', mac: '00:00:00:00:00:00', flags: 0 },
  }, 'a node without a pod block yet, or claiming one over this node\'s, is a node all the same but may carry only its own address');
  const routed = planRoutes(self, 'vxlan', [self, near], [{ dst: '10.244.7.0/24', gateway: '198.18.0.9', protocol: 'bird' }], POOL);
  t.same([...routed.nodes.keys()], ['198.18.0.2'], 'a routing daemon\'s gateway is no node');
});

t.test('sl_nodes: a record claiming this node\'s underlay address or another node\'s is left out and reported', async (t) => {
  const p = planRoutes(self, 'vxlan', [self, { ...near, underlayIP: self.underlayIP }, far, { ...far, name: 'n4', podCIDR: '10.244.4.0/24' }], [], POOL);
  t.same([...p.nodes.keys()], ['198.18.1.3']);
  t.same(summary(p), { '10.244.2.0/24': 'tunnel 198.18.1.3' }, 'and not routed to');
  t.match(p.problems, [/node n2 claims the underlay address 198\.18\.0\.1 of node n1; left out/, /node n4 claims the underlay address 198\.18\.1\.3 of node n3; left out/]);
});
