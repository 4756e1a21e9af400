/**
 * Service and EndpointSlice documents (src/service/parse.ts): the normalised objects, the
 * Kubernetes defaults, and every rule refused with its file, line, document, object and field.
 */
import t from 'tap';
import { formatProblem, parseServiceDocuments, ServiceParseError, type ServiceProblem } from '../../src/service/parse.js';
import type { EndpointSlice, Service } from '../../src/service/types.js';

/** The problems of an input, as "path: message" (or the full formatted lines with `full`). */
function problems(text: string, full = false): string[] {
  try {
    parseServiceDocuments(text, 'in.yaml');
  } catch (e) {
    if (!(e instanceof ServiceParseError)) throw e;
    return e.errors.map((p) => (full ? formatProblem(p) : `${p.path}: ${p.message}`));
  }
  return [];
}

function warningsOf(text: string): string[] {
  const w: ServiceProblem[] = [];
  parseServiceDocuments(text, 'in.yaml', w);
  return w.map((p) => `${p.path}: ${p.message}`);
}

/** One Service as a JSON document (JSON is YAML): default/web with the given spec. */
const svc = (spec: unknown, metadata: unknown = { name: 'web' }, extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata, spec, ...extra });
const slice = (o: Record<string, unknown> = {}, metadata: unknown = { name: 'web-1', labels: { 'kubernetes.io/service-name': 'web' } }): string =>
  JSON.stringify({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata, addressType: 'IPv4', ports: [{ name: 'http', port: 8080 }], endpoints: [], ...o });

function one(text: string): Service {
  const r = parseServiceDocuments(text, 'in.yaml');
  if (r.services.length !== 1 || r.slices.length !== 0) throw new Error(`expected one service, got ${r.services.length} and ${r.slices.length} slices`);
  return r.services[0]!;
}
function oneSlice(text: string): EndpointSlice {
  const r = parseServiceDocuments(text, 'in.yaml');
  if (r.slices.length !== 1 || r.services.length !== 0) throw new Error(`expected one slice, got ${r.slices.length}`);
  return r.slices[0]!;
}

/** Whether some problem's "path: message" matches. */
const has = (list: string[], re: RegExp): boolean => list.some((p) => re.test(p));

t.test('a minimal service gets Kubernetes defaults', async (t) => {
  t.same(one(svc({ selector: { app: 'web' }, ports: [{ port: 80 }] })), {
    namespace: 'default', name: 'web', type: 'ClusterIP', clusterIP: '', externalIPs: [], selector: { app: 'web' },
    ports: [{ name: '', protocol: 'TCP', port: 80, targetPort: 80, nodePort: 0 }],
    sessionAffinity: 'None', affinityTimeoutSeconds: 0, externalTrafficPolicy: 'Cluster', internalTrafficPolicy: 'Cluster',
  });
  const s = one(svc({ ports: [{ port: 53, protocol: 'UDP', targetPort: 0 }] }));
  t.equal(s.selector, null, 'no selector is null');
  t.same(s.ports[0], { name: '', protocol: 'UDP', port: 53, targetPort: 53, nodePort: 0 }, 'targetPort 0 is the port');
  t.equal(one(svc({ ports: [{ port: 80, targetPort: '' }] })).ports[0]!.targetPort, 80, "targetPort '' is the port");
});

t.test('every field, in YAML', async (t) => {
  const text = `apiVersion: v1
kind: Service
metadata:
  name: shop-front
  namespace: shop
  labels: {app: front}
  annotations: {note: "anything: here"}
  uid: 1234
  resourceVersion: "9"
spec:
  type: NodePort
  clusterIP: 10.96.7.7
  clusterIPs: [10.96.7.7]
  externalIPs: [192.0.2.10, 192.0.2.11]
  selector: {app: front, tier: web}
  ipFamilies: [IPv4]
  ipFamilyPolicy: SingleStack
  ports:
  - {name: http, port: 80, targetPort: web, nodePort: 30080, appProtocol: http}
  - {name: dns, port: 53, protocol: UDP, targetPort: 5353}
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}
  externalTrafficPolicy: Local
  internalTrafficPolicy: Local
status:
  loadBalancer: {}
`;
  t.same(one(text), {
    namespace: 'shop', name: 'shop-front', type: 'NodePort', clusterIP: '10.96.7.7', externalIPs: ['192.0.2.10', '192.0.2.11'],
    selector: { app: 'front', tier: 'web' },
    ports: [
      { name: 'http', protocol: 'TCP', port: 80, targetPort: 'web', nodePort: 30080, appProtocol: 'http' },
      { name: 'dns', protocol: 'UDP', port: 53, targetPort: 5353, nodePort: 0 },
    ],
    sessionAffinity: 'ClientIP', affinityTimeoutSeconds: 600, externalTrafficPolicy: 'Local', internalTrafficPolicy: 'Local',
  });
  t.equal(one(svc({ sessionAffinity: 'ClientIP', ports: [{ port: 80 }] })).affinityTimeoutSeconds, 10800, 'ClientIP defaults to 3 hours');
  t.equal(one(svc({ clusterIPs: ['10.96.0.9'], ports: [{ port: 80 }] })).clusterIP, '10.96.0.9', 'clusterIPs alone gives the clusterIP');
});

t.test('EndpointSlices', async (t) => {
  const s = oneSlice(slice({
    ports: [{ name: 'http', port: 8080, protocol: 'TCP', appProtocol: 'http' }, { name: 'dns', port: 53, protocol: 'UDP' }],
    endpoints: [
      { addresses: ['10.244.0.5'], conditions: { ready: true, serving: true, terminating: false }, nodeName: 'n1', targetRef: { kind: 'Pod', name: 'w1', namespace: 'default' } },
      { addresses: ['10.244.1.5'], conditions: { ready: false } },
      { addresses: ['10.244.2.5'], hostname: 'w3', zone: 'a' },
    ],
  }, { name: 'web-abc12', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web', 'endpointslice.kubernetes.io/managed-by': 'me' } }));
  t.same(s, {
    namespace: 'shop', name: 'web-abc12', service: 'web',
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }, { name: 'dns', protocol: 'UDP', port: 53 }],
    endpoints: [
      { addresses: ['10.244.0.5'], ready: true, nodeName: 'n1' },
      { addresses: ['10.244.1.5'], ready: false, nodeName: '' },
      { addresses: ['10.244.2.5'], ready: true, nodeName: '' },
    ],
  }, 'an absent ready condition is ready (Kubernetes: unknown is ready)');
  t.same(oneSlice(slice({ ports: [{ port: 8080 }] })).ports, [{ name: '', protocol: 'TCP', port: 8080 }], 'an unnamed port for an unnamed service port');
  t.same(oneSlice(slice({ ports: null })).ports, [], 'no ports');
  t.ok(has(problems(slice({}, { name: 'web-1' })), /^metadata\.labels: must have the label kubernetes\.io\/service-name/), 'the service label is required');
  t.ok(has(problems(slice({}, { name: 'web-1', labels: { 'kubernetes.io/service-name': '9web' } })), /^metadata\.labels\.kubernetes\.io\/service-name: '9web' is not a valid Service name/));
  t.ok(has(problems(slice({ addressType: 'IPv6' })), /^addressType: IPv6 is not supported/));
  t.ok(has(problems(slice({ addressType: 'FQDN' })), /^addressType: FQDN is not supported: sluice has no DNS/));
  t.ok(has(problems(slice({ addressType: null })), /^addressType: is required/));
  t.ok(has(problems(slice({ endpoints: [{ addresses: ['fd00::1'] }] })), /^endpoints\[0\]\.addresses\[0\]: 'fd00::1' is an IPv6 address/));
  t.ok(has(problems(slice({ endpoints: [{ addresses: [] }] })), /^endpoints\[0\]\.addresses: must have from 1 to 100 addresses, got 0/));
  t.ok(has(problems(slice({ endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: 'yes' } }] })), /^endpoints\[0\]\.conditions\.ready: must be true or false/));
  t.ok(has(problems(slice({ endpoints: [{ addresses: ['10.0.0.1'], nodeName: 'a b' }] })), /^endpoints\[0\]\.nodeName: 'a b' is not a valid node name/));
  t.ok(has(problems(slice({ endpoints: [{ addresses: ['10.0.0.1'], weight: 3 }] })), /^endpoints\[0\]\.weight: unknown field/));
  t.ok(has(problems(slice({ endpoints: null })), /^endpoints: is required/));
  t.ok(has(problems(slice({ ports: [{ name: 'http' }] })), /^ports\[0\]\.port: is required: sluice needs the port/), 'a slice port for all ports is refused');
  t.ok(has(problems(slice({ ports: [{ name: 'a', port: 1 }, { name: 'a', port: 2 }] })), /^ports\[1\]\.name: duplicate port name 'a' \(also ports\[0\]\)/));
  t.ok(has(problems(slice({ ports: [{ port: 1, protocol: 'SCTP' }] })), /^ports\[0\]\.protocol: SCTP is not supported/));
  t.ok(has(problems(slice({ apiVersion: 'discovery.k8s.io/v1beta1' })), /^apiVersion: must be discovery\.k8s\.io\/v1 for kind EndpointSlice/));
  t.same(warningsOf(slice({ endpoints: [{ addresses: ['10.0.0.1'], hints: { forZones: [{ name: 'a' }] } }] })), ['endpoints[0].hints: have no effect: sluice has no topology-aware routing']);
});

t.test('metadata: names and namespaces', async (t) => {
  t.ok(has(problems(svc({ ports: [{ port: 80 }] }, { name: '9web' })), /^metadata\.name: '9web' is not a valid Service name \(a DNS-1035 label\)/), 'a Service name starts with a letter');
  t.ok(has(problems(svc({ ports: [{ port: 80 }] }, { name: 'web.x' })), /^metadata\.name: 'web\.x' is not a valid Service name/), 'no dots');
  t.ok(has(problems(svc({ ports: [{ port: 80 }] }, { name: 'w', namespace: 'Shop' })), /^metadata\.namespace: 'Shop' is not a valid DNS-1123 label/));
  t.ok(has(problems(svc({ ports: [{ port: 80 }] }, {})), /^metadata\.name: is required$/));
  t.ok(has(problems(svc({ ports: [{ port: 80 }] }, { generateName: 'web-' })), /^metadata\.name: is required \(generateName is not supported\)/));
  t.ok(has(problems(svc({ ports: [{ port: 80 }] }, null)), /^metadata: is required/));
  t.ok(has(problems(svc({ ports: [{ port: 80 }] }, { name: 'w', labels: { app: 7 } })), /^metadata\.labels: label 'app': the value must be a string, got the number 7 \(quote it\)/));
  t.ok(has(problems(svc({ ports: [{ port: 80 }] }, { name: 'w', owner: 'me' })), /^metadata\.owner: unknown field/));
  t.equal(oneSlice(slice({}, { name: 'web.1', labels: { 'kubernetes.io/service-name': 'web' } })).name, 'web.1', 'an EndpointSlice name is a DNS subdomain');
});

t.test('type', async (t) => {
  t.equal(one(svc({ type: 'NodePort', ports: [{ port: 80 }] })).type, 'NodePort');
  t.ok(has(problems(svc({ type: 'LoadBalancer', ports: [{ port: 80 }] })), /^spec\.type: type LoadBalancer is not supported/));
  t.ok(has(problems(svc({ type: 'ExternalName', externalName: 'example.com' })), /^spec\.type: type ExternalName is not supported: sluice has no DNS/));
  t.ok(has(problems(svc({ type: 'ExternalName', externalName: 'example.com' })), /^spec\.externalName: is only for type ExternalName/));
  t.ok(has(problems(svc({ type: 'Headless', ports: [{ port: 80 }] })), /^spec\.type: must be ClusterIP or NodePort, got the string "Headless"/));
});

t.test('clusterIP', async (t) => {
  t.equal(one(svc({ clusterIP: '', ports: [{ port: 80 }] })).clusterIP, '', "'' is allocated later");
  t.equal(one(svc({ clusterIP: '10.96.0.10', ports: [{ port: 80 }] })).clusterIP, '10.96.0.10');
  t.ok(has(problems(svc({ clusterIP: 'None', ports: [{ port: 80 }] })), /^spec\.clusterIP: headless services are not supported: sluice has no DNS/));
  t.ok(has(problems(svc({ clusterIP: '10.96.0.300', ports: [{ port: 80 }] })), /^spec\.clusterIP: '10\.96\.0\.300' is not an IPv4 address/));
  t.ok(has(problems(svc({ clusterIP: 'fd00::1', ports: [{ port: 80 }] })), /^spec\.clusterIP: 'fd00::1' is an IPv6 address: sluice's services are IPv4 only/));
  t.ok(has(problems(svc({ clusterIP: ' 10.96.0.1', ports: [{ port: 80 }] })), /is not an IPv4 address/), 'no surrounding spaces');
  t.ok(has(problems(svc({ clusterIP: 10, ports: [{ port: 80 }] })), /^spec\.clusterIP: must be a string, got the number 10/));
  t.ok(has(problems(svc({ clusterIPs: ['10.96.0.1', 'fd00::1'], ports: [{ port: 80 }] })), /^spec\.clusterIPs: dual-stack services are not supported/));
  t.ok(has(problems(svc({ clusterIP: '10.96.0.1', clusterIPs: ['10.96.0.2'], ports: [{ port: 80 }] })), /^spec\.clusterIPs\[0\]: must be spec\.clusterIP \(10\.96\.0\.1\)/));
});

t.test('ports', async (t) => {
  t.ok(has(problems(svc({})), /^spec\.ports: is required/));
  t.ok(has(problems(svc({ ports: [] })), /^spec\.ports: must have at least one port/));
  t.ok(has(problems(svc({ ports: [{ port: 0 }] })), /^spec\.ports\[0\]\.port: must be a port number from 1 to 65535, got the number 0/));
  t.ok(has(problems(svc({ ports: [{ port: 99999 }] })), /^spec\.ports\[0\]\.port: must be a port number from 1 to 65535/));
  t.ok(has(problems(svc({ ports: [{ name: 'x' }] })), /^spec\.ports\[0\]\.port: is required/));
  t.ok(has(problems(svc({ ports: [{ port: 80, protocol: 'SCTP' }] })), /^spec\.ports\[0\]\.protocol: SCTP is not supported/));
  t.ok(has(problems(svc({ ports: [{ port: 80, protocol: 'tcp' }] })), /^spec\.ports\[0\]\.protocol: must be TCP or UDP, got the string "tcp"/));
  t.ok(has(problems(svc({ ports: [{ port: 80 }, { name: 'b', port: 81 }] })), /^spec\.ports\[0\]\.name: is required when the service has more than one port/));
  t.ok(has(problems(svc({ ports: [{ name: 'a', port: 80 }, { name: 'a', port: 81 }] })), /^spec\.ports\[1\]\.name: duplicate port name 'a' \(also ports\[0\]\)/));
  t.ok(has(problems(svc({ ports: [{ name: 'a', port: 80 }, { name: 'b', port: 80 }] })), /^spec\.ports\[1\]\.port: duplicate port 80\/TCP \(also ports\[0\]\)/));
  t.same(one(svc({ ports: [{ name: 'a', port: 53 }, { name: 'b', port: 53, protocol: 'UDP' }] })).ports.map((p) => p.protocol), ['TCP', 'UDP'], 'one port number for TCP and UDP');
  t.ok(has(problems(svc({ ports: [{ name: 'Http', port: 80 }] })), /^spec\.ports\[0\]\.name: 'Http' is not a valid port name \(a DNS-1123 label/));
  t.equal(one(svc({ ports: [{ name: 'http', port: 80 }] })).ports[0]!.name, 'http', 'a single port may be named');
  t.ok(has(problems(svc({ ports: [{ port: 80, targetPort: 70000 }] })), /^spec\.ports\[0\]\.targetPort: must be a port number from 1 to 65535/));
  t.ok(has(problems(svc({ ports: [{ port: 80, targetPort: '8080' }] })), /^spec\.ports\[0\]\.targetPort: '8080' is a string, not a port number/));
  t.ok(has(problems(svc({ ports: [{ port: 80, targetPort: 'a-very-long-port-name' }] })), /^spec\.ports\[0\]\.targetPort: 'a-very-long-port-name' is not a valid port name/));
  t.ok(has(problems(svc({ ports: [{ port: 80, nodePort: 30080 }] })), /^spec\.ports\[0\]\.nodePort: may only be set for type NodePort \(this service is ClusterIP\)/));
  t.equal(one(svc({ ports: [{ port: 80, nodePort: 0 }] })).ports[0]!.nodePort, 0, 'nodePort 0 is none');
  t.equal(one(svc({ type: 'NodePort', ports: [{ port: 80, nodePort: 80 }] })).ports[0]!.nodePort, 80, 'the range is checked at allocation, not here');
  t.ok(has(problems(svc({ type: 'NodePort', ports: [{ name: 'a', port: 80, nodePort: 30001 }, { name: 'b', port: 81, nodePort: 30001 }] })), /^spec\.ports\[1\]\.nodePort: duplicate nodePort 30001\/TCP/));
  t.ok(has(problems(svc({ ports: [{ port: 80, targetPot: 8080 }] })), /^spec\.ports\[0\]\.targetPot: unknown field/));
});

t.test('selector, externalIPs', async (t) => {
  t.ok(has(problems(svc({ selector: { 'app name': 'web' }, ports: [{ port: 80 }] })), /^spec\.selector: label key 'app name'/));
  t.ok(has(problems(svc({ selector: { app: 'we b' }, ports: [{ port: 80 }] })), /^spec\.selector: label 'app': value 'we b'/));
  t.ok(has(problems(svc({ selector: ['app'], ports: [{ port: 80 }] })), /^spec\.selector: must be a mapping of labels, got a list/));
  t.ok(has(problems(svc({ selector: { matchLabels: { app: 'web' } }, ports: [{ port: 80 }] })), /^spec\.selector: label 'matchLabels': the value must be a string/), 'a Service selector is a plain map');
  const empty = svc({ selector: {}, ports: [{ port: 80 }] });
  t.equal(one(empty).selector, null, 'selector: {} is no selector, as in Kubernetes');
  t.same(warningsOf(empty), ['spec.selector: an empty selector is no selector (as in Kubernetes): the backends come from EndpointSlices naming this service']);
  t.ok(has(problems(svc({ externalIPs: ['192.0.2.1', '192.0.2.1'], ports: [{ port: 80 }] })), /^spec\.externalIPs\[1\]: duplicate external IP 192\.0\.2\.1/));
  for (const [ip, what] of [['127.0.0.1', 'loopback'], ['169.254.3.3', 'link-local'], ['224.0.0.5', 'multicast'], ['0.0.0.0', 'unspecified']]) {
    t.ok(has(problems(svc({ externalIPs: [ip], ports: [{ port: 80 }] })), new RegExp(`^spec\\.externalIPs\\[0\\]: ${ip.replace(/\./g, '\\.')} is an? .*${what}`)), ip);
  }
  t.ok(has(problems(svc({ externalIPs: ['192.0.2.0/24'], ports: [{ port: 80 }] })), /^spec\.externalIPs\[0\]: '192\.0\.2\.0\/24' is not an IPv4 address/));
  t.ok(has(problems(svc({ externalIPs: '192.0.2.1', ports: [{ port: 80 }] })), /^spec\.externalIPs: must be a list/));
});

t.test('session affinity and traffic policies', async (t) => {
  t.ok(has(problems(svc({ sessionAffinity: 'Cookie', ports: [{ port: 80 }] })), /^spec\.sessionAffinity: must be None or ClientIP/));
  t.ok(has(problems(svc({ sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } }, ports: [{ port: 80 }] })), /^spec\.sessionAffinityConfig: may only be set with sessionAffinity: ClientIP/));
  for (const bad of [0, 86401, 1.5, '60']) {
    t.ok(has(problems(svc({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: bad } }, ports: [{ port: 80 }] })),
      /^spec\.sessionAffinityConfig\.clientIP\.timeoutSeconds: must be a whole number of seconds from 1 to 86400/), `timeoutSeconds ${JSON.stringify(bad)}`);
  }
  t.equal(one(svc({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 86400 } }, ports: [{ port: 80 }] })).affinityTimeoutSeconds, 86400);
  t.ok(has(problems(svc({ externalTrafficPolicy: 'Global', ports: [{ port: 80 }] })), /^spec\.externalTrafficPolicy: must be Cluster or Local/));
  t.ok(has(problems(svc({ internalTrafficPolicy: 'local', ports: [{ port: 80 }] })), /^spec\.internalTrafficPolicy: must be Cluster or Local/));
  t.same(warningsOf(svc({ externalTrafficPolicy: 'Local', ports: [{ port: 80 }] })), [
    'spec.externalTrafficPolicy: Local has no effect: the service has neither a NodePort nor externalIPs (internalTrafficPolicy is the one for its ClusterIP)',
  ], 'Local on a plain ClusterIP is accepted with a warning');
  t.same(warningsOf(svc({ externalTrafficPolicy: 'Local', externalIPs: ['192.0.2.1'], ports: [{ port: 80 }] })), [], 'with externalIPs it has an effect');
  t.same(warningsOf(svc({ type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ port: 80 }] })), [], 'and with a NodePort');
});

t.test('fields of what sluice does not support are refused, or accepted with a warning, never ignored', async (t) => {
  const base = { ports: [{ port: 80 }] };
  for (const [field, value] of [['loadBalancerIP', '192.0.2.1'], ['loadBalancerSourceRanges', ['0.0.0.0/0']], ['loadBalancerClass', 'x'], ['healthCheckNodePort', 30000], ['allocateLoadBalancerNodePorts', false]] as const) {
    t.ok(has(problems(svc({ ...base, [field]: value })), new RegExp(`^spec\\.${field}: is only for type LoadBalancer, which sluice does not support`)), field);
  }
  t.same(problems(svc({ ...base, loadBalancerIP: '', loadBalancerSourceRanges: [] })), [], 'empty values are unset');
  t.ok(has(problems(svc({ ...base, ipFamilies: ['IPv6'] })), /^spec\.ipFamilies\[0\]: IPv6 is not supported/));
  t.ok(has(problems(svc({ ...base, ipFamilies: ['IPv4', 'IPv6'] })), /^spec\.ipFamilies\[1\]: IPv6 is not supported/));
  t.ok(has(problems(svc({ ...base, ipFamilyPolicy: 'RequireDualStack' })), /^spec\.ipFamilyPolicy: RequireDualStack is not supported/));
  t.ok(has(problems(svc({ ...base, ipFamilyPolicy: 'Dual' })), /^spec\.ipFamilyPolicy: must be SingleStack, PreferDualStack or RequireDualStack/));
  t.same(warningsOf(svc({ ...base, ipFamilyPolicy: 'PreferDualStack' })), ["spec.ipFamilyPolicy: served single-stack IPv4: sluice's services are IPv4 only"]);
  t.match(warningsOf(svc({ ...base, publishNotReadyAddresses: true })), [/^spec\.publishNotReadyAddresses: has no effect/]);
  t.same(warningsOf(svc({ ...base, publishNotReadyAddresses: false })), []);
  t.ok(has(problems(svc({ ...base, publishNotReadyAddresses: 'yes' })), /^spec\.publishNotReadyAddresses: must be true or false/));
  t.match(warningsOf(svc({ ...base, trafficDistribution: 'PreferClose' })), [/^spec\.trafficDistribution: has no effect/]);
  t.ok(has(problems(svc({ ...base, topologyKeys: ['*'] })), /^spec\.topologyKeys: unknown field \(expected type, clusterIP/), 'unknown fields are named');
  t.ok(has(problems(svc(base, { name: 'web' }, { extra: 1 })), /^extra: unknown field \(expected apiVersion, kind, metadata, spec\)/));
  t.same(problems(svc(base, { name: 'web' }, { status: { loadBalancer: {} } })), [], 'status is ignored (kubectl prints it)');
});

t.test('documents: several, a List, typed lists, JSON, empty ones skipped', async (t) => {
  const yaml = `---
apiVersion: v1
kind: Service
metadata: {name: a}
spec: {ports: [{port: 80}]}
---
---
# a comment only
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: a-1, labels: {kubernetes.io/service-name: a}}
addressType: IPv4
endpoints: [{addresses: [10.244.0.9]}]
...
`;
  const r = parseServiceDocuments(yaml, 's.yaml');
  t.same([r.services.map((s) => s.name), r.slices.map((s) => s.name)], [['a'], ['a-1']]);
  t.same(parseServiceDocuments('', 'x'), { services: [], slices: [] }, 'empty input');
  const list = JSON.stringify({
    apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '' },
    items: [JSON.parse(svc({ ports: [{ port: 80 }] }, { name: 'x', namespace: 'n' })), JSON.parse(slice())],
  });
  const l = parseServiceDocuments(list, 'list.json');
  t.same([l.services.map((s) => `${s.namespace}/${s.name}`), l.slices.map((s) => s.name)], [['n/x'], ['web-1']], 'kind List holds both kinds');
  t.same(parseServiceDocuments(JSON.stringify({ apiVersion: 'v1', kind: 'ServiceList', items: [{ metadata: { name: 'y' }, spec: { ports: [{ port: 1 }] } }] }), 'l').services.map((s) => s.name), ['y'],
    'a ServiceList may leave out apiVersion and kind');
  t.ok(has(problems(JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [{ metadata: { name: 'y' }, spec: { ports: [{ port: 1 }] } }] })), /^items\[0\]\.kind: is required/),
    'a List item needs its kind');
  t.ok(has(problems(JSON.stringify({ apiVersion: 'v1', kind: 'ServiceList', items: [JSON.parse(slice())] })), /^items\[0\]\.kind: must be Service in a ServiceList/));
  t.ok(has(problems(JSON.stringify({ apiVersion: 'v2', kind: 'List', items: [] })), /^apiVersion: must be v1 for kind List/));
  t.ok(has(problems(JSON.stringify({ apiVersion: 'v1', kind: 'List' })), /^items: is required/));
  const json = JSON.stringify(JSON.parse(svc({ ports: [{ port: 80 }] }, { name: 'j', namespace: 'N' })), null, '\t');
  t.same(problems(json, true), [
    "in.yaml:6: document 1 (Service N/j): metadata.namespace: 'N' is not a valid DNS-1123 label: at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit",
  ], 'JSON errors have lines too');
});

t.test('other kinds, duplicates, garbage', async (t) => {
  t.ok(has(problems(JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' } })), /^kind: kind Pod is not taken here: sluice takes Service/));
  t.ok(has(problems(JSON.stringify({ apiVersion: 'apps/v1', kind: 'Service', metadata: { name: 'p' }, spec: { ports: [{ port: 1 }] } })), /^apiVersion: must be v1 for kind Service/));
  t.ok(has(problems(JSON.stringify({ metadata: { name: 'p' } })), /^kind: is required/));
  t.ok(has(problems(`${svc({ ports: [{ port: 80 }] })}\n---\n${svc({ ports: [{ port: 81 }] })}`), /^metadata\.name: duplicate Service default\/web \(also in document 1\)/));
  t.same(problems(`${svc({ ports: [{ port: 80 }] })}\n---\n${slice({}, { name: 'web', labels: { 'kubernetes.io/service-name': 'web' } })}`), [], 'a service and a slice may share a name');
  t.ok(has(problems('- just\n- a list\n'), /^: must be a mapping/));
  t.ok(has(problems('"a string"'), /must be a mapping/));
  t.ok(has(problems('kind: Service\nkind: Service\n'), /^: not valid YAML: Map keys must be unique/));
  t.ok(has(problems('{ unclosed: [1, 2'), /not valid YAML/));
  t.ok(has(problems('a: 1\n'), /^kind: is required \(sluice takes Service/), 'a mapping that is no object');
  const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...'bcdef'.split('').map((c, i) => `${c}: &${c} [${Array(10).fill(`*${'abcdef'[i]}`).join(', ')}]`)].join('\n');
  t.ok(has(problems(bomb), /not usable YAML/), 'an alias bomb is refused, not expanded');
  t.ok(has(problems(JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'w' }, spec: 'ports: 80' })), /^spec: must be a mapping, got the string/));
  t.ok(has(problems(JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'w' } })), /^spec: is required/));
  t.ok(has(problems(JSON.stringify({ apiVersion: 'v1', kind: 7 })), /^kind: must be a string, got the number 7/));
});

t.test('every problem is collected, with source, line, document, object and field', async (t) => {
  const text = `apiVersion: v1
kind: Service
metadata: {name: ok}
spec: {ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  type: NodePort
  clusterIP: None
  ports:
  - name: http
    port: 99999
  - port: 81
    protocol: SCTP
`;
  let err: unknown;
  try {
    parseServiceDocuments(text, 'svc.yaml');
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof ServiceParseError);
  const e = err as ServiceParseError;
  t.same(e.errors.map(formatProblem), [
    'svc.yaml:13: document 2 (Service shop/web): spec.clusterIP: headless services are not supported: sluice has no DNS',
    'svc.yaml:16: document 2 (Service shop/web): spec.ports[0].port: must be a port number from 1 to 65535, got the number 99999',
    "svc.yaml:18: document 2 (Service shop/web): spec.ports[1].protocol: SCTP is not supported: sluice's services translate TCP and UDP",
  ], 'each problem once, in field order (a port that is wrong is not checked against the others)');
  t.same(e.errors[0], {
    source: 'svc.yaml', document: 2, line: 13, object: 'Service shop/web', path: 'spec.clusterIP', message: 'headless services are not supported: sluice has no DNS',
  } satisfies ServiceProblem, 'structured problems');
  t.equal(e.message, `svc.yaml: ${e.errors.length} problems in Service input:\n  ${e.errors.map(formatProblem).join('\n  ')}`);
});
