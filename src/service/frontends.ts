/**
 * The frontends of this node (pure, no I/O): for every port of every service, one frontend on
 * its clusterIP, one on each of its externalIPs and, for a NodePort service, one on its
 * nodePort on every address of the node; each with its backends (service/datapath.ts turns
 * them into the service maps).
 *
 * Backends, as kube-proxy takes them:
 *   - A service with a selector: the published endpoints (every node's pods) of its namespace
 *     whose labels hold every key=value of the selector. A numeric targetPort is the backend's
 *     port; a named one is the port of that name and of the frontend's protocol the pod
 *     declares, per pod (a pod without it is no backend of that port).
 *   - A service without one (null, and `selector: {}` too: Kubernetes keeps an empty selector
 *     as none, and its EndpointSlice controller then leaves the service to slices others
 *     write): the ready endpoints of the EndpointSlices of its namespace whose
 *     kubernetes.io/service-name is the service, from the slice port of the service port's
 *     name and protocol; an endpoint's first address (as kube-proxy: the addresses are fungible).
 *   - Traffic policy Local (internalTrafficPolicy for the ClusterIP, externalTrafficPolicy
 *     for external IPs and NodePorts): only the backends on this node (`opts.node`).
 *
 * Order is deterministic: services by namespace/name, then their ports as declared, then
 * ClusterIP, the external IPs as declared, NodePort; backends by address (numerically), then port.
 */
import type { PublishedEndpoint } from '../policy/store.js';
import { parseIPv4 } from '../util/ipv4.js';
import { serviceKeyOf, type EndpointSlice, type Service, type ServicePort, type ServiceProtocol } from './types.js';

export interface Backend {
  address: string;
  port: number;
  node: string;
  /** "namespace/pod" of a published endpoint, "namespace/slice" of an EndpointSlice's endpoint. */
  endpoint: string;
}

export interface Frontend {
  /** "namespace/name". */
  service: string;
  portName: string;
  kind: 'ClusterIP' | 'NodePort' | 'ExternalIP';
  /** For NodePort: '' = every address of the node. */
  address: string;
  port: number;
  protocol: ServiceProtocol;
  affinityTimeoutSeconds: number;
  /** externalTrafficPolicy Local for NodePort/ExternalIP, internalTrafficPolicy Local for ClusterIP. */
  localOnly: boolean;
  /** Sorted by address then port, deterministic. */
  backends: Backend[];
}

const byKey = (a: { namespace: string; name: string }, b: { namespace: string; name: string }): number =>
  a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;

function compareBackends(a: Backend, b: Backend): number {
  const d = parseIPv4(a.address) - parseIPv4(b.address);
  if (d !== 0) return d;
  if (a.port !== b.port) return a.port - b.port;
  return a.endpoint < b.endpoint ? -1 : a.endpoint > b.endpoint ? 1 : 0;
}

const selects = (selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean =>
  Object.entries(selector).every(([k, v]) => Object.prototype.hasOwnProperty.call(labels, k) && labels[k] === v);

/** The backends of one port of a service, before the traffic policy; problems go to `problems`. */
function portBackends(svc: Service, port: ServicePort, pods: readonly PublishedEndpoint[], slices: readonly EndpointSlice[], problems: string[]): Backend[] {
  const ref = serviceKeyOf(svc);
  const out: Backend[] = [];
  if (svc.selector !== null && Object.keys(svc.selector).length > 0) {
    for (const ep of pods) {
      if (typeof port.targetPort === 'number') out.push({ address: ep.ip, port: port.targetPort, node: ep.node, endpoint: ep.name });
      else {
        const named = ep.ports.find((p) => p.name === port.targetPort && p.protocol === port.protocol);
        if (named) out.push({ address: ep.ip, port: named.port, node: ep.node, endpoint: ep.name });
      }
    }
    if (typeof port.targetPort === 'string' && pods.length > 0 && out.length === 0) {
      problems.push(`service ${ref} port ${port.name || port.port}: none of its ${pods.length} pod(s) declares a ${port.protocol} port named '${port.targetPort}': the port has no backend`);
    }
  } else {
    for (const sl of slices) {
      const sp = sl.ports.find((p) => p.name === port.name && p.protocol === port.protocol);
      if (!sp) continue;
      for (const e of sl.endpoints) {
        if (e.ready && e.addresses.length > 0) out.push({ address: e.addresses[0]!, port: sp.port, node: e.nodeName, endpoint: serviceKeyOf(sl) });
      }
    }
  }
  // One backend per address and port: the same pod in two slices, or published twice (by a node that still has it).
  out.sort(compareBackends);
  const unique: Backend[] = [];
  for (const b of out) {
    const last = unique[unique.length - 1];
    if (last && last.address === b.address && last.port === b.port) {
      if (last.endpoint !== b.endpoint || last.node !== b.node) {
        problems.push(`service ${ref} port ${port.name || port.port}: backend ${b.address}:${b.port} is both ${last.endpoint}${last.node ? ` on ${last.node}` : ''} and ${b.endpoint}${b.node ? ` on ${b.node}` : ''}: taken once`);
      }
      continue;
    }
    unique.push(b);
  }
  return unique;
}

export function computeFrontends(
  services: readonly Service[],
  endpoints: readonly PublishedEndpoint[],
  slices: readonly EndpointSlice[],
  opts: { node: string },
): { frontends: Frontend[]; problems: string[] } {
  const problems: string[] = [];
  const frontends: Frontend[] = [];
  const podsByNs = new Map<string, PublishedEndpoint[]>();
  for (const ep of endpoints) {
    const list = podsByNs.get(ep.namespace) ?? [];
    list.push(ep);
    podsByNs.set(ep.namespace, list);
  }
  const slicesBySvc = new Map<string, EndpointSlice[]>();
  for (const sl of [...slices].sort(byKey)) {
    const k = `${sl.namespace}/${sl.service}`;
    const list = slicesBySvc.get(k) ?? [];
    list.push(sl);
    slicesBySvc.set(k, list);
  }
  const seen = new Set<string>();
  for (const svc of [...services].sort(byKey)) {
    const ref = serviceKeyOf(svc);
    if (seen.has(ref)) {
      problems.push(`service ${ref} is given twice: the first is taken`);
      continue;
    }
    seen.add(ref);
    if (!svc.clusterIP) {
      problems.push(`service ${ref} has no clusterIP: left out`);
      continue;
    }
    const selector = svc.selector;
    const pods = selector !== null && Object.keys(selector).length > 0 ? (podsByNs.get(svc.namespace) ?? []).filter((ep) => selects(selector, ep.labels)) : [];
    const svcSlices = slicesBySvc.get(ref) ?? [];
    const local = (bs: Backend[]) => bs.filter((b) => b.node === opts.node);
    for (const port of svc.ports) {
      const all = portBackends(svc, port, pods, svcSlices, problems);
      const base = { service: ref, portName: port.name, protocol: port.protocol, affinityTimeoutSeconds: svc.sessionAffinity === 'ClientIP' ? svc.affinityTimeoutSeconds : 0 };
      const internalLocal = svc.internalTrafficPolicy === 'Local';
      const externalLocal = svc.externalTrafficPolicy === 'Local';
      frontends.push({ ...base, kind: 'ClusterIP', address: svc.clusterIP, port: port.port, localOnly: internalLocal, backends: internalLocal ? local(all) : [...all] });
      for (const ip of svc.externalIPs) {
        frontends.push({ ...base, kind: 'ExternalIP', address: ip, port: port.port, localOnly: externalLocal, backends: externalLocal ? local(all) : [...all] });
      }
      if (svc.type === 'NodePort' && port.nodePort > 0) {
        frontends.push({ ...base, kind: 'NodePort', address: '', port: port.nodePort, localOnly: externalLocal, backends: externalLocal ? local(all) : [...all] });
      }
    }
  }
  return { frontends, problems };
}
