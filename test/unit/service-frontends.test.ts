/**
 * A node's service frontends and their backends (src/service/frontends.ts, pure): selector
 * matching, a named targetPort resolved per pod, traffic policy Local, EndpointSlices, order.
 */
import t from 'tap';
import { computeFrontends, type Frontend } from '../../src/service/frontends.js';
import type { PublishedEndpoint } from '../../src/policy/store.js';
import type { EndpointSlice, Service } from '../../src/service/types.js';
import type { PodPort } from '../../src/endpoint/ports.js';

const svc = (o: Partial<Service>): Service => ({
  namespace: 'shop', name: 'web', type: 'ClusterIP', clusterIP: '10.96.0.10', externalIPs: [], selector: { app: 'web' },
  ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080, nodePort: 0 }],
  sessionAffinity: 'None', affinityTimeoutSeconds: 0, externalTrafficPolicy: 'Cluster', internalTrafficPolicy: 'Cluster', ...o,
});
let nextId = 1;
const pod = (name: string, ip: string, node: string, labels: Record<string, string>, ports: PodPort[] = [], namespace = 'shop'): PublishedEndpoint => ({
  node, id: nextId++, name: `${namespace}/${name}`, namespace, ip, identity: 256, labels, ports,
});
const slice = (o: Partial<EndpointSlice>): EndpointSlice => ({ namespace: 'shop', name: 'web-1', service: 'web', ports: [{ name: 'http', protocol: 'TCP', port: 8080 }], endpoints: [], ...o });

const addrs = (f: Frontend | undefined) => (f?.backends ?? []).map((b) => `${b.address}:${b.port}`);
const compute = (services: Service[], pods: PublishedEndpoint[], slices: EndpointSlice[] = [], node = 'n1') => computeFrontends(services, pods, slices, { node });

t.test('a selector selects the pods of its namespace holding every label', async (t) => {
  const pods = [
    pod('w1', '10.244.0.5', 'n1', { app: 'web', tier: 'front' }),
    pod('w2', '10.244.1.5', 'n2', { app: 'web' }),
    pod('db', '10.244.1.6', 'n2', { app: 'db' }),
    pod('w9', '10.244.2.9', 'n3', { app: 'web' }, [], 'other'),
  ];
  const { frontends, problems } = compute([svc({})], pods);
  t.same(problems, []);
  t.equal(frontends.length, 1);
  t.match(frontends[0], { service: 'shop/web', portName: 'http', kind: 'ClusterIP', address: '10.96.0.10', port: 80, protocol: 'TCP', localOnly: false, affinityTimeoutSeconds: 0 });
  t.same(addrs(frontends[0]), ['10.244.0.5:8080', '10.244.1.5:8080'], 'the web pods of shop, not db, not the one in another namespace');
  t.same(frontends[0]!.backends.map((b) => [b.node, b.endpoint]), [['n1', 'shop/w1'], ['n2', 'shop/w2']], 'each backend names its node and pod');
  t.same(addrs(compute([svc({ selector: { app: 'web', tier: 'front' } })], pods).frontends[0]), ['10.244.0.5:8080'], 'every key must match');
  t.same(addrs(compute([svc({ selector: { app: 'nothing' } })], pods).frontends[0]), [], 'a frontend with no backend is still a frontend (the datapath rejects its packets)');
  t.same(addrs(compute([svc({ selector: { tier: '' } })], [pod('x', '10.244.0.7', 'n1', {})]).frontends[0]), [], 'an absent label is not an empty value');
});

t.test('an empty or null selector takes EndpointSlices, never the pods', async (t) => {
  const pods = [pod('w1', '10.244.0.5', 'n1', { app: 'web' })];
  const sl = slice({ endpoints: [{ addresses: ['10.244.3.3'], ready: true, nodeName: 'n3' }] });
  for (const selector of [null, {}]) {
    const f = compute([svc({ selector })], pods, [sl]).frontends[0];
    t.same(addrs(f), ['10.244.3.3:8080'], `selector ${JSON.stringify(selector)}: the slice's endpoints (Kubernetes: an empty selector is no selector)`);
  }
  t.same(addrs(compute([svc({})], pods, [sl]).frontends[0]), ['10.244.0.5:8080'], 'a service with a selector ignores slices');
});

t.test('a named targetPort is resolved per pod, by name and protocol', async (t) => {
  const pods = [
    pod('a', '10.244.0.5', 'n1', { app: 'web' }, [{ name: 'web', port: 8080, protocol: 'TCP' }]),
    pod('b', '10.244.0.6', 'n1', { app: 'web' }, [{ name: 'web', port: 9090, protocol: 'TCP' }]),
    pod('c', '10.244.0.7', 'n1', { app: 'web' }, [{ name: 'web', port: 7070, protocol: 'UDP' }]),
    pod('d', '10.244.0.8', 'n1', { app: 'web' }, [{ port: 8080, protocol: 'TCP' }]),
  ];
  const tcp = compute([svc({ ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 'web', nodePort: 0 }] })], pods);
  t.same(addrs(tcp.frontends[0]), ['10.244.0.5:8080', '10.244.0.6:9090'], "each pod's own port; a pod with it only for UDP, or without it, is no backend");
  t.same(tcp.problems, []);
  const udp = compute([svc({ ports: [{ name: 'dns', protocol: 'UDP', port: 53, targetPort: 'web', nodePort: 0 }] })], pods);
  t.same(addrs(udp.frontends[0]), ['10.244.0.7:7070'], 'the UDP frontend takes the UDP port of that name');
  const none = compute([svc({ ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 'metrics', nodePort: 0 }] })], pods);
  t.same(addrs(none.frontends[0]), []);
  t.match(none.problems, [/^service shop\/web port http: none of its 4 pod\(s\) declares a TCP port named 'metrics'/], 'said, when pods are selected but none has it');
  t.same(compute([svc({ selector: { app: 'none' }, ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 'metrics', nodePort: 0 }] })], pods).problems, [], 'but not when no pod is selected');
});

t.test('one frontend per port and address: ClusterIP, each external IP, the NodePort', async (t) => {
  const s = svc({
    type: 'NodePort', externalIPs: ['192.0.2.20', '192.0.2.10'],
    ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080, nodePort: 30080 }, { name: 'dns', protocol: 'UDP', port: 53, targetPort: 5353, nodePort: 30053 }],
    sessionAffinity: 'ClientIP', affinityTimeoutSeconds: 600,
  });
  const { frontends } = compute([s], [pod('w1', '10.244.0.5', 'n1', { app: 'web' })]);
  t.same(frontends.map((f) => `${f.kind} ${f.address}:${f.port}/${f.protocol} ${f.portName}`), [
    'ClusterIP 10.96.0.10:80/TCP http', 'ExternalIP 192.0.2.20:80/TCP http', 'ExternalIP 192.0.2.10:80/TCP http', 'NodePort :30080/TCP http',
    'ClusterIP 10.96.0.10:53/UDP dns', 'ExternalIP 192.0.2.20:53/UDP dns', 'ExternalIP 192.0.2.10:53/UDP dns', 'NodePort :30053/UDP dns',
  ], 'ports as declared; per port ClusterIP, the external IPs as declared, then the NodePort on every address of the node');
  t.ok(frontends.every((f) => f.affinityTimeoutSeconds === 600), 'affinity on every frontend');
  t.same(frontends.map((f) => addrs(f)[0]), ['10.244.0.5:8080', '10.244.0.5:8080', '10.244.0.5:8080', '10.244.0.5:8080', '10.244.0.5:5353', '10.244.0.5:5353', '10.244.0.5:5353', '10.244.0.5:5353'],
    'the NodePort and external frontends reach the targetPort');
  t.equal(compute([svc({ sessionAffinity: 'None', affinityTimeoutSeconds: 99 })], []).frontends[0]!.affinityTimeoutSeconds, 0, 'no affinity without ClientIP');
});

t.test('traffic policy Local: only this node\'s backends, internal for the ClusterIP, external for the rest', async (t) => {
  const pods = [pod('w1', '10.244.0.5', 'n1', { app: 'web' }), pod('w2', '10.244.1.5', 'n2', { app: 'web' })];
  const base = { type: 'NodePort' as const, externalIPs: ['192.0.2.10'], ports: [{ name: 'http', protocol: 'TCP' as const, port: 80, targetPort: 8080, nodePort: 30080 }] };
  const kinds = (fs: Frontend[]) => Object.fromEntries(fs.map((f) => [f.kind, { local: f.localOnly, backends: addrs(f) }]));
  t.same(kinds(compute([svc({ ...base, externalTrafficPolicy: 'Local' })], pods, [], 'n2').frontends), {
    ClusterIP: { local: false, backends: ['10.244.0.5:8080', '10.244.1.5:8080'] },
    ExternalIP: { local: true, backends: ['10.244.1.5:8080'] },
    NodePort: { local: true, backends: ['10.244.1.5:8080'] },
  }, 'externalTrafficPolicy Local: the external frontends of n2 reach n2\'s pod only');
  t.same(kinds(compute([svc({ ...base, internalTrafficPolicy: 'Local' })], pods, [], 'n1').frontends), {
    ClusterIP: { local: true, backends: ['10.244.0.5:8080'] },
    ExternalIP: { local: false, backends: ['10.244.0.5:8080', '10.244.1.5:8080'] },
    NodePort: { local: false, backends: ['10.244.0.5:8080', '10.244.1.5:8080'] },
  }, 'internalTrafficPolicy Local: the ClusterIP of n1 reaches n1\'s pod only');
  t.same(addrs(compute([svc({ internalTrafficPolicy: 'Local' })], pods, [], 'n3').frontends[0]), [], 'a node without a backend has none');
});

t.test('EndpointSlices: by service label and namespace, port name and protocol, ready only, first address', async (t) => {
  const s = svc({ selector: null, ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 'ignored', nodePort: 0 }, { name: 'dns', protocol: 'UDP', port: 53, targetPort: 53, nodePort: 0 }] });
  const slices = [
    slice({ name: 'web-b', ports: [{ name: 'http', protocol: 'TCP', port: 8080 }, { name: 'dns', protocol: 'UDP', port: 5353 }], endpoints: [
      { addresses: ['10.244.1.5', '10.244.1.99'], ready: true, nodeName: 'n2' },
      { addresses: ['10.244.1.6'], ready: false, nodeName: 'n2' },
    ] }),
    slice({ name: 'web-a', ports: [{ name: 'http', protocol: 'TCP', port: 8081 }], endpoints: [{ addresses: ['10.244.0.5'], ready: true, nodeName: '' }] }),
    slice({ name: 'web-udp', ports: [{ name: 'http', protocol: 'UDP', port: 9999 }], endpoints: [{ addresses: ['10.244.9.9'], ready: true, nodeName: 'n1' }] }),
    slice({ name: 'other', service: 'api', endpoints: [{ addresses: ['10.244.7.7'], ready: true, nodeName: 'n1' }] }),
    slice({ name: 'web-1', namespace: 'elsewhere', endpoints: [{ addresses: ['10.244.8.8'], ready: true, nodeName: 'n1' }] }),
  ];
  const { frontends, problems } = compute([s], [], slices);
  t.same(problems, []);
  t.same(addrs(frontends.find((f) => f.portName === 'http')), ['10.244.0.5:8081', '10.244.1.5:8080'],
    "the slices' own ports (not the targetPort); ready endpoints; the first address; not a UDP port of the same name, another service's or another namespace's slice");
  t.same(addrs(frontends.find((f) => f.portName === 'dns')), ['10.244.1.5:5353'], 'a slice without the port name has no backend for it');
  t.same(frontends.find((f) => f.portName === 'http')!.backends.map((b) => [b.node, b.endpoint]), [['', 'shop/web-a'], ['n2', 'shop/web-b']], 'a slice endpoint names its slice and node');
  const unnamed = compute([svc({ selector: null, ports: [{ name: '', protocol: 'TCP', port: 80, targetPort: 80, nodePort: 0 }] })], [],
    [slice({ ports: [{ name: '', protocol: 'TCP', port: 8080 }], endpoints: [{ addresses: ['10.244.0.5'], ready: true, nodeName: 'n1' }] })]);
  t.same(addrs(unnamed.frontends[0]), ['10.244.0.5:8080'], 'an unnamed service port takes the unnamed slice port');
  const local = compute([svc({ selector: null, internalTrafficPolicy: 'Local' })], [], [slice({ endpoints: [
    { addresses: ['10.244.0.5'], ready: true, nodeName: 'n1' }, { addresses: ['10.244.1.5'], ready: true, nodeName: 'n2' }, { addresses: ['10.244.2.5'], ready: true, nodeName: '' },
  ] })], 'n1');
  t.same(addrs(local.frontends[0]), ['10.244.0.5:8080'], 'Local with slices: the endpoints naming this node (an unknown node is not this one)');
});

t.test('duplicates are taken once; the order is deterministic whatever the input order', async (t) => {
  const twice = compute([svc({ selector: null })], [], [
    slice({ name: 'a', endpoints: [{ addresses: ['10.244.0.5'], ready: true, nodeName: 'n1' }] }),
    slice({ name: 'b', endpoints: [{ addresses: ['10.244.0.5'], ready: true, nodeName: 'n1' }] }),
  ]);
  t.same(addrs(twice.frontends[0]), ['10.244.0.5:8080'], 'one backend per address and port');
  t.match(twice.problems, [/backend 10\.244\.0\.5:8080 is both shop\/a on n1 and shop\/b on n1: taken once/]);

  const services = [svc({ name: 'b', clusterIP: '10.96.0.2' }), svc({ name: 'a', clusterIP: '10.96.0.3' }), svc({ namespace: 'app', name: 'z', clusterIP: '10.96.0.4' })];
  const pods = [
    pod('p9', '10.244.0.10', 'n1', { app: 'web' }), pod('p1', '10.244.0.9', 'n2', { app: 'web' }), pod('p2', '10.244.0.100', 'n1', { app: 'web' }),
    pod('q', '10.244.0.2', 'n1', { app: 'web' }, [], 'app'),
  ];
  const one = compute(services, pods);
  t.same(one.frontends.map((f) => f.service), ['app/z', 'shop/a', 'shop/b'], 'services by namespace, then name');
  t.same(addrs(one.frontends[1]), ['10.244.0.9:8080', '10.244.0.10:8080', '10.244.0.100:8080'], 'backends by address as numbers, not as text');
  const other = compute([...services].reverse(), [...pods].reverse());
  t.same(other, one, 'the same frontends whatever order the services and endpoints come in');
  t.match(compute([svc({ clusterIP: '' })], []).problems, [/^service shop\/web has no clusterIP: left out$/]);
});
