import t from 'tap';
import { compilePolicies, DIR, FLAGS, policyId, portPrefixes, type CompileInput } from '../../src/policy/compile.js';
import { parsePolicies } from '../../src/policy/parse.js';
import { FIRST_CIDR_IDENTITY, NAMESPACE_LABEL } from '../../src/identity/identity.js';

t.test('port ranges become LPM prefixes that cover exactly the range', async (t) => {
  t.same(portPrefixes(80, 80), [[80, 16]]);
  t.same(portPrefixes(32000, 32768), [[32000, 8], [32256, 7], [32768, 16]]);
  for (const [lo, hi] of [[1, 65535], [32000, 32768], [1000, 1999], [0, 0], [65535, 65535], [5, 9]]) {
    const covered = new Set<number>();
    for (const [v, bits] of portPrefixes(lo!, hi!)) {
      const size = 2 ** (16 - bits);
      t.equal(v % size, 0, `prefix ${v}/${bits} aligned`);
      for (let p = v; p < v + size; p++) covered.add(p);
    }
    t.equal(covered.size, hi! - lo! + 1, `${lo}-${hi}: exactly the range`);
    t.ok([...covered].every((p) => p >= lo! && p <= hi!));
  }
  t.equal(portPrefixes(1, 65535).length, 16, '1-65535 in 16 prefixes');
});

const web = { id: 7, namespace: 'shop', labels: { app: 'web' }, ports: [{ name: 'http', port: 8080, protocol: 'TCP' as const }] };
const ids = new Map([
  [300, { app: 'web', [NAMESPACE_LABEL]: 'shop' }],
  [301, { app: 'client', [NAMESPACE_LABEL]: 'shop' }],
  [302, { app: 'client', [NAMESPACE_LABEL]: 'other' }],
]);
const base = (yaml: string): CompileInput => ({
  policies: parsePolicies(yaml, 'p.yaml'), namespaces: new Map([['other', { team: 'blue' }]]), identities: ids,
  identityPorts: new Map([[300, web.ports]]), endpoints: [web],
});
const rows = (c: ReturnType<typeof compilePolicies>) => [...c.entries.values()].map(({ key, value }) =>
  `${key.dir === DIR.ingress ? 'in' : 'out'} id=${key.identity} p=${key.protocol} port=${key.dport}/${key.prefixlen} ${value.flags === FLAGS.allow ? 'allow' : value.flags === FLAGS.unisolated ? 'unisolated' : 'deny'}`).sort();

t.test('no policy: both directions unisolated', async (t) => {
  t.same(rows(compilePolicies(base(''))), ['in id=0 p=0 port=0/72 unisolated', 'out id=0 p=0 port=0/72 unisolated']);
});

t.test('ingress from client pods of the namespace on a named port; egress untouched', async (t) => {
  const c = compilePolicies(base(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{podSelector: {matchLabels: {app: client}}}], ports: [{port: http}]}]
`));
  t.same(rows(c), ['in id=0 p=0 port=0/72 deny', 'in id=301 p=6 port=8080/96 allow', 'out id=0 p=0 port=0/72 unisolated']);
  t.equal([...c.entries.values()].find((e) => e.value.flags === FLAGS.deny)!.value.policy, policyId('shop/web'));
});

t.test('namespaceSelector + podSelector, endPort range, ipBlock with except, egress', async (t) => {
  const c = compilePolicies(base(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: out, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to: [{namespaceSelector: {matchLabels: {team: blue}}, podSelector: {matchLabels: {app: client}}}]
    ports: [{protocol: UDP, port: 1000, endPort: 1001}]
  - to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}]
`));
  const cidrs = [...c.cidrIdentities];
  t.same(cidrs, [['10.0.0.0/8', FIRST_CIDR_IDENTITY], ['10.1.0.0/16', FIRST_CIDR_IDENTITY + 1]]);
  t.same(rows(c), [
    'in id=0 p=0 port=0/72 unisolated',
    'out id=0 p=0 port=0/72 deny',
    `out id=${FIRST_CIDR_IDENTITY} p=0 port=0/72 allow`,
    'out id=302 p=17 port=1000/95 allow',
  ]);
});

t.test('an empty rule allows everything; an empty ingress list isolates', async (t) => {
  t.same(rows(compilePolicies(base(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: all, namespace: shop}
spec: {podSelector: {}, ingress: [{}]}
`))), ['in id=0 p=0 port=0/72 allow', 'out id=0 p=0 port=0/72 unisolated']);
  t.same(rows(compilePolicies(base(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: none, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
`))), ['in id=0 p=0 port=0/72 deny', 'out id=0 p=0 port=0/72 deny']);
});

t.test('ipBlocks and pod addresses: CIDR identities for the ipcache and sl_policy_cidr; a named port of an egress ipBlock rule resolves per pod', async (t) => {
  const c = compilePolicies({
    ...base(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: out, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 10.244.0.0/16, except: [10.244.9.0/24]}}]
    ports: [{port: api}]
  - to: [{ipBlock: {cidr: 10.244.1.0/24}}]
`),
    podPorts: new Map([
      ['10.244.1.5', [{ name: 'api', port: 9000, protocol: 'TCP' as const }]],
      ['10.244.2.6', [{ name: 'api', port: 9100, protocol: 'TCP' as const }, { name: 'metrics', port: 9101, protocol: 'TCP' as const }]],
      ['10.244.9.7', [{ name: 'api', port: 9200, protocol: 'TCP' as const }]],
      ['192.0.2.8', [{ name: 'api', port: 9300, protocol: 'TCP' as const }]],
    ]),
  });
  t.same([...c.cidrIdentities.keys()].sort(), ['10.244.0.0/16', '10.244.1.0/24', '10.244.9.0/24'], 'the ipcache gets the policies\' CIDRs only');
  t.same([...c.addressIdentities.keys()].sort(), ['10.244.0.0/16', '10.244.1.0/24', '10.244.1.5/32', '10.244.2.6/32', '10.244.9.0/24'],
    'sl_policy_cidr also gets a /32 for each pod inside the named-port block (not the excepted one, not one outside)');
  for (const [cidr, id] of c.cidrIdentities) t.equal(c.addressIdentities.get(cidr), id, `${cidr}: one identity in both maps`);
  const id = (cidr: string) => c.addressIdentities.get(cidr)!;
  const out = rows(c).filter((r) => r.startsWith('out') && r.endsWith('allow'));
  t.same(out, [
    `out id=${id('10.244.1.0/24')} p=0 port=0/72 allow`,
    `out id=${id('10.244.1.5/32')} p=0 port=0/72 allow`,
    `out id=${id('10.244.1.5/32')} p=6 port=9000/96 allow`,
    `out id=${id('10.244.2.6/32')} p=6 port=9100/96 allow`,
  ].sort(), 'api resolves to each pod\'s own port; the /24 rule grants the pod /32 inside it too; the /16 itself has no pod, so no named port');
  t.ok(c.addressIdentities.get('10.244.1.5/32')! >= FIRST_CIDR_IDENTITY);
});
