/**
 * `lab status`: the lab as it is now: what the state recorded, completed by each node's
 * agent (its pod block, its endpoints) when it answers.
 */
import { existsSync } from 'node:fs';
import { AgentClient } from '../api/client.js';
import type { AgentStatus, EndpointListResponse } from '../api/types.js';
import type { Labels } from '../util/labels.js';
import type { PodPort } from '../endpoint/ports.js';
import { netnsPathOf } from './plan.js';
import { matches } from './procs.js';
import { labRoot, listLabs, readState, type LabState } from './state.js';

export interface NodeStatus {
  name: string;
  /** Path of the node's network namespace (for `nsenter --net=`). */
  netns: string;
  /** The node's config file: `sluice --config FILE …` (inside the netns) acts on this node. */
  config: string;
  underlayIP: string;
  podCIDR: string | null;
  subnet: string;
  pinRoot: string;
  socket: string;
  log: string;
  agent: { pid: number | null; running: boolean; ready: boolean; reason?: string };
}

export interface PodStatus {
  /** NS/NAME */
  name: string;
  namespace: string;
  pod: string;
  node: string;
  netns: string;
  ip: string | null;
  labels: Labels;
  ports: PodPort[];
  containerId: string;
  mac: string | null;
}

/** A host outside the cluster (no route to any pod block). */
export interface ExternalStatus {
  name: string;
  netns: string;
  ip: string;
  subnet: string;
}

export interface LabStatus {
  name: string;
  phase: LabState['phase'];
  error?: string;
  dir: string;
  created: string;
  mode: string;
  store: string;
  storeSpec: string;
  underlay: {
    netns: string;
    subnets: { name: string; cidr: string; bridge: string; router: string | null }[];
    router: { netns: string } | null;
    /** `tls`: the lab's own client certificate for etcd (etcdctl --cacert/--cert/--key). */
    etcd: { address: string; port: number; pid: number | null; running: boolean; log: string; tls: { ca: string; cert: string; key: string } } | null;
  };
  namespaces: { name: string; labels: Labels }[];
  nodes: NodeStatus[];
  pods: PodStatus[];
  external: ExternalStatus[];
}

export class NoLabError extends Error {
  constructor(lab: string, root: string) {
    const others = listLabs(root);
    super(`no lab named ${lab}${others.length ? ` (labs: ${others.join(', ')}; pick one with --name)` : ''}`);
    this.name = 'NoLabError';
  }
}

export function loadLab(lab: string, root = labRoot()): LabState {
  const s = readState(root, lab);
  if (!s) throw new NoLabError(lab, root);
  return s;
}

interface AgentView {
  ready: boolean;
  reason?: string;
  podCIDR?: string;
  endpoints: Map<string, { ip: string; mac: string }>;
}

async function askAgent(socket: string): Promise<AgentView | undefined> {
  if (!existsSync(socket)) return undefined;
  const c = new AgentClient(socket, { timeoutMs: 3000 });
  try {
    const s = (await c.get('/v1/status')) as AgentStatus;
    const eps = ((await c.get('/v1/endpoints')) as EndpointListResponse).endpoints;
    return { ...s, endpoints: new Map(eps.map((e) => [e.name, { ip: e.ip, mac: e.mac }])) };
  } catch {
    return undefined;
  }
}

export async function labStatus(lab: string, root = labRoot()): Promise<LabStatus> {
  const s = loadLab(lab, root);
  const p = s.plan;
  const views = new Map(await Promise.all(p.nodes.map(async (n) => [n.name, await askAgent(n.socket)] as const)));
  const proc = (role: string, node?: string) => s.processes.find((r) => r.role === role && r.node === node);
  const nodes: NodeStatus[] = p.nodes.map((n) => {
    const rec = proc('agent', n.name);
    const v = views.get(n.name);
    const running = rec?.pid !== undefined && matches(rec.pid, rec);
    return {
      name: n.name, netns: n.netnsPath, config: n.config, underlayIP: n.underlayIP,
      podCIDR: v?.podCIDR ?? s.podCIDRs[n.name] ?? null, subnet: n.subnet, pinRoot: n.pinRoot, socket: n.socket, log: n.log,
      agent: { pid: rec?.pid ?? null, running, ready: v?.ready ?? false, ...(v?.reason ? { reason: v.reason } : !v && running ? { reason: 'not answering' } : {}) },
    };
  });
  const pods: PodStatus[] = p.pods.map((x) => {
    const rec = s.pods.find((r) => r.ref === x.ref);
    const live = views.get(x.node)?.endpoints.get(x.ref);
    return {
      name: x.ref, namespace: x.namespace, pod: x.name, node: x.node, netns: x.netnsPath,
      ip: live?.ip ?? rec?.ip ?? null, labels: x.labels, ports: x.ports, containerId: x.containerId, mac: live?.mac ?? rec?.mac ?? null,
    };
  }).filter((x) => s.phase === 'up' || s.pods.some((r) => r.ref === x.name));
  const etcdRec = proc('etcd');
  return {
    name: s.name, phase: s.phase, ...(s.error ? { error: s.error } : {}), dir: s.dir, created: s.created,
    mode: p.mode, store: p.store, storeSpec: p.storeSpec,
    underlay: {
      netns: netnsPathOf(p.underlayNetns),
      subnets: p.subnets.map((x) => ({ name: x.name, cidr: x.cidr, bridge: x.bridge, router: x.router ?? null })),
      router: p.routerNetns ? { netns: netnsPathOf(p.routerNetns) } : null,
      etcd: p.etcd ? {
        address: p.etcd.address, port: p.etcd.clientPort, pid: etcdRec?.pid ?? null,
        running: etcdRec?.pid !== undefined && matches(etcdRec.pid, etcdRec), log: p.etcd.log,
        tls: { ca: p.etcd.pki.ca, cert: p.etcd.pki.labCert, key: p.etcd.pki.labKey },
      } : null,
    },
    namespaces: p.topology.namespaces,
    nodes,
    pods,
    external: p.external.map((x) => ({ name: x.name, netns: x.netnsPath, ip: x.ip, subnet: x.subnet })),
  };
}

/** A pod by NS/NAME, or by NAME when only one namespace has it. */
export function findPod<T extends { name: string; pod: string }>(pods: readonly T[], ref: string): T {
  if (ref.includes('/')) {
    const p = pods.find((x) => x.name === ref);
    if (!p) throw new Error(`no pod ${ref} in the lab (pods: ${pods.map((x) => x.name).join(', ') || 'none'})`);
    return p;
  }
  const found = pods.filter((x) => x.pod === ref);
  if (found.length === 1) return found[0]!;
  if (found.length > 1) throw new Error(`pod name ${ref} is ambiguous: ${found.map((x) => x.name).join(', ')} (write NS/NAME)`);
  throw new Error(`no pod ${ref} in the lab (pods: ${pods.map((x) => x.name).join(', ') || 'none'})`);
}
