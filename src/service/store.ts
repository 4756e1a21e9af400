/**
 * Services and EndpointSlices as cluster state in the store (services/<ns>/<name>,
 * endpointslices/<ns>/<name>: store/keys.ts), so a command given to any node reaches every
 * node: each agent watches these prefixes and programs its frontends (service/frontends.ts).
 *
 * `applyServices` writes every object of one input in a single transaction, all or nothing,
 * after giving each service what it lacks: a clusterIP from serviceCIDR, a nodePort from
 * nodePortRange for each port of a NodePort service (`planServices`, pure). What a service
 * already has is kept when it is applied again without it; its clusterIP cannot change (as in
 * Kubernetes: delete it first). Addresses and ports are unique cluster-wide. Two applies that
 * race cannot hand out one address or port twice: each reads SERVICE_ALLOCATION_KEY before it
 * lists the services and rewrites it in its transaction, compared to what it read, so of two
 * concurrent applies the second fails its compare and plans again on what the first wrote.
 *
 * Records read back are checked field by field (the store is a trust boundary: store/record.ts):
 * one that does not pass is reported with its key and left out, never half-used.
 */
import {
  ENDPOINT_SLICES, endpointSliceStoreKey, namespaceEndpointSlicesPrefix, namespaceServicesPrefix, objectOfKey,
  SERVICE_ALLOCATION_KEY, SERVICES, serviceStoreKey,
} from '../store/keys.js';
import { parseRecords, RecordError, RecordFields } from '../store/record.js';
import type { Compare, KeyValue, Store, TxnOp } from '../store/types.js';
import { StoreError } from '../store/types.js';
import { cidrContains, cidrLast, formatCidr, formatIPv4, ipv4Add, isIPv4, parseCidr, parseIPv4, type Cidr, type Ipv4 } from '../util/ipv4.js';
import { dnsLabelProblem, dnsSubdomainProblem, portNameProblem } from '../policy/names.js';
import { externalIPProblem, serviceNameProblem } from './parse.js';
import { MAX_AFFINITY_TIMEOUT, serviceKeyOf, type EndpointSlice, type Service, type ServicePort, type ServiceProtocol } from './types.js';

/** Where addresses and ports come from (config.ts serviceCIDR, nodePortRange, clusterCIDR). */
export interface ServiceAllocationOptions {
  /** The clusterIP pool, e.g. 10.96.0.0/12. */
  serviceCIDR: string;
  /** NodePorts, "min-max", e.g. 30000-32767. */
  nodePortRange: string;
  /** The pod pool: no external IP may be in it. */
  clusterCIDR?: string;
}

export type ApplyAction = 'created' | 'configured' | 'unchanged';

export interface AppliedService {
  /** "namespace/name". */
  ref: string;
  action: ApplyAction;
  clusterIP: string;
  /** Its NodePorts, "30080/TCP", in port order. */
  nodePorts: string[];
  /** What this apply allocated: "clusterIP 10.96.0.2", "nodePort 30000/TCP (port 80/TCP)". */
  allocated: string[];
}

export interface ServiceApplyResult {
  services: AppliedService[];
  slices: { ref: string; action: ApplyAction }[];
  /** Accepted, but worth telling (a slice for a service that is not stored, or that has a selector). */
  warnings: string[];
  /** Records of the store that failed their checks: reported and left out (their addresses are free). */
  problems: string[];
}

/** Why an apply or a delete did nothing: every problem. */
export class ServiceStoreError extends Error {
  constructor(readonly verb: 'applied' | 'deleted', readonly problems: readonly string[]) {
    super(`nothing was ${verb}: ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n  ${problems.join('\n  ')}`);
    this.name = 'ServiceStoreError';
  }
}

// --- records ------------------------------------------------------------------------------

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function recordName(f: RecordFields, prefix: typeof SERVICES | typeof ENDPOINT_SLICES, nameProblem: (s: string) => string | undefined): { namespace: string; name: string } {
  const at = objectOfKey(prefix, f.key);
  if (!at) throw new RecordError(f.key, `is not a key ${prefix}<namespace>/<name>`);
  const namespace = f.str('namespace');
  if (namespace !== at.namespace) f.fail('namespace', `is '${namespace}', but the key is in namespace ${at.namespace}`);
  const p = dnsLabelProblem(namespace);
  if (p) f.fail('namespace', p);
  const name = f.str('name');
  if (name !== at.name) f.fail('name', `is '${name}', but the key names ${at.name}`);
  const q = nameProblem(name);
  if (q) f.fail('name', q);
  return { namespace, name };
}

function oneOfField<T extends string>(f: RecordFields, field: string, values: readonly T[]): T {
  const v = f.raw(field);
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) f.fail(field, `must be ${values.join(' or ')}, got ${JSON.stringify(v) ?? 'nothing'}`);
  return v as T;
}

/** A nested value's check: throws a RecordError naming `field`. */
function nested(f: RecordFields, field: string, ok: boolean, problem: string): void {
  if (!ok) f.fail(field, problem);
}

const isPort = (v: unknown, min = 1): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= 65535;
const isProtocol = (v: unknown): v is ServiceProtocol => v === 'TCP' || v === 'UDP';

/** A stored Service, every field checked against its key and the model (service/types.ts). */
export function parseServiceRecord(key: string, value: string): Service {
  const f = RecordFields.parse(key, value);
  const { namespace, name } = recordName(f, SERVICES, serviceNameProblem);
  const type = oneOfField(f, 'type', ['ClusterIP', 'NodePort'] as const);
  const clusterIP = f.ipv4('clusterIP');
  const rawExt = f.raw('externalIPs');
  nested(f, 'externalIPs', Array.isArray(rawExt), 'must be a list of IPv4 addresses');
  const externalIPs = (rawExt as unknown[]).map((ip, i) => {
    nested(f, `externalIPs[${i}]`, typeof ip === 'string' && externalIPProblem(ip) === undefined, `must be an IPv4 address usable as an external IP, got ${JSON.stringify(ip)}`);
    return ip as string;
  });
  nested(f, 'externalIPs', new Set(externalIPs).size === externalIPs.length, 'has an address twice');
  const selector = f.raw('selector') === null ? null : f.labels('selector');
  nested(f, 'selector', selector === null || Object.keys(selector).length > 0, 'must be null or hold at least one label (an empty selector is stored as null)');
  const rawPorts = f.raw('ports');
  nested(f, 'ports', Array.isArray(rawPorts) && rawPorts.length > 0, 'must be a non-empty list');
  const seen = new Set<string>();
  const ports = (rawPorts as unknown[]).map((p, i): ServicePort => {
    const at = `ports[${i}]`;
    nested(f, at, isObject(p), 'must be an object');
    const o = p as Record<string, unknown>;
    nested(f, `${at}.name`, typeof o.name === 'string' && (o.name === '' || dnsLabelProblem(o.name) === undefined), `must be '' or a DNS-1123 label, got ${JSON.stringify(o.name)}`);
    nested(f, `${at}.name`, o.name !== '' || (rawPorts as unknown[]).length === 1, 'may be empty only when the service has one port');
    nested(f, `${at}.protocol`, isProtocol(o.protocol), `must be TCP or UDP, got ${JSON.stringify(o.protocol)}`);
    nested(f, `${at}.port`, isPort(o.port), `must be a port from 1 to 65535, got ${JSON.stringify(o.port)}`);
    nested(f, `${at}.targetPort`, isPort(o.targetPort) || (typeof o.targetPort === 'string' && portNameProblem(o.targetPort) === undefined),
      `must be a port from 1 to 65535 or a port name, got ${JSON.stringify(o.targetPort)}`);
    nested(f, `${at}.nodePort`, type === 'NodePort' ? isPort(o.nodePort) : o.nodePort === 0,
      type === 'NodePort' ? `must be a port from 1 to 65535 (the service is a NodePort), got ${JSON.stringify(o.nodePort)}` : `must be 0 (the service is a ClusterIP), got ${JSON.stringify(o.nodePort)}`);
    nested(f, `${at}.appProtocol`, o.appProtocol === undefined || (typeof o.appProtocol === 'string' && o.appProtocol !== ''), `must be a non-empty string, got ${JSON.stringify(o.appProtocol)}`);
    for (const k of [`name ${String(o.name)}`, `port ${String(o.port)}/${String(o.protocol)}`]) {
      nested(f, at, k === 'name ' || !seen.has(k), `has the ${k} of another port`);
      seen.add(k);
    }
    return {
      name: o.name as string, protocol: o.protocol as ServiceProtocol, port: o.port as number, targetPort: o.targetPort as number | string, nodePort: o.nodePort as number,
      ...(o.appProtocol === undefined ? {} : { appProtocol: o.appProtocol as string }),
    };
  });
  const sessionAffinity = oneOfField(f, 'sessionAffinity', ['None', 'ClientIP'] as const);
  const affinityTimeoutSeconds = sessionAffinity === 'None' ? f.int('affinityTimeoutSeconds', 0, 0) : f.int('affinityTimeoutSeconds', 1, MAX_AFFINITY_TIMEOUT);
  const externalTrafficPolicy = oneOfField(f, 'externalTrafficPolicy', ['Cluster', 'Local'] as const);
  const internalTrafficPolicy = oneOfField(f, 'internalTrafficPolicy', ['Cluster', 'Local'] as const);
  return { namespace, name, type, clusterIP, externalIPs, selector, ports, sessionAffinity, affinityTimeoutSeconds, externalTrafficPolicy, internalTrafficPolicy };
}

/** A stored EndpointSlice, every field checked against its key and the model. */
export function parseEndpointSliceRecord(key: string, value: string): EndpointSlice {
  const f = RecordFields.parse(key, value);
  const { namespace, name } = recordName(f, ENDPOINT_SLICES, dnsSubdomainProblem);
  const service = f.str('service');
  const sp = serviceNameProblem(service);
  if (sp) f.fail('service', sp);
  const rawPorts = f.raw('ports');
  nested(f, 'ports', Array.isArray(rawPorts), 'must be a list');
  const names = new Set<string>();
  const ports = (rawPorts as unknown[]).map((p, i) => {
    const at = `ports[${i}]`;
    nested(f, at, isObject(p), 'must be an object');
    const o = p as Record<string, unknown>;
    nested(f, `${at}.name`, typeof o.name === 'string' && (o.name === '' || dnsLabelProblem(o.name) === undefined), `must be '' or a DNS-1123 label, got ${JSON.stringify(o.name)}`);
    nested(f, `${at}.name`, !names.has(o.name as string), `'${String(o.name)}' is the name of another port`);
    names.add(o.name as string);
    nested(f, `${at}.protocol`, isProtocol(o.protocol), `must be TCP or UDP, got ${JSON.stringify(o.protocol)}`);
    nested(f, `${at}.port`, isPort(o.port), `must be a port from 1 to 65535, got ${JSON.stringify(o.port)}`);
    return { name: o.name as string, protocol: o.protocol as ServiceProtocol, port: o.port as number };
  });
  const rawEps = f.raw('endpoints');
  nested(f, 'endpoints', Array.isArray(rawEps), 'must be a list');
  const endpoints = (rawEps as unknown[]).map((e, i) => {
    const at = `endpoints[${i}]`;
    nested(f, at, isObject(e), 'must be an object');
    const o = e as Record<string, unknown>;
    nested(f, `${at}.addresses`, Array.isArray(o.addresses) && o.addresses.length > 0 && o.addresses.every((a) => typeof a === 'string' && isIPv4(a) && a.trim() === a),
      `must be a non-empty list of IPv4 addresses, got ${JSON.stringify(o.addresses)}`);
    nested(f, `${at}.ready`, typeof o.ready === 'boolean', `must be true or false, got ${JSON.stringify(o.ready)}`);
    nested(f, `${at}.nodeName`, typeof o.nodeName === 'string' && (o.nodeName === '' || /^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/.test(o.nodeName)),
      `must be '' or a node name, got ${JSON.stringify(o.nodeName)}`);
    return { addresses: [...(o.addresses as string[])], ready: o.ready as boolean, nodeName: o.nodeName as string };
  });
  return { namespace, name, service, ports, endpoints };
}

// --- reading ------------------------------------------------------------------------------

/** The stored services (of one namespace, or all), each checked; a record that fails is a line in `problems` and left out. */
export async function listServices(store: Store, problems: string[] = [], namespace?: string): Promise<Service[]> {
  const r = parseRecords(await store.list(namespace ? namespaceServicesPrefix(namespace) : SERVICES), parseServiceRecord);
  problems.push(...r.problems);
  return r.records;
}

/** The stored EndpointSlices (of one namespace, or all), checked as listServices does. */
export async function listEndpointSlices(store: Store, problems: string[] = [], namespace?: string): Promise<EndpointSlice[]> {
  const r = parseRecords(await store.list(namespace ? namespaceEndpointSlicesPrefix(namespace) : ENDPOINT_SLICES), parseEndpointSliceRecord);
  problems.push(...r.problems);
  return r.records;
}

/** The service `ref` ("namespace/name"), or undefined; a record that fails its checks throws its RecordError. */
export async function getService(store: Store, ref: string): Promise<Service | undefined> {
  const kv = await store.get(serviceStoreKey(ref));
  return kv ? parseServiceRecord(kv.key, kv.value) : undefined;
}

export async function getEndpointSlice(store: Store, ref: string): Promise<EndpointSlice | undefined> {
  const kv = await store.get(endpointSliceStoreKey(ref));
  return kv ? parseEndpointSliceRecord(kv.key, kv.value) : undefined;
}

// --- planning (pure) ----------------------------------------------------------------------

interface Pool {
  cidr: Cidr;
  /** The first address allocation may hand out (network + 2: the first usable one is reserved, as Kubernetes' kubernetes service has it). */
  first: Ipv4;
  /** The last (broadcast - 1). */
  last: Ipv4;
}

function poolOf(o: ServiceAllocationOptions): { pool: Pool; nodePorts: { min: number; max: number }; pods?: Cidr } {
  let cidr: Cidr;
  try {
    cidr = parseCidr(o.serviceCIDR);
  } catch (e) {
    throw new ServiceStoreError('applied', [`serviceCIDR: ${(e as Error).message}`]);
  }
  if (cidr.prefix > 29) throw new ServiceStoreError('applied', [`serviceCIDR: ${o.serviceCIDR} is too small: give a /29 or larger`]);
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(o.nodePortRange);
  const min = Number(m?.[1]);
  const max = Number(m?.[2]);
  if (!m || min < 1 || max > 65535 || min > max) throw new ServiceStoreError('applied', [`nodePortRange: '${o.nodePortRange}' is not a port range min-max within 1-65535`]);
  let pods: Cidr | undefined;
  if (o.clusterCIDR) {
    try {
      pods = parseCidr(o.clusterCIDR);
    } catch (e) {
      throw new ServiceStoreError('applied', [`clusterCIDR: ${(e as Error).message}`]);
    }
  }
  return { pool: { cidr, first: ipv4Add(cidr.base, 2), last: ipv4Add(cidrLast(cidr), -1) }, nodePorts: { min, max }, ...(pods ? { pods } : {}) };
}

export interface ServicePlan {
  /** The input services as they are to be stored, every clusterIP and nodePort set. */
  services: Service[];
  results: AppliedService[];
  problems: string[];
}

const portText = (p: Pick<ServicePort, 'port' | 'protocol'>): string => `${p.port}/${p.protocol}`;

/**
 * What storing `input` over `stored` (every stored service, by ref) makes of each service, and
 * every reason it cannot be stored. Pure. A clusterIP or nodePort given in the input is checked
 * (in the pool or range, not another service's, not changing a stored clusterIP) before any is
 * allocated, so an allocation never takes what a later service of the input asks for. Allocation
 * takes the lowest free address after the pool's first usable one (which stays reserved) and
 * the lowest free port of the range (free for its protocol, and not used by another port of the
 * service).
 */
export function planServices(stored: ReadonlyMap<string, Service>, input: readonly Service[], opts: ServiceAllocationOptions): ServicePlan {
  const { pool, nodePorts: range, pods } = poolOf(opts);
  const problems: string[] = [];
  const inputRefs = new Set<string>();
  for (const s of input) {
    const ref = serviceKeyOf(s);
    if (inputRefs.has(ref)) problems.push(`service ${ref} is given twice`);
    inputRefs.add(ref);
  }
  /** What is taken, by whom: clusterIPs; "30080/TCP" nodePorts; "192.0.2.1:80/TCP" external frontends. */
  const ips = new Map<string, string>();
  const nodePortsTaken = new Map<string, string>();
  const externals = new Map<string, string>();
  for (const [ref, s] of stored) {
    if (inputRefs.has(ref)) continue;
    if (s.clusterIP) ips.set(s.clusterIP, ref);
    for (const p of s.ports) {
      if (p.nodePort) nodePortsTaken.set(`${p.nodePort}/${p.protocol}`, ref);
      for (const ip of s.externalIPs) externals.set(`${ip}:${portText(p)}`, ref);
    }
  }
  const claim = (taken: Map<string, string>, key: string, ref: string, what: string): void => {
    const other = taken.get(key);
    if (other !== undefined && other !== ref) problems.push(`service ${ref}: ${what} is service ${other}'s already`);
    else taken.set(key, ref);
  };

  // First the addresses and ports given (or kept), then the allocations.
  const out: Service[] = input.map((s) => ({ ...s, externalIPs: [...s.externalIPs], ports: s.ports.map((p) => ({ ...p })) }));
  const allocated = new Map<string, string[]>();
  const pendingIP: Service[] = [];
  const pendingPorts: [Service, ServicePort][] = [];
  for (const s of out) {
    const ref = serviceKeyOf(s);
    const prev = stored.get(ref);
    allocated.set(ref, []);
    if (s.clusterIP === '') {
      if (prev) s.clusterIP = prev.clusterIP;
      else pendingIP.push(s);
    } else if (prev && prev.clusterIP !== s.clusterIP) {
      problems.push(`service ${ref}: clusterIP is immutable: it is ${prev.clusterIP}, not ${s.clusterIP} (delete the service to give it another)`);
    } else if (!prev) {
      const ip = parseIPv4(s.clusterIP);
      if (!cidrContains(pool.cidr, ip)) problems.push(`service ${ref}: clusterIP ${s.clusterIP} is outside serviceCIDR ${formatCidr(pool.cidr)}`);
      else if (ip === pool.cidr.base || ip === cidrLast(pool.cidr)) {
        problems.push(`service ${ref}: clusterIP ${s.clusterIP} is the ${ip === pool.cidr.base ? 'network' : 'broadcast'} address of serviceCIDR ${formatCidr(pool.cidr)}`);
      }
    }
    if (s.clusterIP !== '') claim(ips, s.clusterIP, ref, `clusterIP ${s.clusterIP}`);
    for (const ip of s.externalIPs) {
      const a = parseIPv4(ip);
      if (cidrContains(pool.cidr, a)) problems.push(`service ${ref}: external IP ${ip} is in serviceCIDR ${formatCidr(pool.cidr)}`);
      if (pods && cidrContains(pods, a)) problems.push(`service ${ref}: external IP ${ip} is in the pod pool (clusterCIDR ${formatCidr(pods)})`);
      for (const p of s.ports) claim(externals, `${ip}:${portText(p)}`, ref, `external IP ${ip} port ${portText(p)}`);
    }
    if (s.type !== 'NodePort') {
      for (const p of s.ports) p.nodePort = 0;
      continue;
    }
    for (const p of s.ports) {
      const kept = prev?.type === 'NodePort' ? prev.ports.find((q) => q.port === p.port && q.protocol === p.protocol)?.nodePort ?? 0 : 0;
      if (p.nodePort === 0 && kept === 0) {
        pendingPorts.push([s, p]);
        continue;
      }
      if (p.nodePort === 0) p.nodePort = kept;
      else if (p.nodePort !== kept && (p.nodePort < range.min || p.nodePort > range.max)) {
        problems.push(`service ${ref}: port ${portText(p)}: nodePort ${p.nodePort} is outside nodePortRange ${range.min}-${range.max}`);
      }
      claim(nodePortsTaken, `${p.nodePort}/${p.protocol}`, ref, `nodePort ${p.nodePort}/${p.protocol}`);
    }
  }

  let next: Ipv4 | undefined = pool.first;
  for (const s of pendingIP) {
    const ref = serviceKeyOf(s);
    while (next !== undefined && ips.has(formatIPv4(next))) next = next < pool.last ? ipv4Add(next, 1) : undefined;
    if (next === undefined) {
      problems.push(`service ${ref}: serviceCIDR ${formatCidr(pool.cidr)} has no free address left`);
      continue;
    }
    s.clusterIP = formatIPv4(next);
    ips.set(s.clusterIP, ref);
    allocated.get(ref)!.push(`clusterIP ${s.clusterIP}`);
  }
  for (const [s, p] of pendingPorts) {
    const ref = serviceKeyOf(s);
    const own = new Set(s.ports.map((q) => q.nodePort));
    let n = range.min;
    while (n <= range.max && (nodePortsTaken.has(`${n}/${p.protocol}`) || own.has(n))) n++;
    if (n > range.max) {
      problems.push(`service ${ref}: port ${portText(p)}: nodePortRange ${range.min}-${range.max} has no free ${p.protocol} port left`);
      continue;
    }
    p.nodePort = n;
    nodePortsTaken.set(`${n}/${p.protocol}`, ref);
    allocated.get(ref)!.push(`nodePort ${n}/${p.protocol} (port ${portText(p)})`);
  }

  const results = out.map((s): AppliedService => {
    const ref = serviceKeyOf(s);
    const prev = stored.get(ref);
    return {
      ref, action: !prev ? 'created' : serviceValue(prev) === serviceValue(s) ? 'unchanged' : 'configured', clusterIP: s.clusterIP,
      nodePorts: s.ports.filter((p) => p.nodePort).map((p) => `${p.nodePort}/${p.protocol}`), allocated: allocated.get(ref)!,
    };
  });
  return { services: out, results, problems };
}

// --- writing ------------------------------------------------------------------------------

/** The order a stored object's fields are written in, whatever order they were built in (so "unchanged" is a string compare). */
function serviceValue(s: Service): string {
  const ports = s.ports.map((p) => ({
    name: p.name, protocol: p.protocol, port: p.port, targetPort: p.targetPort, nodePort: p.nodePort, ...(p.appProtocol === undefined ? {} : { appProtocol: p.appProtocol }),
  }));
  return JSON.stringify({
    namespace: s.namespace, name: s.name, type: s.type, clusterIP: s.clusterIP, externalIPs: s.externalIPs, selector: s.selector, ports,
    sessionAffinity: s.sessionAffinity, affinityTimeoutSeconds: s.affinityTimeoutSeconds,
    externalTrafficPolicy: s.externalTrafficPolicy, internalTrafficPolicy: s.internalTrafficPolicy,
  });
}

function sliceValue(s: EndpointSlice): string {
  return JSON.stringify({
    namespace: s.namespace, name: s.name, service: s.service,
    ports: s.ports.map((p) => ({ name: p.name, protocol: p.protocol, port: p.port })),
    endpoints: s.endpoints.map((e) => ({ addresses: e.addresses, ready: e.ready, nodeName: e.nodeName })),
  });
}

const ATTEMPTS = 32;
const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Checked records by ref, with the modRevision of every key under the prefix (a failed record's too: it is overwritten under compare). */
function byRef<T extends { namespace: string; name: string }>(kvs: readonly KeyValue[], parse: (k: string, v: string) => T, problems: string[]) {
  const records = new Map<string, T>();
  const revs = new Map<string, number>();
  for (const kv of kvs) revs.set(kv.key, kv.modRevision);
  const r = parseRecords(kvs, parse);
  for (const x of r.records) records.set(serviceKeyOf(x), x);
  problems.push(...r.problems);
  return { records, revs };
}

/**
 * Stores `input` (validated by parse.ts) in one transaction: every service with its clusterIP
 * and nodePorts (planServices), every slice. Nothing is written when anything is wrong: the
 * ServiceStoreError lists every problem. Retried when another writer got in between.
 */
export async function applyServices(store: Store, input: { services: readonly Service[]; slices: readonly EndpointSlice[] }, opts: ServiceAllocationOptions): Promise<ServiceApplyResult> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    // The allocation key before the list: a service written after this read changes it, and so fails the compare.
    const lock = await store.get(SERVICE_ALLOCATION_KEY);
    const problems: string[] = [];
    const svcs = byRef(await store.list(SERVICES), parseServiceRecord, problems);
    const slices = byRef(await store.list(ENDPOINT_SLICES), parseEndpointSliceRecord, problems);
    const plan = planServices(svcs.records, input.services, opts);
    const errors = [...plan.problems];
    const sliceRefs = new Set<string>();
    for (const s of input.slices) {
      const ref = serviceKeyOf(s);
      if (sliceRefs.has(ref)) errors.push(`EndpointSlice ${ref} is given twice`);
      sliceRefs.add(ref);
    }
    if (errors.length) throw new ServiceStoreError('applied', errors);

    const ops: TxnOp[] = [];
    const compares: Compare[] = [];
    plan.services.forEach((s, i) => {
      const key = serviceStoreKey(serviceKeyOf(s));
      compares.push({ key, modRevision: svcs.revs.get(key) ?? 0 });
      if (plan.results[i]!.action !== 'unchanged') ops.push({ op: 'put', key, value: serviceValue(s) });
    });
    const sliceResults = input.slices.map((s) => {
      const ref = serviceKeyOf(s);
      const key = endpointSliceStoreKey(ref);
      compares.push({ key, modRevision: slices.revs.get(key) ?? 0 });
      const prev = slices.records.get(ref);
      const action: ApplyAction = !prev ? 'created' : sliceValue(prev) === sliceValue(s) ? 'unchanged' : 'configured';
      if (action !== 'unchanged') ops.push({ op: 'put', key, value: sliceValue(s) });
      return { ref, action };
    });
    // A forged record at a key being written is replaced (its compare is on the revision listed).
    const result: ServiceApplyResult = { services: plan.results, slices: sliceResults, warnings: sliceWarnings(input.slices, svcs.records, plan.services), problems };
    if (ops.length === 0) return result;
    if (plan.services.length > 0) {
      compares.push({ key: SERVICE_ALLOCATION_KEY, modRevision: lock?.modRevision ?? 0 });
      ops.push({ op: 'put', key: SERVICE_ALLOCATION_KEY, value: JSON.stringify({ updated: new Date().toISOString() }) });
    }
    const t = await store.txn(compares, ops);
    if (t.succeeded) return result;
    await pause(Math.floor(Math.random() * 5 * (attempt + 1)));
  }
  throw new StoreError('applying the services kept racing with other writers: try again');
}

function sliceWarnings(slices: readonly EndpointSlice[], stored: ReadonlyMap<string, Service>, applied: readonly Service[]): string[] {
  const final = new Map(stored);
  for (const s of applied) final.set(serviceKeyOf(s), s);
  const out: string[] = [];
  for (const sl of slices) {
    const ref = `${sl.namespace}/${sl.service}`;
    const svc = final.get(ref);
    if (!svc) out.push(`EndpointSlice ${serviceKeyOf(sl)}: service ${ref} is not stored: its endpoints serve nothing until it is`);
    else if (svc.selector !== null) out.push(`EndpointSlice ${serviceKeyOf(sl)}: service ${ref} has a selector: its backends are the pods it selects, not this slice's endpoints`);
  }
  return out;
}

/**
 * Deletes the named services and slices ("namespace/name") in one transaction. Every one must
 * exist: otherwise nothing is deleted and the ServiceStoreError names those that do not.
 */
export async function deleteServiceObjects(store: Store, refs: { services?: readonly string[]; slices?: readonly string[] }): Promise<{ services: string[]; slices: string[] }> {
  const services = [...new Set(refs.services ?? [])];
  const slices = [...new Set(refs.slices ?? [])];
  const keys = [...services.map(serviceStoreKey), ...slices.map(endpointSliceStoreKey)];
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const current = await Promise.all(keys.map((k) => store.get(k)));
    const missing = keys.flatMap((k, i) => (current[i] ? [] : [i < services.length ? `no service ${services[i]}` : `no EndpointSlice ${slices[i - services.length]}`]));
    if (missing.length) throw new ServiceStoreError('deleted', missing);
    if (keys.length === 0) return { services, slices };
    const t = await store.txn(keys.map((key, i) => ({ key, modRevision: current[i]!.modRevision })), keys.map((key) => ({ op: 'delete' as const, key })));
    if (t.succeeded) return { services, slices };
  }
  throw new StoreError('deleting kept racing with other writers: try again');
}

/** Deletes the named services in one transaction; an unknown one is an error and nothing is deleted. */
export async function deleteServices(store: Store, refs: readonly string[]): Promise<string[]> {
  return (await deleteServiceObjects(store, { services: refs })).services;
}

/** Deletes the named EndpointSlices in one transaction; an unknown one is an error and nothing is deleted. */
export async function deleteEndpointSlices(store: Store, refs: readonly string[]): Promise<string[]> {
  return (await deleteServiceObjects(store, { slices: refs })).slices;
}
