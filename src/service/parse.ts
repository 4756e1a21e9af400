/**
 * Kubernetes Service (v1) and EndpointSlice (discovery.k8s.io/v1) documents → validated,
 * normalised objects (service/types.ts). Pure: the caller reads the text; nothing here does I/O.
 *
 * Input: YAML with one or several documents (`---`), or JSON (JSON is YAML 1.2: one parser
 * reads both and reports line numbers for both). A document is a Service, an EndpointSlice, a
 * `kind: List` (apiVersion v1, as `kubectl get -o yaml` prints), a ServiceList or an
 * EndpointSliceList (whose items may leave out apiVersion and kind) with `items`.
 *
 * Everything is checked and every problem is collected, then one `ServiceParseError` lists
 * them all, each with the document, the object (Service ns/name when known), the field path
 * and the line. Nothing is returned unless the whole input is valid.
 *
 * What sluice does not do is refused by name rather than ignored: types LoadBalancer and
 * ExternalName, headless services (clusterIP None: there is no DNS), dual stack and IPv6,
 * SCTP, the load-balancer fields (loadBalancerIP, loadBalancerSourceRanges,
 * loadBalancerClass, healthCheckNodePort, allocateLoadBalancerNodePorts), EndpointSlices of
 * addressType IPv6 or FQDN and slice ports without a port number. Accepted with a warning,
 * because they change nothing here: `selector: {}` (no selector, as in Kubernetes: the
 * backends come from EndpointSlices), `externalTrafficPolicy: Local` on a service with
 * neither a NodePort nor externalIPs, `ipFamilyPolicy: PreferDualStack` (served single-stack
 * IPv4, as on a single-stack cluster), `publishNotReadyAddresses: true` (every pod a node
 * publishes is a backend: sluice has no readiness), `trafficDistribution`, and an
 * EndpointSlice endpoint's `hints`. Accepted and unused: metadata labels and annotations of a
 * Service, the fields the API server fills in (uid, resourceVersion, …, and `status`), an
 * endpoint's `targetRef`, `hostname`, `zone`, `deprecatedTopology` and its `serving` and
 * `terminating` conditions (only `ready` counts), appProtocol (kept on a service port).
 * An endpoint's first address is its backend, as kube-proxy takes it (the API says the
 * addresses are fungible).
 */
import { isNode, LineCounter, parseAllDocuments, type Document } from 'yaml';
import { labelKeyProblem, labelValueProblem, type Labels } from '../util/labels.js';
import { isIPv4, parseCidr, cidrContains, parseIPv4 } from '../util/ipv4.js';
import { dnsLabelProblem, dnsSubdomainProblem, portNameProblem } from '../policy/names.js';
import { formatPath } from '../policy/parse.js';
import {
  DEFAULT_AFFINITY_TIMEOUT, MAX_AFFINITY_TIMEOUT, SERVICE_NAME_LABEL, serviceKeyOf,
  type EndpointSlice, type EndpointSliceEndpoint, type Service, type ServicePort, type ServiceProtocol,
} from './types.js';

/** One thing wrong with the input (or, as a warning, worth knowing about it). */
export interface ServiceProblem {
  /** The name the caller gave the input (a file name, "(stdin)", …). */
  source: string;
  /** 1-based position of the YAML document in the input (JSON input is document 1). */
  document: number;
  /** 1-based line of the offending value (or of the nearest enclosing one that exists). */
  line?: number;
  /** "Service namespace/name" or "EndpointSlice namespace/name", when the document names one. */
  object?: string;
  /** Field path inside the document, e.g. `spec.ports[1].targetPort`; '' for the document itself. */
  path: string;
  message: string;
}

/** `source:line: document N (Service ns/name): path: message`. */
export function formatProblem(p: ServiceProblem): string {
  const where = p.line === undefined ? p.source : `${p.source}:${p.line}`;
  const doc = `document ${p.document}${p.object === undefined ? '' : ` (${p.object})`}`;
  return `${where}: ${doc}: ${p.path === '' ? '' : `${p.path}: `}${p.message}`;
}

export class ServiceParseError extends Error {
  readonly errors: readonly ServiceProblem[];
  constructor(source: string, errors: readonly ServiceProblem[]) {
    const n = errors.length;
    super(`${source}: ${n} problem${n === 1 ? '' : 's'} in Service input:\n${errors.map((e) => `  ${formatProblem(e)}`).join('\n')}`);
    this.name = 'ServiceParseError';
    this.errors = errors;
  }
}

export const SERVICE_API_VERSION = 'v1';
export const SLICE_API_VERSION = 'discovery.k8s.io/v1';

type Path = readonly (string | number)[];
type Raw = Record<string, unknown>;

interface Ctx {
  report(path: Path, message: string): void;
  warn(path: Path, message: string): void;
}

function isMapping(v: unknown): v is Raw {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Null and absent are the same to the Kubernetes API for optional fields. */
function given(v: unknown): boolean {
  return v !== undefined && v !== null;
}

/** Given and not empty ('' and [] are what the API server prints for unset strings and lists). */
function set(v: unknown): boolean {
  return given(v) && v !== '' && !(Array.isArray(v) && v.length === 0);
}

function describe(v: unknown): string {
  if (v === undefined || v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (isMapping(v)) return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  if (typeof v === 'number') return `the number ${v}`;
  if (typeof v === 'boolean') return `the boolean ${v}`;
  if (v instanceof Uint8Array) return 'binary data';
  return `a ${typeof v}`;
}

/** A mapping whose keys are all in `known` (or `ignored`); reports each unknown key. */
function mapping(ctx: Ctx, path: Path, v: unknown, known: readonly string[], ignored: readonly string[] = []): Raw | undefined {
  if (!isMapping(v)) {
    ctx.report(path, `must be a mapping, got ${describe(v)}`);
    return undefined;
  }
  for (const k of Object.keys(v)) {
    if (!known.includes(k) && !ignored.includes(k)) ctx.report([...path, k], `unknown field (expected ${known.join(', ')})`);
  }
  return v;
}

function list(ctx: Ctx, path: Path, v: unknown): unknown[] | undefined {
  if (!Array.isArray(v)) {
    ctx.report(path, `must be a list, got ${describe(v)}`);
    return undefined;
  }
  return v;
}

function string(ctx: Ctx, path: Path, v: unknown): string | undefined {
  if (typeof v !== 'string') {
    ctx.report(path, `must be a string, got ${describe(v)}`);
    return undefined;
  }
  return v;
}

function checkedString(ctx: Ctx, path: Path, v: unknown, problem: (s: string) => string | undefined): string | undefined {
  const s = string(ctx, path, v);
  if (s === undefined) return undefined;
  const p = problem(s);
  if (p === undefined) return s;
  ctx.report(path, p);
  return undefined;
}

function bool(ctx: Ctx, path: Path, v: unknown): boolean | undefined {
  if (typeof v !== 'boolean') {
    ctx.report(path, `must be true or false, got ${describe(v)}`);
    return undefined;
  }
  return v;
}

function portNumber(ctx: Ctx, path: Path, v: unknown): number | undefined {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) {
    ctx.report(path, `must be a port number from 1 to 65535, got ${describe(v)}`);
    return undefined;
  }
  return v;
}

/** One of `values`; `fallback` when absent. */
function oneOf<T extends string>(ctx: Ctx, path: Path, v: unknown, values: readonly T[], fallback: T): T | undefined {
  if (!given(v) || v === '') return fallback;
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
    ctx.report(path, `must be ${values.slice(0, -1).join(', ')} or ${values[values.length - 1]}, got ${describe(v)}`);
    return undefined;
  }
  return v as T;
}

const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/** Why `s` is not a DNS-1035 label (a Service's name: it must start with a letter), or undefined. */
export function serviceNameProblem(s: string): string | undefined {
  if (s.length <= 63 && DNS1035_LABEL.test(s)) return undefined;
  return `'${s}' is not a valid Service name (a DNS-1035 label): at most 63 lower-case letters, digits and '-', starting with a letter and ending with a letter or digit`;
}

/** The node names sluice accepts (config.ts nodeName), which an endpoint's nodeName must be to match a node. */
const NODE_NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;

/** Why `s` is not an IPv4 address usable as a service's external IP, or undefined. */
export function externalIPProblem(s: string): string | undefined {
  if (s.includes(':')) return `'${s}' is an IPv6 address: sluice's services are IPv4 only`;
  if (s.trim() !== s || !isIPv4(s)) return `'${s}' is not an IPv4 address`;
  const ip = parseIPv4(s);
  const special: [string, string][] = [
    ['0.0.0.0/8', 'an unspecified ("this network") address'], ['127.0.0.0/8', 'a loopback address'],
    ['169.254.0.0/16', 'a link-local address'], ['224.0.0.0/4', 'a multicast address'], ['255.255.255.255/32', 'the broadcast address'],
  ];
  for (const [cidr, what] of special) if (cidrContains(parseCidr(cidr), ip)) return `${s} is ${what}: not usable as an external IP`;
  return undefined;
}

/** A map of label keys to label values (metadata.labels, spec.selector). */
function labelMap(ctx: Ctx, path: Path, v: unknown, what: 'label' | 'annotation' = 'label'): Labels | undefined {
  if (!isMapping(v)) {
    ctx.report(path, `must be a mapping of ${what}s, got ${describe(v)}`);
    return undefined;
  }
  const out: Labels = {};
  let ok = true;
  for (const [key, value] of Object.entries(v)) {
    const keyProblem = labelKeyProblem(key);
    if (keyProblem !== undefined) {
      ctx.report(path, what === 'label' ? keyProblem : keyProblem.replace(/^label key/, 'annotation key'));
      ok = false;
    }
    if (typeof value !== 'string') {
      ctx.report(path, `${what} '${key}': the value must be a string, got ${describe(value)}${typeof value === 'number' || typeof value === 'boolean' ? ' (quote it)' : ''}`);
      ok = false;
      continue;
    }
    if (what === 'label') {
      const valueProblem = labelValueProblem(key, value);
      if (valueProblem !== undefined) {
        ctx.report(path, valueProblem);
        ok = false;
      }
    }
    out[key] = value;
  }
  return ok ? out : undefined;
}

/** ObjectMeta fields the API server fills in: accepted (kubectl get -o yaml prints them) and ignored. */
const SERVER_METADATA = [
  'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds',
  'managedFields', 'selfLink', 'ownerReferences', 'finalizers',
];

interface Meta { namespace: string; name: string; labels: Labels }

function metadata(ctx: Ctx, path: Path, v: unknown, nameProblem: (s: string) => string | undefined): Meta | undefined {
  if (!given(v)) {
    ctx.report(path, 'is required (with at least a name)');
    return undefined;
  }
  const m = mapping(ctx, path, v, ['name', 'namespace', 'labels', 'annotations', 'generateName'], SERVER_METADATA);
  if (m === undefined) return undefined;
  let ok = true;
  let name: string | undefined;
  if (!given(m.name)) {
    ctx.report([...path, 'name'], given(m.generateName) ? 'is required (generateName is not supported)' : 'is required');
    ok = false;
  } else {
    name = checkedString(ctx, [...path, 'name'], m.name, nameProblem);
    if (name === undefined) ok = false;
  }
  if (given(m.generateName) && given(m.name)) {
    ctx.report([...path, 'generateName'], 'is not supported (give a name)');
    ok = false;
  }
  let namespace = 'default';
  if (given(m.namespace)) {
    const ns = checkedString(ctx, [...path, 'namespace'], m.namespace, dnsLabelProblem);
    if (ns === undefined) ok = false;
    else namespace = ns;
  }
  let labels: Labels = {};
  if (given(m.labels)) {
    const l = labelMap(ctx, [...path, 'labels'], m.labels);
    if (l === undefined) ok = false;
    else labels = l;
  }
  if (given(m.annotations) && labelMap(ctx, [...path, 'annotations'], m.annotations, 'annotation') === undefined) ok = false;
  return ok && name !== undefined ? { namespace, name, labels } : undefined;
}

function protocol(ctx: Ctx, path: Path, v: unknown): ServiceProtocol | undefined {
  if (!given(v)) return 'TCP';
  if (v === 'SCTP') {
    ctx.report(path, "SCTP is not supported: sluice's services translate TCP and UDP");
    return undefined;
  }
  if (v !== 'TCP' && v !== 'UDP') {
    ctx.report(path, `must be TCP or UDP, got ${describe(v)}`);
    return undefined;
  }
  return v;
}

/** An IPv4 address as given (no surrounding spaces, no IPv6). */
function ipv4(ctx: Ctx, path: Path, v: unknown, what: string): string | undefined {
  const s = string(ctx, path, v);
  if (s === undefined) return undefined;
  if (s.includes(':')) {
    ctx.report(path, `'${s}' is an IPv6 address: sluice's services are IPv4 only`);
    return undefined;
  }
  if (s.trim() !== s || !isIPv4(s)) {
    ctx.report(path, `'${s}' is not an IPv4 address (${what})`);
    return undefined;
  }
  return s;
}

const HEADLESS = 'headless services are not supported: sluice has no DNS';

function servicePort(ctx: Ctx, path: Path, v: unknown, type: Service['type'] | undefined): ServicePort | undefined {
  const m = mapping(ctx, path, v, ['name', 'protocol', 'port', 'targetPort', 'nodePort', 'appProtocol']);
  if (m === undefined) return undefined;
  let ok = true;
  let name = '';
  if (given(m.name) && m.name !== '') {
    const s = checkedString(ctx, [...path, 'name'], m.name, (x) =>
      dnsLabelProblem(x) === undefined ? undefined : `'${x}' is not a valid port name (a DNS-1123 label: at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit)`);
    if (s === undefined) ok = false;
    else name = s;
  }
  const proto = protocol(ctx, [...path, 'protocol'], m.protocol);
  if (proto === undefined) ok = false;
  let port: number | undefined;
  if (!given(m.port)) {
    ctx.report([...path, 'port'], 'is required');
    ok = false;
  } else {
    port = portNumber(ctx, [...path, 'port'], m.port);
    if (port === undefined) ok = false;
  }
  // Absent, 0 or '' is the port itself (the API's default).
  let targetPort: number | string | undefined = port;
  if (given(m.targetPort) && m.targetPort !== 0 && m.targetPort !== '') {
    if (typeof m.targetPort === 'string') {
      const problem = portNameProblem(m.targetPort);
      if (problem !== undefined) {
        ctx.report([...path, 'targetPort'], problem);
        ok = false;
      } else targetPort = m.targetPort;
    } else {
      targetPort = portNumber(ctx, [...path, 'targetPort'], m.targetPort);
      if (targetPort === undefined) ok = false;
    }
  }
  let nodePort = 0;
  if (given(m.nodePort) && m.nodePort !== 0) {
    if (type !== undefined && type !== 'NodePort') {
      ctx.report([...path, 'nodePort'], `may only be set for type NodePort (this service is ${type})`);
      ok = false;
    } else {
      const n = portNumber(ctx, [...path, 'nodePort'], m.nodePort);
      if (n === undefined) ok = false;
      else nodePort = n;
    }
  }
  let appProtocol: string | undefined;
  if (given(m.appProtocol) && m.appProtocol !== '') {
    appProtocol = checkedString(ctx, [...path, 'appProtocol'], m.appProtocol, (x) =>
      /^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$/.test(x) && x.length <= 316 ? undefined : `'${x}' is not a valid appProtocol (an IANA service name or a prefixed name like example.com/proto)`);
    if (appProtocol === undefined) ok = false;
  }
  if (!ok || proto === undefined || port === undefined || targetPort === undefined) return undefined;
  return { name, protocol: proto, port, targetPort, nodePort, ...(appProtocol === undefined ? {} : { appProtocol }) };
}

/** The spec fields sluice implements. */
const SPEC_FIELDS = [
  'type', 'clusterIP', 'clusterIPs', 'externalIPs', 'selector', 'ports', 'sessionAffinity', 'sessionAffinityConfig',
  'externalTrafficPolicy', 'internalTrafficPolicy', 'ipFamilies', 'ipFamilyPolicy', 'publishNotReadyAddresses', 'trafficDistribution',
];
/** Spec fields of what sluice does not support: each refused with its own reason when set. */
const LOAD_BALANCER_FIELDS = ['loadBalancerIP', 'loadBalancerSourceRanges', 'loadBalancerClass', 'healthCheckNodePort', 'allocateLoadBalancerNodePorts'];
const UNSUPPORTED_FIELDS = [...LOAD_BALANCER_FIELDS, 'externalName'];

function serviceSpec(ctx: Ctx, path: Path, v: unknown, meta: Meta | undefined): Service | undefined {
  if (!given(v)) {
    ctx.report(path, 'is required (with at least ports)');
    return undefined;
  }
  const m = mapping(ctx, path, v, [...SPEC_FIELDS, ...UNSUPPORTED_FIELDS]);
  if (m === undefined) return undefined;
  let ok = true;
  const at = (f: string | number, ...rest: (string | number)[]): Path => [...path, f, ...rest];

  // type
  let type: Service['type'] | undefined;
  if (m.type === 'LoadBalancer') ctx.report(at('type'), 'type LoadBalancer is not supported: sluice has no load-balancer controller (use NodePort, or externalIPs)');
  else if (m.type === 'ExternalName') ctx.report(at('type'), 'type ExternalName is not supported: sluice has no DNS');
  else type = oneOf(ctx, at('type'), m.type, ['ClusterIP', 'NodePort'] as const, 'ClusterIP');
  if (type === undefined) ok = false;

  // clusterIP, clusterIPs
  let clusterIP = '';
  if (m.clusterIP === 'None') {
    ctx.report(at('clusterIP'), HEADLESS);
    ok = false;
  } else if (given(m.clusterIP) && m.clusterIP !== '') {
    const ip = ipv4(ctx, at('clusterIP'), m.clusterIP, 'or leave clusterIP out to have one allocated');
    if (ip === undefined) ok = false;
    else clusterIP = ip;
  }
  if (given(m.clusterIPs)) {
    const ips = list(ctx, at('clusterIPs'), m.clusterIPs);
    if (ips === undefined) ok = false;
    else if (ips.length > 1) {
      ctx.report(at('clusterIPs'), `dual-stack services are not supported: sluice's services are IPv4 only (give one address, got ${ips.length})`);
      ok = false;
    } else if (ips.length === 1 && ips[0] !== '') {
      if (ips[0] === 'None') {
        if (m.clusterIP !== 'None') ctx.report(at('clusterIPs', 0), HEADLESS);
        ok = false;
      } else {
        const ip = ipv4(ctx, at('clusterIPs', 0), ips[0], 'or leave clusterIPs out');
        if (ip === undefined) ok = false;
        else if (given(m.clusterIP) && m.clusterIP !== '' && m.clusterIP !== 'None' && ip !== m.clusterIP) {
          ctx.report(at('clusterIPs', 0), `must be spec.clusterIP (${String(m.clusterIP)}), got '${ip}'`);
          ok = false;
        } else clusterIP = ip;
      }
    }
  }

  // externalIPs
  const externalIPs: string[] = [];
  if (given(m.externalIPs)) {
    const raw = list(ctx, at('externalIPs'), m.externalIPs);
    if (raw === undefined) ok = false;
    else {
      raw.forEach((x, i) => {
        const s = checkedString(ctx, at('externalIPs', i), x, externalIPProblem);
        if (s === undefined) ok = false;
        else if (externalIPs.includes(s)) {
          ctx.report(at('externalIPs', i), `duplicate external IP ${s}`);
          ok = false;
        } else externalIPs.push(s);
      });
    }
  }

  // selector (`selector: {}` is no selector: Kubernetes stores an empty map as none, and its
  // EndpointSlice controller leaves a service without a selector to slices written by others)
  let selector: Record<string, string> | null = null;
  if (given(m.selector)) {
    const s = labelMap(ctx, at('selector'), m.selector);
    if (s === undefined) ok = false;
    else if (Object.keys(s).length === 0) {
      ctx.warn(at('selector'), 'an empty selector is no selector (as in Kubernetes): the backends come from EndpointSlices naming this service');
    } else selector = s;
  }

  // ports
  const ports: ServicePort[] = [];
  if (!given(m.ports)) {
    ctx.report(at('ports'), 'is required (at least one port)');
    ok = false;
  } else {
    const raw = list(ctx, at('ports'), m.ports);
    if (raw === undefined) ok = false;
    else if (raw.length === 0) {
      ctx.report(at('ports'), 'must have at least one port');
      ok = false;
    } else {
      const parsed = raw.map((p, i) => servicePort(ctx, at('ports', i), p, type));
      const names = new Map<string, number>();
      const numbers = new Map<string, number>();
      const nodePorts = new Map<string, number>();
      parsed.forEach((p, i) => {
        if (p === undefined) {
          ok = false;
          return;
        }
        if (raw.length > 1 && p.name === '') {
          ctx.report(at('ports', i, 'name'), 'is required when the service has more than one port');
          ok = false;
        }
        const dup = (seen: Map<string, number>, key: string, field: string, what: string): void => {
          const j = seen.get(key);
          if (j !== undefined) {
            ctx.report(at('ports', i, field), `duplicate ${what} (also ports[${j}])`);
            ok = false;
          } else seen.set(key, i);
        };
        if (p.name !== '') dup(names, p.name, 'name', `port name '${p.name}'`);
        dup(numbers, `${p.port}/${p.protocol}`, 'port', `port ${p.port}/${p.protocol}`);
        if (p.nodePort !== 0) dup(nodePorts, `${p.nodePort}/${p.protocol}`, 'nodePort', `nodePort ${p.nodePort}/${p.protocol}`);
        ports.push(p);
      });
    }
  }

  // session affinity
  const sessionAffinity = oneOf(ctx, at('sessionAffinity'), m.sessionAffinity, ['None', 'ClientIP'] as const, 'None');
  if (sessionAffinity === undefined) ok = false;
  let affinityTimeoutSeconds = sessionAffinity === 'ClientIP' ? DEFAULT_AFFINITY_TIMEOUT : 0;
  if (given(m.sessionAffinityConfig)) {
    if (sessionAffinity === 'None') {
      ctx.report(at('sessionAffinityConfig'), 'may only be set with sessionAffinity: ClientIP');
      ok = false;
    } else {
      const c = mapping(ctx, at('sessionAffinityConfig'), m.sessionAffinityConfig, ['clientIP']);
      if (c === undefined) ok = false;
      else if (given(c.clientIP)) {
        const ci = mapping(ctx, at('sessionAffinityConfig', 'clientIP'), c.clientIP, ['timeoutSeconds']);
        if (ci === undefined) ok = false;
        else if (given(ci.timeoutSeconds)) {
          const t = ci.timeoutSeconds;
          if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > MAX_AFFINITY_TIMEOUT) {
            ctx.report(at('sessionAffinityConfig', 'clientIP', 'timeoutSeconds'), `must be a whole number of seconds from 1 to ${MAX_AFFINITY_TIMEOUT}, got ${describe(t)}`);
            ok = false;
          } else affinityTimeoutSeconds = t;
        }
      }
    }
  }

  // traffic policies
  const externalTrafficPolicy = oneOf(ctx, at('externalTrafficPolicy'), m.externalTrafficPolicy, ['Cluster', 'Local'] as const, 'Cluster');
  if (externalTrafficPolicy === undefined) ok = false;
  if (externalTrafficPolicy === 'Local' && type === 'ClusterIP' && externalIPs.length === 0) {
    ctx.warn(at('externalTrafficPolicy'), 'Local has no effect: the service has neither a NodePort nor externalIPs (internalTrafficPolicy is the one for its ClusterIP)');
  }
  const internalTrafficPolicy = oneOf(ctx, at('internalTrafficPolicy'), m.internalTrafficPolicy, ['Cluster', 'Local'] as const, 'Cluster');
  if (internalTrafficPolicy === undefined) ok = false;

  // address families
  if (given(m.ipFamilies)) {
    const raw = list(ctx, at('ipFamilies'), m.ipFamilies);
    if (raw === undefined) ok = false;
    else {
      raw.forEach((f, i) => {
        if (f === 'IPv4' && i === 0) return;
        ctx.report(at('ipFamilies', i), f === 'IPv6' ? "IPv6 is not supported: sluice's services are IPv4 only" : f === 'IPv4' ? 'duplicate IPv4' : `must be IPv4, got ${describe(f)}`);
        ok = false;
      });
    }
  }
  if (given(m.ipFamilyPolicy) && m.ipFamilyPolicy !== 'SingleStack') {
    if (m.ipFamilyPolicy === 'PreferDualStack') ctx.warn(at('ipFamilyPolicy'), "served single-stack IPv4: sluice's services are IPv4 only");
    else if (m.ipFamilyPolicy === 'RequireDualStack') {
      ctx.report(at('ipFamilyPolicy'), "RequireDualStack is not supported: sluice's services are IPv4 only (SingleStack)");
      ok = false;
    } else {
      ctx.report(at('ipFamilyPolicy'), `must be SingleStack, PreferDualStack or RequireDualStack, got ${describe(m.ipFamilyPolicy)}`);
      ok = false;
    }
  }

  // accepted, without effect
  if (given(m.publishNotReadyAddresses)) {
    const b = bool(ctx, at('publishNotReadyAddresses'), m.publishNotReadyAddresses);
    if (b === undefined) ok = false;
    else if (b) ctx.warn(at('publishNotReadyAddresses'), "has no effect: every pod a node publishes is a backend (sluice has no readiness), and an EndpointSlice's endpoints count when ready");
  }
  if (set(m.trafficDistribution)) {
    if (string(ctx, at('trafficDistribution'), m.trafficDistribution) === undefined) ok = false;
    else ctx.warn(at('trafficDistribution'), 'has no effect: sluice picks among all the backends');
  }

  // not supported
  for (const f of LOAD_BALANCER_FIELDS) {
    if (set(m[f])) {
      ctx.report(at(f), 'is only for type LoadBalancer, which sluice does not support');
      ok = false;
    }
  }
  if (set(m.externalName)) {
    ctx.report(at('externalName'), 'is only for type ExternalName, which sluice does not support (sluice has no DNS)');
    ok = false;
  }

  if (!ok || meta === undefined || type === undefined || sessionAffinity === undefined || externalTrafficPolicy === undefined || internalTrafficPolicy === undefined) return undefined;
  return {
    namespace: meta.namespace, name: meta.name, type, clusterIP, externalIPs, selector, ports,
    sessionAffinity, affinityTimeoutSeconds, externalTrafficPolicy, internalTrafficPolicy,
  };
}

function sliceEndpoint(ctx: Ctx, path: Path, v: unknown): EndpointSliceEndpoint | undefined {
  const m = mapping(ctx, path, v, ['addresses', 'conditions', 'nodeName', 'hostname', 'targetRef', 'zone', 'hints', 'deprecatedTopology']);
  if (m === undefined) return undefined;
  let ok = true;
  const addresses: string[] = [];
  if (!given(m.addresses)) {
    ctx.report([...path, 'addresses'], 'is required (at least one IPv4 address)');
    ok = false;
  } else {
    const raw = list(ctx, [...path, 'addresses'], m.addresses);
    if (raw === undefined) ok = false;
    else if (raw.length === 0 || raw.length > 100) {
      ctx.report([...path, 'addresses'], `must have from 1 to 100 addresses, got ${raw.length}`);
      ok = false;
    } else {
      raw.forEach((a, i) => {
        const ip = ipv4(ctx, [...path, 'addresses', i], a, 'this is an IPv4 EndpointSlice');
        if (ip === undefined) ok = false;
        else addresses.push(ip);
      });
    }
  }
  // Kubernetes: an unknown (absent) ready condition is to be taken as ready.
  let ready = true;
  if (given(m.conditions)) {
    const c = mapping(ctx, [...path, 'conditions'], m.conditions, ['ready', 'serving', 'terminating']);
    if (c === undefined) ok = false;
    else {
      for (const k of ['ready', 'serving', 'terminating']) {
        if (given(c[k]) && bool(ctx, [...path, 'conditions', k], c[k]) === undefined) ok = false;
      }
      if (c.ready === false) ready = false;
    }
  }
  let nodeName = '';
  if (given(m.nodeName) && m.nodeName !== '') {
    const s = checkedString(ctx, [...path, 'nodeName'], m.nodeName, (x) =>
      NODE_NAME.test(x) ? undefined : `'${x}' is not a valid node name (letters, digits, '.', '-', '_'; at most 63)`);
    if (s === undefined) ok = false;
    else nodeName = s;
  }
  if (given(m.hostname) && checkedString(ctx, [...path, 'hostname'], m.hostname, dnsLabelProblem) === undefined) ok = false;
  if (given(m.zone) && string(ctx, [...path, 'zone'], m.zone) === undefined) ok = false;
  if (given(m.targetRef) && mapping(ctx, [...path, 'targetRef'], m.targetRef, ['kind', 'namespace', 'name', 'uid', 'apiVersion', 'resourceVersion', 'fieldPath']) === undefined) ok = false;
  if (given(m.deprecatedTopology) && labelMap(ctx, [...path, 'deprecatedTopology'], m.deprecatedTopology, 'annotation') === undefined) ok = false;
  if (given(m.hints)) {
    if (mapping(ctx, [...path, 'hints'], m.hints, ['forZones', 'forNodes']) === undefined) ok = false;
    else ctx.warn([...path, 'hints'], 'have no effect: sluice has no topology-aware routing');
  }
  return ok ? { addresses, ready, nodeName } : undefined;
}

const SLICE_FIELDS = ['apiVersion', 'kind', 'metadata', 'addressType', 'ports', 'endpoints'];

function endpointSlice(ctx: Ctx, path: Path, v: Raw, meta: Meta | undefined): EndpointSlice | undefined {
  let ok = true;
  const at = (...rest: (string | number)[]): Path => [...path, ...rest];
  let service: string | undefined;
  if (meta !== undefined) {
    const s = meta.labels[SERVICE_NAME_LABEL];
    if (s === undefined) {
      ctx.report(at('metadata', 'labels'), `must have the label ${SERVICE_NAME_LABEL}: the service (of the slice's namespace) whose backends it holds`);
      ok = false;
    } else {
      const p = serviceNameProblem(s);
      if (p !== undefined) {
        ctx.report(at('metadata', 'labels', SERVICE_NAME_LABEL), p);
        ok = false;
      } else service = s;
    }
  }
  if (!given(v.addressType)) {
    ctx.report(at('addressType'), 'is required (IPv4)');
    ok = false;
  } else if (v.addressType === 'IPv6') {
    ctx.report(at('addressType'), "IPv6 is not supported: sluice's services are IPv4 only");
    ok = false;
  } else if (v.addressType === 'FQDN') {
    ctx.report(at('addressType'), 'FQDN is not supported: sluice has no DNS');
    ok = false;
  } else if (v.addressType !== 'IPv4') {
    ctx.report(at('addressType'), `must be IPv4, got ${describe(v.addressType)}`);
    ok = false;
  }
  const ports: EndpointSlice['ports'] = [];
  if (given(v.ports)) {
    const raw = list(ctx, at('ports'), v.ports);
    if (raw === undefined) ok = false;
    else {
      if (raw.length > 100) {
        ctx.report(at('ports'), `must have at most 100 ports, got ${raw.length}`);
        ok = false;
      }
      const seen = new Map<string, number>();
      raw.forEach((p, i) => {
        const m = mapping(ctx, at('ports', i), p, ['name', 'protocol', 'port', 'appProtocol']);
        if (m === undefined) {
          ok = false;
          return;
        }
        let name = '';
        if (given(m.name) && m.name !== '') {
          const s = checkedString(ctx, at('ports', i, 'name'), m.name, dnsLabelProblem);
          if (s === undefined) ok = false;
          else name = s;
        }
        const proto = protocol(ctx, at('ports', i, 'protocol'), m.protocol);
        let port: number | undefined;
        if (!given(m.port)) ctx.report(at('ports', i, 'port'), 'is required: sluice needs the port the backends listen on (a slice port for all ports is not supported)');
        else port = portNumber(ctx, at('ports', i, 'port'), m.port);
        if (given(m.appProtocol) && string(ctx, at('ports', i, 'appProtocol'), m.appProtocol) === undefined) ok = false;
        const j = seen.get(name);
        if (j !== undefined) {
          ctx.report(at('ports', i, 'name'), `duplicate port name '${name}' (also ports[${j}])`);
          ok = false;
        } else seen.set(name, i);
        if (proto === undefined || port === undefined) ok = false;
        else ports.push({ name, protocol: proto, port });
      });
    }
  }
  const endpoints: EndpointSliceEndpoint[] = [];
  if (!given(v.endpoints)) {
    ctx.report(at('endpoints'), 'is required (a list, maybe empty)');
    ok = false;
  } else {
    const raw = list(ctx, at('endpoints'), v.endpoints);
    if (raw === undefined) ok = false;
    else {
      if (raw.length > 1000) {
        ctx.report(at('endpoints'), `must have at most 1000 endpoints, got ${raw.length}`);
        ok = false;
      }
      raw.forEach((e, i) => {
        const ep = sliceEndpoint(ctx, at('endpoints', i), e);
        if (ep === undefined) ok = false;
        else endpoints.push(ep);
      });
    }
  }
  if (!ok || meta === undefined || service === undefined) return undefined;
  return { namespace: meta.namespace, name: meta.name, service, ports, endpoints };
}

type Kind = 'Service' | 'EndpointSlice';
const API_VERSION: Record<Kind, string> = { Service: SERVICE_API_VERSION, EndpointSlice: SLICE_API_VERSION };
const LISTS: Record<string, { apiVersion: string; implies?: Kind }> = {
  List: { apiVersion: 'v1' },
  ServiceList: { apiVersion: SERVICE_API_VERSION, implies: 'Service' },
  EndpointSliceList: { apiVersion: SLICE_API_VERSION, implies: 'EndpointSlice' },
};
const LIST_METADATA = ['resourceVersion', 'continue', 'remainingItemCount', 'selfLink'];
const TAKES = 'sluice takes Service (v1) and EndpointSlice (discovery.k8s.io/v1), or a List of them';

/** "Service ns/name" from a raw object, for messages, when it names one. */
function objectLabel(v: unknown, implied?: Kind): string | undefined {
  if (!isMapping(v) || !isMapping(v.metadata)) return undefined;
  const kind = typeof v.kind === 'string' ? v.kind : implied;
  const { name, namespace } = v.metadata;
  if (kind === undefined || typeof name !== 'string' || name === '') return undefined;
  return `${kind} ${typeof namespace === 'string' && namespace !== '' ? namespace : 'default'}/${name}`;
}

interface Found {
  services: Service[];
  slices: EndpointSlice[];
  /** "Kind ns/name" → where it was first seen. */
  seen: Map<string, string>;
}

/** Checks one decoded document (an object or a list of them), adding what is valid to `found`. */
function checkDocument(value: unknown, document: number, ctxFor: (object: string | undefined) => Ctx, found: Found): void {
  const addObject = (path: Path, v: unknown, where: string, implied?: Kind): void => {
    const ctx = ctxFor(objectLabel(v, implied));
    if (!isMapping(v)) {
      ctx.report(path, `must be a mapping (a Service or an EndpointSlice), got ${describe(v)}`);
      return;
    }
    let ok = true;
    let kind: Kind | undefined = implied;
    if (!given(v.kind)) {
      if (implied === undefined) {
        ctx.report([...path, 'kind'], `is required (${TAKES})`);
        return;
      }
    } else if (v.kind === 'Service' || v.kind === 'EndpointSlice') {
      if (implied !== undefined && v.kind !== implied) {
        ctx.report([...path, 'kind'], `must be ${implied} in a ${implied}List, got ${describe(v.kind)}`);
        return;
      }
      kind = v.kind;
    } else {
      // Something else: its other fields would only add noise.
      ctx.report([...path, 'kind'], `${typeof v.kind === 'string' ? `kind ${v.kind} is not taken here` : `must be a string, got ${describe(v.kind)}`}: ${TAKES}`);
      return;
    }
    if (kind === undefined) return;
    const want = API_VERSION[kind];
    if (!given(v.apiVersion)) {
      if (implied === undefined) {
        ctx.report([...path, 'apiVersion'], `is required (${want} for kind ${kind})`);
        ok = false;
      }
    } else if (v.apiVersion !== want) {
      ctx.report([...path, 'apiVersion'], `must be ${want} for kind ${kind}, got ${describe(v.apiVersion)}`);
      ok = false;
    }
    const fields = kind === 'Service' ? ['apiVersion', 'kind', 'metadata', 'spec'] : SLICE_FIELDS;
    mapping(ctx, path, v, fields, kind === 'Service' ? ['status'] : []);
    if (Object.keys(v).some((k) => !fields.includes(k) && !(kind === 'Service' && k === 'status'))) ok = false;
    const meta = metadata(ctx, [...path, 'metadata'], v.metadata, kind === 'Service' ? serviceNameProblem : dnsSubdomainProblem);
    const obj = kind === 'Service' ? serviceSpec(ctx, [...path, 'spec'], v.spec, meta) : endpointSlice(ctx, path, v, meta);
    // Duplicates are looked for even among invalid objects, as long as the name is usable.
    if (meta !== undefined) {
      const key = `${kind} ${serviceKeyOf(meta)}`;
      const earlier = found.seen.get(key);
      if (earlier !== undefined) {
        ctx.report([...path, 'metadata', 'name'], `duplicate ${key} (also in ${earlier})`);
        return;
      }
      found.seen.set(key, where);
    }
    if (!ok || obj === undefined) return;
    if (kind === 'Service') found.services.push(obj as Service);
    else found.slices.push(obj as EndpointSlice);
  };

  if (!isMapping(value)) {
    ctxFor(undefined).report([], `must be a mapping (${TAKES}), got ${describe(value)}`);
    return;
  }
  const kind = value.kind;
  const listKind = typeof kind === 'string' ? LISTS[kind] : undefined;
  if (listKind !== undefined) {
    const listCtx = ctxFor(undefined);
    const m = mapping(listCtx, [], value, ['apiVersion', 'kind', 'metadata', 'items'])!;
    if (!given(m.apiVersion)) listCtx.report(['apiVersion'], `is required (${listKind.apiVersion} for kind ${String(kind)})`);
    else if (m.apiVersion !== listKind.apiVersion) listCtx.report(['apiVersion'], `must be ${listKind.apiVersion} for kind ${String(kind)}, got ${describe(m.apiVersion)}`);
    if (given(m.metadata)) mapping(listCtx, ['metadata'], m.metadata, [], LIST_METADATA);
    if (!given(m.items)) {
      listCtx.report(['items'], 'is required (a list of objects)');
      return;
    }
    list(listCtx, ['items'], m.items)?.forEach((item, i) => addObject(['items', i], item, `document ${document} items[${i}]`, listKind.implies));
    return;
  }
  addObject([], value, `document ${document}`);
}

/**
 * Parses Service and EndpointSlice documents. `source` names the input in messages. Returns
 * the objects in input order; throws one `ServiceParseError` listing every problem. What is
 * accepted but worth telling (see the head of this file) is added to `warnings`, in the shape
 * of a problem.
 */
export function parseServiceDocuments(text: string, source: string, warnings?: ServiceProblem[]): { services: Service[]; slices: EndpointSlice[] } {
  const problems: ServiceProblem[] = [];
  const lineCounter = new LineCounter();
  const parsed = parseAllDocuments(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  const docs: Document.Parsed[] = Array.isArray(parsed) ? parsed : [];
  const found: Found = { services: [], slices: [], seen: new Map() };

  docs.forEach((doc, docIndex) => {
    const document = docIndex + 1;
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const first = (e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?\s*$/, '').replace(/:\s*$/, '');
        const line = e.linePos?.[0].line;
        problems.push({ source, document, ...(line === undefined ? {} : { line }), path: '', message: `not valid YAML: ${first}` });
      }
      return;
    }
    const lineOf = (path: Path): number | undefined => {
      for (let n = path.length; n >= 0; n--) {
        const node: unknown = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
        if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
      }
      return undefined;
    };
    const at = (object: string | undefined, path: Path, message: string): ServiceProblem => {
      const line = lineOf(path);
      return { source, document, ...(line === undefined ? {} : { line }), ...(object === undefined ? {} : { object }), path: formatPath(path), message };
    };
    const ctxFor = (object: string | undefined): Ctx => ({
      report: (path, message) => problems.push(at(object, path, message)),
      warn: (path, message) => warnings?.push(at(object, path, message)),
    });
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (e) {
      problems.push({ source, document, path: '', message: `not usable YAML: ${(e as Error).message}` });
      return;
    }
    if (value === null || value === undefined) return; // an empty document (a stray `---`)
    checkDocument(value, document, ctxFor, found);
  });

  if (problems.length > 0) throw new ServiceParseError(source, problems);
  return { services: found.services, slices: found.slices };
}
