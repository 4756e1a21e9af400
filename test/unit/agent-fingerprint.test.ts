/**
 * The fingerprint of a reconciliation's inputs (src/agent/fingerprint.ts) and of the policy
 * feature's inputs (src/agent/policy-inputs.ts): stable while nothing changes, different when
 * any input changes, independent of the order of what are sets.
 */
import t from 'tap';
import { fingerprint } from '../../src/agent/fingerprint.js';
import { compileInputOf, policyInputsFingerprint, policyIpcache, type PolicyInputs } from '../../src/agent/policy-inputs.js';
import { FIRST_CIDR_IDENTITY, IDENTITY, NAMESPACE_LABEL } from '../../src/identity/identity.js';
import { compilePolicies } from '../../src/policy/compile.js';
import { parsePolicies } from '../../src/policy/parse.js';
import type { PublishedEndpoint } from '../../src/policy/store.js';

t.test('fingerprint: canonical, order-free for Maps, Sets and object keys, ordered for arrays', async (t) => {
  const v = { a: 1, b: ['x', 'y'], c: new Map([['k', { z: true }]]), d: new Set([3, 1, 2]) };
  t.equal(fingerprint(v), fingerprint(v), 'stable');
  t.equal(fingerprint(v), fingerprint({ d: new Set([2, 3, 1]), c: new Map([['k', { z: true }]]), b: ['x', 'y'], a: 1 }), 'a copy built in another order');
  t.match(fingerprint(v), /^[0-9a-f]{64}$/);
  t.equal(fingerprint(new Map([['a', 1], ['b', 2]])), fingerprint(new Map([['b', 2], ['a', 1]])), 'Map order');
  t.equal(fingerprint(new Map([[2, 'x'], [10, 'y']])), fingerprint(new Map([[10, 'y'], [2, 'x']])), 'Map with number keys');
  t.equal(fingerprint(new Set(['b', 'a'])), fingerprint(new Set(['a', 'b'])), 'Set order');
  t.equal(fingerprint(new Set([{ x: 1 }, { x: 2 }])), fingerprint(new Set([{ x: 2 }, { x: 1 }])), 'Set of objects');
  t.equal(fingerprint({ a: 1, b: undefined }), fingerprint({ a: 1 }), 'an undefined property counts as absent, like in JSON');
  const distinct: [string, unknown][] = [
    ['array order', ['y', 'x']], ['number vs string', ['1']], ['1', [1]], ['null', null], ['undefined', undefined],
    ['string boundaries ab|c', ['ab', 'c']], ['a|bc', ['a', 'bc']], ['empty object', {}], ['empty array', []],
    ['empty Map', new Map()], ['empty Set', new Set()], ['true', true], ['false', false], ['bigint', 1n],
    ['Map vs object', new Map([['a', 1]])], ['object', { a: 1 }], ['nested change', { a: { b: [1, 2] } }], ['nested change 2', { a: { b: [1, 3] } }],
  ];
  const seen = new Map<string, string>();
  for (const [name, x] of distinct) {
    const f = fingerprint(x);
    t.notOk(seen.has(f), `${name}: its own fingerprint${seen.has(f) ? ` (same as ${seen.get(f)})` : ''}`);
    seen.set(f, name);
  }
  t.throws(() => fingerprint({ f: () => 1 }), /cannot fingerprint a function/);
});

t.test('fingerprint: 50,000 entries in a Map', async (t) => {
  const m = new Map<string, { identity: number; tunnel_endpoint: string; flags: number }>();
  for (let i = 0; i < 50_000; i++) m.set(`172.10.${i >> 8}.${i & 255}/32`, { identity: FIRST_CIDR_IDENTITY + i, tunnel_endpoint: '0.0.0.0', flags: 0 });
  const reversed = new Map([...m].reverse());
  t.equal(fingerprint(m), fingerprint(reversed), 'the same whatever the insertion order');
  reversed.set('172.10.0.7/32', { identity: 1, tunnel_endpoint: '0.0.0.0', flags: 0 });
  t.not(fingerprint(m), fingerprint(reversed), 'one entry changed: another fingerprint');
});

const POLICY = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}, {ipBlock: {cidr: 172.10.0.0/24, except: [172.10.0.7/32]}}]
    ports: [{port: http}]
`;
const policy = parsePolicies(POLICY, 'p.yaml')[0]!;
const pub = (e: Omit<PublishedEndpoint, 'namespace'>): [string, string] => [`endpoints/${e.node}/${e.id}`, JSON.stringify({ ...e, namespace: 'shop' })];

/** The inputs of one pass on node n1; every call builds new objects. */
function inputs(): PolicyInputs {
  return {
    policies: new Map([['policies/shop/web', JSON.stringify(policy)], ['policies/shop/other', JSON.stringify({ ...policy, metadata: { name: 'other', namespace: 'shop' } })]]),
    namespaces: new Map([['shop', JSON.stringify({ labels: { team: 'blue' } })], ['dev', JSON.stringify({ labels: {} })]]),
    endpoints: new Map([
      pub({ node: 'n1', id: 7, name: 'shop/web', ip: '10.244.0.7', identity: 300, labels: { app: 'web' }, ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] }),
      pub({ node: 'n2', id: 1, name: 'shop/client', ip: '10.244.1.1', identity: 301, labels: { app: 'client' }, ports: [] }),
    ]),
    identities: new Map([[300, { app: 'web', [NAMESPACE_LABEL]: 'shop' }], [301, { app: 'client', [NAMESPACE_LABEL]: 'shop' }]]),
    local: new Map([[7, { id: 7, namespace: 'shop', identity: 300, labels: { app: 'web' }, ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] }]]),
    addresses: new Set(['198.18.0.1', '192.168.5.1']),
  };
}

/** `inputs()` with every collection built in reverse order. */
function reversedInputs(): PolicyInputs {
  const i = inputs();
  const rev = <K, V>(m: ReadonlyMap<K, V>) => new Map([...m].reverse());
  return { ...i, policies: rev(i.policies), namespaces: rev(i.namespaces), endpoints: rev(i.endpoints), identities: rev(i.identities), local: rev(i.local), addresses: new Set([...i.addresses].reverse()) };
}

t.test('policy inputs: stable while nothing changes, whatever the order they were read in', async (t) => {
  const base = policyInputsFingerprint(inputs());
  t.equal(policyInputsFingerprint(inputs()), base, 'the same inputs read again');
  t.equal(policyInputsFingerprint(reversedInputs()), base, 'policies, namespaces, endpoints, identities, local endpoints and addresses are sets');
  t.same(compilePolicies(compileInputOf(reversedInputs())), compilePolicies(compileInputOf(inputs())), 'and they compile to the same entries');
});

t.test('policy inputs: any change to any input changes the fingerprint', async (t) => {
  const base = policyInputsFingerprint(inputs());
  const change = (f: (i: PolicyInputs) => PolicyInputs) => f(inputs());
  const web2 = { ...policy, spec: { ...policy.spec, ingress: [{ ...policy.spec.ingress[0]!, ports: [{ protocol: 'TCP' as const, port: 81 }] }] } };
  const variants: [string, PolicyInputs][] = [
    ['a policy changed', change((i) => ({ ...i, policies: new Map([...i.policies, ['policies/shop/web', JSON.stringify(web2)]]) }))],
    ['a policy added', change((i) => ({ ...i, policies: new Map([...i.policies, ['policies/dev/x', JSON.stringify({ ...policy, metadata: { name: 'x', namespace: 'dev' } })]]) }))],
    ['a policy deleted', change((i) => ({ ...i, policies: new Map([...i.policies].slice(1)) }))],
    ['a namespace label changed', change((i) => ({ ...i, namespaces: new Map([...i.namespaces, ['shop', JSON.stringify({ labels: { team: 'red' } })]]) }))],
    ['a namespace added', change((i) => ({ ...i, namespaces: new Map([...i.namespaces, ['prod', JSON.stringify({ labels: {} })]]) }))],
    ['an identity relabelled', change((i) => ({ ...i, identities: new Map([...i.identities, [301, { app: 'client', tier: 'x', [NAMESPACE_LABEL]: 'shop' }]]) }))],
    ['an identity added', change((i) => ({ ...i, identities: new Map([...i.identities, [302, { app: 'db', [NAMESPACE_LABEL]: 'shop' }]]) }))],
    ['an identity removed', change((i) => ({ ...i, identities: new Map([...i.identities].slice(0, 1)) }))],
    ['a remote endpoint moved', change((i) => ({ ...i, endpoints: new Map([...i.endpoints, pub({ node: 'n2', id: 1, name: 'shop/client', ip: '10.244.1.9', identity: 301, labels: { app: 'client' }, ports: [] })]) }))],
    ['a remote endpoint declared a port', change((i) => ({ ...i, endpoints: new Map([...i.endpoints, pub({ node: 'n2', id: 1, name: 'shop/client', ip: '10.244.1.1', identity: 301, labels: { app: 'client' }, ports: [{ port: 53, protocol: 'UDP' }] })]) }))],
    ['a remote endpoint published', change((i) => ({ ...i, endpoints: new Map([...i.endpoints, pub({ node: 'n3', id: 2, name: 'shop/db', ip: '10.244.2.2', identity: 301, labels: { app: 'client' }, ports: [] })]) }))],
    ['a remote endpoint gone', change((i) => ({ ...i, endpoints: new Map([...i.endpoints].slice(0, 1)) }))],
    ['a local endpoint relabelled', change((i) => ({ ...i, local: new Map([[7, { ...i.local.get(7)!, labels: { app: 'web', v: '2' } }]]) }))],
    ['a local endpoint got another identity', change((i) => ({ ...i, local: new Map([[7, { ...i.local.get(7)!, identity: 305 }]]) }))],
    ['a local endpoint changed its ports', change((i) => ({ ...i, local: new Map([[7, { ...i.local.get(7)!, ports: [{ name: 'http', port: 8081, protocol: 'TCP' as const }] }]]) }))],
    ['a local endpoint added', change((i) => ({ ...i, local: new Map([...i.local, [8, { id: 8, namespace: 'shop', identity: 301, labels: { app: 'client' }, ports: [] }]]) }))],
    ['no local endpoint', change((i) => ({ ...i, local: new Map() }))],
    ['an address added', change((i) => ({ ...i, addresses: new Set([...i.addresses, '10.0.0.1']) }))],
    ['an address removed', change((i) => ({ ...i, addresses: new Set(['198.18.0.1']) }))],
  ];
  const seen = new Map<string, string>([[base, 'the base']]);
  for (const [name, v] of variants) {
    const f = policyInputsFingerprint(v);
    t.notOk(seen.has(f), `${name}: another fingerprint${seen.has(f) ? ` (same as ${seen.get(f)})` : ''}`);
    seen.set(f, name);
  }
});

t.test('policy inputs: every field of PolicyInputs is in the fingerprint', async (t) => {
  // A field added to PolicyInputs but left out of the fingerprint would make passes skip its changes.
  const base = inputs();
  const f0 = policyInputsFingerprint(base);
  for (const key of Object.keys(base) as (keyof PolicyInputs)[]) {
    const emptied = { ...base, [key]: base[key] instanceof Set ? new Set() : new Map() } as PolicyInputs;
    t.not(policyInputsFingerprint(emptied), f0, `${key} emptied: another fingerprint`);
  }
});

t.test('policy ipcache: other nodes\' pods, CIDR identities, own addresses as the host', async (t) => {
  const i = inputs();
  const compiled = compilePolicies(compileInputOf(i));
  const m = policyIpcache('n1', i, compiled.cidrIdentities);
  t.same(m.get('10.244.1.1/32'), { identity: 301, tunnel_endpoint: '0.0.0.0', flags: 0 }, 'the other node\'s pod with its identity');
  t.notOk(m.has('10.244.0.7/32'), 'not this node\'s own pods (sl_endpoints has them)');
  t.same(m.get('172.10.0.0/24'), { identity: compiled.cidrIdentities.get('172.10.0.0/24'), tunnel_endpoint: '0.0.0.0', flags: 0 }, 'an ipBlock\'s CIDR identity');
  t.ok(compiled.cidrIdentities.has('172.10.0.7/32') && m.has('172.10.0.7/32'), 'and its except');
  t.same([m.get('198.18.0.1/32')?.identity, m.get('192.168.5.1/32')?.identity], [IDENTITY.host, IDENTITY.host], 'own addresses are the host');
  t.equal(m.size, 5);
});

t.test('policy ipcache: a pod\'s /32 wins over an ipBlock /32 of its address (its CIDR identity is in sl_policy_cidr)', async (t) => {
  const i = inputs();
  const m = policyIpcache('n1', i, new Map([['10.244.1.1/32', FIRST_CIDR_IDENTITY + 9]]));
  t.same(m.get('10.244.1.1/32'), { identity: 301, tunnel_endpoint: '0.0.0.0', flags: 0 }, 'the pod keeps its identity');
  const c = compilePolicies({ ...compileInputOf(i), policies: parsePolicies(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p}
spec:
  podSelector: {}
  ingress: [{from: [{ipBlock: {cidr: 10.244.1.1/32}}]}]
`, 'p.yaml') });
  t.equal(c.addressIdentities.get('10.244.1.1/32'), c.cidrIdentities.get('10.244.1.1/32'), 'and the ipBlock\'s identity goes to sl_policy_cidr');
});
