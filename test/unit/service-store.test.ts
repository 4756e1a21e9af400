/**
 * Services and EndpointSlices in the store (src/service/store.ts), on the file store in a
 * temporary directory: allocation from serviceCIDR and nodePortRange, what is kept on a
 * re-apply, immutability, conflicts, all-or-nothing, concurrent applies, forged records, delete.
 */
import t from 'tap';
import { FileStore } from '../../src/store/file.js';
import { ENDPOINT_SLICES, endpointSliceStoreKey, SERVICE_ALLOCATION_KEY, SERVICES, serviceStoreKey } from '../../src/store/keys.js';
import { parseServiceDocuments } from '../../src/service/parse.js';
import {
  applyServices, deleteEndpointSlices, deleteServiceObjects, deleteServices, getEndpointSlice, getService, listEndpointSlices,
  listServices, parseServiceRecord, planServices, ServiceStoreError,
} from '../../src/service/store.js';
import type { Service } from '../../src/service/types.js';
import { cidrContains, cidrLast, formatIPv4, ipv4Add, parseCidr, parseIPv4 } from '../../src/util/ipv4.js';
import { tempDir, type Teardown } from '../helpers/env.js';

const OPTS = { serviceCIDR: '10.96.0.0/24', nodePortRange: '30000-30099', clusterCIDR: '10.244.0.0/16' };
const POOL = parseCidr(OPTS.serviceCIDR);
const RESERVED = formatIPv4(ipv4Add(POOL.base, 1));

const svcYaml = (name: string, spec: string, ns = 'default') => `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}}
spec:
${spec.trim().split('\n').map((l) => `  ${l}`).join('\n')}
`;
const input = (...docs: string[]) => parseServiceDocuments(docs.join('---\n'), 'in.yaml');
const plain = (name: string, extra = '', ns = 'default') => svcYaml(name, `selector: {app: ${name}}\nports: [{port: 80}]\n${extra}`, ns);
const nodePort = (name: string, ports = '[{name: http, port: 80}, {name: dns, port: 53, protocol: UDP}]') => svcYaml(name, `type: NodePort\nselector: {app: ${name}}\nports: ${ports}`);

function store(t: Teardown, prefix = 'sltsvc'): { dir: string; s: FileStore } {
  const dir = tempDir(t, prefix);
  const s = new FileStore(dir);
  t.teardown(() => s.close());
  return { dir, s };
}

/** A usable, allocatable address of the pool: inside, not the network, broadcast or reserved first address. */
function allocatable(ip: string): boolean {
  const a = parseIPv4(ip);
  return cidrContains(POOL, a) && a !== POOL.base && a !== cidrLast(POOL) && ip !== RESERVED;
}

async function rejected(p: Promise<unknown>): Promise<string[]> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ServiceStoreError) return [...e.problems];
    throw e;
  }
  return [];
}

t.test('apply allocates a clusterIP and nodePorts, reports them; list and get read them back', async (t) => {
  const { s } = store(t);
  const r = await applyServices(s, input(plain('a'), nodePort('b')), OPTS);
  t.same(r.services.map((x) => [x.ref, x.action]), [['default/a', 'created'], ['default/b', 'created']]);
  const [a, b] = r.services;
  t.ok(allocatable(a!.clusterIP) && allocatable(b!.clusterIP), `allocated in the pool, never its network, broadcast or first address: ${a!.clusterIP}, ${b!.clusterIP}`);
  t.not(a!.clusterIP, b!.clusterIP, 'distinct');
  t.same(a!.allocated, [`clusterIP ${a!.clusterIP}`]);
  t.same(a!.nodePorts, [], 'a ClusterIP service has no nodePort');
  t.equal(b!.nodePorts.length, 2, 'one nodePort per port of a NodePort service');
  for (const np of b!.nodePorts) {
    const n = Number(np.split('/')[0]);
    t.ok(n >= 30000 && n <= 30099, `${np} in nodePortRange`);
  }
  t.same(b!.nodePorts.map((x) => x.split('/')[1]), ['TCP', 'UDP']);
  t.match(b!.allocated, [/^clusterIP /, /^nodePort \d+\/TCP \(port 80\/TCP\)$/, /^nodePort \d+\/UDP \(port 53\/UDP\)$/]);
  const listed = await listServices(s);
  t.same(listed.map((x) => [x.name, x.clusterIP]), [['a', a!.clusterIP], ['b', b!.clusterIP]], 'stored with the allocated addresses');
  t.same((await getService(s, 'default/b'))!.ports.map((p) => `${p.nodePort}/${p.protocol}`), b!.nodePorts);
  t.equal(await getService(s, 'default/zz'), undefined);
  t.same(await listServices(s, [], 'other'), [], 'by namespace');
  t.ok(await s.get(SERVICE_ALLOCATION_KEY), 'the allocation key was written with the services');
  t.same((await s.list(SERVICES)).map((kv) => kv.key), [serviceStoreKey('default/a'), serviceStoreKey('default/b')], 'listing services never sees the allocation key');
});

t.test('a re-apply keeps what was allocated; unchanged is unchanged; a change is configured', async (t) => {
  const { s } = store(t);
  const first = await applyServices(s, input(plain('a'), nodePort('b')), OPTS);
  const again = await applyServices(s, input(plain('a'), nodePort('b')), OPTS);
  t.same(again.services.map((x) => x.action), ['unchanged', 'unchanged'], 'the same input again changes nothing');
  t.same(again.services.map((x) => [x.clusterIP, x.nodePorts]), first.services.map((x) => [x.clusterIP, x.nodePorts]), 'and keeps the clusterIPs and nodePorts');
  t.same(again.services.flatMap((x) => x.allocated), [], 'allocating nothing');
  const changed = await applyServices(s, input(plain('a', 'sessionAffinity: ClientIP'), nodePort('b', '[{name: http, port: 80}, {name: dns, port: 53, protocol: UDP}, {name: https, port: 443}]')), OPTS);
  t.same(changed.services.map((x) => x.action), ['configured', 'configured']);
  t.equal(changed.services[0]!.clusterIP, first.services[0]!.clusterIP, 'the clusterIP is kept through a change');
  t.same(changed.services[1]!.nodePorts.slice(0, 2), first.services[1]!.nodePorts, 'the ports already there keep their nodePorts');
  t.equal(changed.services[1]!.allocated.length, 1, 'the new port gets one');
  t.notOk(first.services[1]!.nodePorts.includes(changed.services[1]!.nodePorts[2]!), 'distinct from the others');
  const toClusterIP = await applyServices(s, input(svcYaml('b', 'selector: {app: b}\nports: [{name: http, port: 80}]')), OPTS);
  t.same(toClusterIP.services[0]!.nodePorts, [], 'NodePort → ClusterIP drops the nodePorts');
  t.equal(toClusterIP.services[0]!.clusterIP, first.services[1]!.clusterIP);
});

t.test('given addresses and ports: checked, never taken by an allocation, conflicts refused', async (t) => {
  const { s } = store(t);
  const given = await applyServices(s, input(plain('auto'), svcYaml('fixed', 'clusterIP: 10.96.0.2\nports: [{port: 80}]'), svcYaml('np', 'type: NodePort\nports: [{port: 80, nodePort: 30000}]')), OPTS);
  t.equal(given.services[1]!.clusterIP, '10.96.0.2', 'a given clusterIP is kept');
  t.not(given.services[0]!.clusterIP, '10.96.0.2', 'an allocation earlier in the input does not take what a later service asks for');
  t.same(given.services[2]!.nodePorts, ['30000/TCP']);
  t.same(given.services[2]!.allocated, [`clusterIP ${given.services[2]!.clusterIP}`], 'a given nodePort is not allocated');
  t.equal(await applyServices(s, input(svcYaml('k8s', `clusterIP: ${RESERVED}\nports: [{port: 443}]`)), OPTS).then((r) => r.services[0]!.clusterIP), RESERVED,
    'the reserved first address may be given (as the kubernetes service is)');

  const cases: [string, string, RegExp][] = [
    ['clusterIP outside the pool', svcYaml('x', 'clusterIP: 10.97.0.5\nports: [{port: 80}]'), /^service default\/x: clusterIP 10\.97\.0\.5 is outside serviceCIDR 10\.96\.0\.0\/24$/],
    ['the network address', svcYaml('x', 'clusterIP: 10.96.0.0\nports: [{port: 80}]'), /clusterIP 10\.96\.0\.0 is the network address of serviceCIDR/],
    ['the broadcast address', svcYaml('x', 'clusterIP: 10.96.0.255\nports: [{port: 80}]'), /clusterIP 10\.96\.0\.255 is the broadcast address of serviceCIDR/],
    ['a clusterIP taken', svcYaml('x', 'clusterIP: 10.96.0.2\nports: [{port: 80}]'), /^service default\/x: clusterIP 10\.96\.0\.2 is service default\/fixed's already$/],
    ['a nodePort outside the range', svcYaml('x', 'type: NodePort\nports: [{port: 80, nodePort: 31000}]'), /^service default\/x: port 80\/TCP: nodePort 31000 is outside nodePortRange 30000-30099$/],
    ['a nodePort taken (same protocol)', svcYaml('x', 'type: NodePort\nports: [{port: 81, nodePort: 30000}]'), /^service default\/x: nodePort 30000\/TCP is service default\/np's already$/],
    ['an external IP in the service pool', svcYaml('x', 'externalIPs: [10.96.0.77]\nports: [{port: 80}]'), /^service default\/x: external IP 10\.96\.0\.77 is in serviceCIDR/],
    ['an external IP in the pod pool', svcYaml('x', 'externalIPs: [10.244.3.3]\nports: [{port: 80}]'), /^service default\/x: external IP 10\.244\.3\.3 is in the pod pool \(clusterCIDR 10\.244\.0\.0\/16\)$/],
    ['the clusterIP changed', svcYaml('fixed', 'clusterIP: 10.96.0.9\nports: [{port: 80}]'), /^service default\/fixed: clusterIP is immutable: it is 10\.96\.0\.2, not 10\.96\.0\.9/],
  ];
  for (const [what, doc, re] of cases) {
    const before = await s.list('');
    const problems = await rejected(applyServices(s, input(plain('innocent'), doc), OPTS));
    t.match(problems, [re], what);
    t.same(await s.list(''), before, `${what}: nothing was written (not even the innocent service of the same input)`);
  }
  t.same(await rejected(applyServices(s, input(svcYaml('x', 'type: NodePort\nports: [{port: 81, protocol: UDP, nodePort: 30000}]')), OPTS)), [], 'the same nodePort for another protocol is free');

  const ext = await applyServices(s, input(svcYaml('e1', 'externalIPs: [192.0.2.10]\nports: [{port: 80}]')), OPTS);
  t.equal(ext.services[0]!.action, 'created');
  t.match(await rejected(applyServices(s, input(svcYaml('e2', 'externalIPs: [192.0.2.10]\nports: [{port: 80}]')), OPTS)), [/^service default\/e2: external IP 192\.0\.2\.10 port 80\/TCP is service default\/e1's already$/],
    'one external frontend for one service');
  t.same(await rejected(applyServices(s, input(svcYaml('e2', 'externalIPs: [192.0.2.10]\nports: [{port: 443}]')), OPTS)), [], 'another port of the same external IP is free');

  const all = await rejected(applyServices(s, input(svcYaml('p', 'clusterIP: 10.97.0.1\nports: [{port: 80}]'), svcYaml('q', 'type: NodePort\nports: [{port: 80, nodePort: 1}]')), OPTS));
  t.equal(all.length, 2, 'every problem of the input is listed');
  const err = await applyServices(s, input(svcYaml('p', 'clusterIP: 10.97.0.1\nports: [{port: 80}]')), OPTS).catch((e: unknown) => e);
  t.match((err as Error).message, /^nothing was applied: 1 problem:\n {2}service default\/p: clusterIP/);
});

t.test('the pool and the range run out', async (t) => {
  const { s } = store(t);
  const tiny = { serviceCIDR: '10.96.0.0/29', nodePortRange: '30000-30001' };
  // A /29: 8 addresses, the network, the broadcast and the reserved first one are never allocated.
  const six = Array.from({ length: 6 }, (_, i) => plain(`s${i}`));
  const problems = await rejected(applyServices(s, input(...six), tiny));
  t.match(problems, [/^service default\/s5: serviceCIDR 10\.96\.0\.0\/29 has no free address left$/], 'the 6th of a /29 finds none');
  t.same(await listServices(s), [], 'and nothing is stored');
  const r = await applyServices(s, input(...six.slice(0, 5)), tiny);
  t.equal(new Set(r.services.map((x) => x.clusterIP)).size, 5);
  t.ok(r.services.every((x) => cidrContains(parseCidr(tiny.serviceCIDR), parseIPv4(x.clusterIP)) && x.clusterIP !== '10.96.0.1'));
  t.match(await rejected(applyServices(s, input(nodePort('np', '[{name: a, port: 1}, {name: b, port: 2}, {name: c, port: 3}]')), { ...tiny, serviceCIDR: '10.96.1.0/24' })),
    [/^service default\/np: port 3\/TCP: nodePortRange 30000-30001 has no free TCP port left$/]);
});

t.test('concurrent applies on two store instances never hand out an address or a port twice', async (t) => {
  const { dir, s } = store(t, 'sltsvcrace');
  const others = Array.from({ length: 3 }, () => new FileStore(dir));
  t.teardown(() => Promise.all(others.map((o) => o.close())));
  const stores = [s, ...others];
  const batches = Array.from({ length: 8 }, (_, i) => input(...Array.from({ length: 3 }, (_, j) => nodePort(`r${i}-${j}`, '[{port: 80}]'))));
  const results = await Promise.all(batches.map((b, i) => applyServices(stores[i % stores.length]!, b, OPTS)));
  const services = await listServices(s);
  t.equal(services.length, 24, 'every service stored');
  const ips = services.map((x) => x.clusterIP);
  const ports = services.map((x) => x.ports[0]!.nodePort);
  t.equal(new Set(ips).size, ips.length, 'no clusterIP twice');
  t.equal(new Set(ports).size, ports.length, 'no nodePort twice');
  t.ok(ips.every(allocatable), 'all in the pool');
  const reported = new Map(results.flatMap((r) => r.services.map((x) => [x.ref, x.clusterIP] as const)));
  t.ok(services.every((x) => reported.get(`${x.namespace}/${x.name}`) === x.clusterIP), 'what each apply reported is what is stored');
});

t.test('EndpointSlices: stored, listed, warned about, all or nothing with the services', async (t) => {
  const { s } = store(t);
  const slice = (name: string, svc: string, ips: string[]) => `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${name}, labels: {kubernetes.io/service-name: ${svc}}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [${ips.map((ip) => `{addresses: [${ip}], nodeName: n1}`).join(', ')}]
`;
  const noSel = svcYaml('sliced', 'ports: [{name: http, port: 80}]');
  const r = await applyServices(s, input(noSel, slice('sliced-1', 'sliced', ['10.244.0.5', '10.244.1.5'])), OPTS);
  t.same(r.slices, [{ ref: 'default/sliced-1', action: 'created' }]);
  t.same(r.warnings, []);
  t.same((await listEndpointSlices(s)).map((x) => [x.name, x.service, x.endpoints.length]), [['sliced-1', 'sliced', 2]]);
  const down = await applyServices(s, input(slice('sliced-1', 'sliced', ['10.244.0.5'])), OPTS);
  t.same(down.slices, [{ ref: 'default/sliced-1', action: 'configured' }], 'a slice alone is applied');
  t.equal((await getEndpointSlice(s, 'default/sliced-1'))!.endpoints.length, 1);
  t.same((await applyServices(s, input(slice('sliced-1', 'sliced', ['10.244.0.5'])), OPTS)).slices[0]!.action, 'unchanged');
  const w = await applyServices(s, input(plain('sel'), slice('orphan', 'nobody', ['10.244.0.9']), slice('sel-1', 'sel', ['10.244.0.9'])), OPTS);
  t.match(w.warnings, [/^EndpointSlice default\/orphan: service default\/nobody is not stored/, /^EndpointSlice default\/sel-1: service default\/sel has a selector/]);
  const before = await s.list('');
  t.match(await rejected(applyServices(s, input(slice('new-1', 'sliced', ['10.244.0.7']), svcYaml('bad', 'clusterIP: 10.1.1.1\nports: [{port: 80}]')), OPTS)), [/outside serviceCIDR/]);
  t.same(await s.list(''), before, 'a slice is not stored when a service of its input is refused');
});

t.test('records of the store are checked: a forged one is reported with its key and left out', async (t) => {
  const { s } = store(t);
  await applyServices(s, input(plain('good')), OPTS);
  const good = (await listServices(s))[0]!;
  const forged: [string, string, RegExp][] = [
    [serviceStoreKey('default/junk'), 'not json', /store record services\/default\/junk: is not JSON/],
    [serviceStoreKey('default/wrong'), JSON.stringify({ ...good }), /services\/default\/wrong: "name" is 'good', but the key names wrong/],
    [serviceStoreKey('default/ip'), JSON.stringify({ ...good, name: 'ip', clusterIP: '10.96.0.999' }), /"clusterIP" must be an IPv4 address/],
    [serviceStoreKey('default/np'), JSON.stringify({ ...good, name: 'np', ports: [{ name: '', protocol: 'TCP', port: 80, targetPort: 80, nodePort: 30000 }] }), /"ports\[0\]\.nodePort" must be 0 \(the service is a ClusterIP\)/],
    [serviceStoreKey('default/proto'), JSON.stringify({ ...good, name: 'proto', ports: [{ name: '', protocol: 'SCTP', port: 80, targetPort: 80, nodePort: 0 }] }), /"ports\[0\]\.protocol" must be TCP or UDP/],
    [serviceStoreKey('default/sel'), JSON.stringify({ ...good, name: 'sel', selector: { 'bad key!': 'x' } }), /"selector" label key 'bad key!'/],
    [serviceStoreKey('default/aff'), JSON.stringify({ ...good, name: 'aff', sessionAffinity: 'ClientIP', affinityTimeoutSeconds: 0 }), /"affinityTimeoutSeconds" must be a whole number from 1 to 86400/],
    [serviceStoreKey('default/a/b'), JSON.stringify(good), /is not a key services\/<namespace>\/<name>/],
    [endpointSliceStoreKey('default/s'), JSON.stringify({ namespace: 'default', name: 's', service: 'x', ports: [], endpoints: [{ addresses: ['fd00::1'], ready: true, nodeName: '' }] }),
      /endpointslices\/default\/s: "endpoints\[0\]\.addresses" must be a non-empty list of IPv4 addresses/],
  ];
  for (const [key, value] of forged) await s.put(key, value);
  const problems: string[] = [];
  t.same((await listServices(s, problems)).map((x) => x.name), ['good'], 'only the good one is listed');
  const sliceProblems: string[] = [];
  t.same(await listEndpointSlices(s, sliceProblems), []);
  const all = [...problems, ...sliceProblems];
  for (const [key, , re] of forged) t.ok(all.some((p) => re.test(p) && p.includes(key) && p.endsWith('; left out')), `${key}: ${all.find((p) => p.includes(key)) ?? 'not reported'}`);
  t.throws(() => parseServiceRecord(serviceStoreKey('default/wrong'), JSON.stringify(good)), /but the key names wrong/);
  await t.rejects(getService(s, 'default/junk'), /is not JSON/, 'get says what is wrong with the record');

  // An apply goes on, reports the forged records, and may overwrite one.
  const ip = (await s.get(serviceStoreKey('default/ip')))!;
  const r = await applyServices(s, input(plain('ip'), plain('more')), OPTS);
  t.ok(r.problems.some((p) => p.includes(serviceStoreKey('default/junk'))), 'the apply reports the forged records it read');
  t.same(r.services.map((x) => x.action), ['created', 'created'], 'a forged record is no service: the one at its key is created');
  t.not((await s.get(serviceStoreKey('default/ip')))!.modRevision, ip.modRevision, 'and overwrites it');
  t.ok(r.services.every((x) => allocatable(x.clusterIP) && x.clusterIP !== good.clusterIP), 'with addresses of their own');
});

t.test('delete: one transaction, an unknown name is an error and nothing is deleted', async (t) => {
  const { s } = store(t);
  await applyServices(s, input(plain('a'), plain('b'), `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: a-1, labels: {kubernetes.io/service-name: a}}
addressType: IPv4
endpoints: []
`), OPTS);
  t.match(await rejected(deleteServices(s, ['default/a', 'default/zz'])), ['no service default/zz']);
  t.same((await listServices(s)).map((x) => x.name), ['a', 'b'], 'nothing deleted');
  const err = await deleteServices(s, ['default/zz']).catch((e: unknown) => e);
  t.match((err as Error).message, /^nothing was deleted: 1 problem:\n {2}no service default\/zz/);
  t.same(await deleteServices(s, ['default/a']), ['default/a']);
  t.same((await listServices(s)).map((x) => x.name), ['b']);
  t.match(await rejected(deleteEndpointSlices(s, ['default/a-2'])), ['no EndpointSlice default/a-2']);
  t.same(await deleteServiceObjects(s, { services: ['default/b'], slices: ['default/a-1'] }), { services: ['default/b'], slices: ['default/a-1'] });
  t.same([await s.list(SERVICES), await s.list(ENDPOINT_SLICES)], [[], []]);
  const again = await applyServices(s, input(plain('c')), OPTS);
  t.ok(allocatable(again.services[0]!.clusterIP), 'addresses of deleted services are free again');
});

t.test('planServices (pure): what is kept, what is allocated', async (t) => {
  const mk = (o: Partial<Service>): Service => ({
    namespace: 'default', name: 'x', type: 'ClusterIP', clusterIP: '', externalIPs: [], selector: { app: 'x' }, ports: [{ name: '', protocol: 'TCP', port: 80, targetPort: 80, nodePort: 0 }],
    sessionAffinity: 'None', affinityTimeoutSeconds: 0, externalTrafficPolicy: 'Cluster', internalTrafficPolicy: 'Cluster', ...o,
  });
  const stored = new Map([['default/x', mk({ clusterIP: '10.96.0.50' })]]);
  const p = planServices(stored, [mk({}), mk({ name: 'y' })], OPTS);
  t.same(p.problems, []);
  t.equal(p.services[0]!.clusterIP, '10.96.0.50', 'kept');
  t.ok(allocatable(p.services[1]!.clusterIP) && p.services[1]!.clusterIP !== '10.96.0.50', 'allocated, not the kept one');
  t.same(p.results.map((r) => r.action), ['unchanged', 'created']);
  t.match(planServices(new Map(), [mk({}), mk({})], OPTS).problems, ['service default/x is given twice']);
  t.throws(() => planServices(new Map(), [], { serviceCIDR: '10.96.0.0/30', nodePortRange: '1-2' }), /serviceCIDR: 10\.96\.0\.0\/30 is too small/);
  t.throws(() => planServices(new Map(), [], { serviceCIDR: '10.96.0.0/24', nodePortRange: '5-1' }), /nodePortRange: '5-1' is not a port range/);
});
