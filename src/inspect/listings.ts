/**
 * The datapath's maps decoded for people, one row per entry, for `sluice bpf …` (tables and
 * JSON): sl_endpoints as pods with their devices and identities, sl_ipcache as prefixes and
 * how they are reached, sl_prefilter as denied CIDRs with what each dropped, sl_policy as
 * (endpoint, direction, peer, protocol, ports, verdict, policy), sl_ct_v2 as flows with their
 * state, time left and deciding policy, sl_nat as masqueraded flows (pod, node address,
 * remote, each direction's packets, whether the pair is whole). Numbers are named through a Namer (names.ts).
 */
import type { Config } from '../config/config.js';
import { readCt } from '../maps/ct.js';
import { readEndpoints, type EndpointValue } from '../maps/endpoints.js';
import { IPCACHE_FLAGS, readIpcache, type IpcacheEntry } from '../maps/ipcache.js';
import { NAT_FLAGS, readNat, type NatPair } from '../maps/nat.js';
import { NODES_FLAGS, readNodes } from '../maps/nodes.js';
import { readPolicy, type PolicyKey, type PolicyValue } from '../maps/policy.js';
import { readPrefilterRules } from '../maps/prefilter.js';
import { readPrefilterCounters } from '../maps/prefilter-counters.js';
import { readAffinity, readFrontends, SVC_FLAGS, type FrontendRead } from '../maps/services.js';
import type { Namer } from './names.js';

const PROTOCOL: Record<number, string> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 132: 'SCTP' };
const VERDICT: Record<number, string> = { 0: 'deny', 1: 'allow', 2: 'unisolated' };
const CT_STATE: Record<number, string> = { 0: 'new', 1: 'established', 2: 'closing' };

const byAddress = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

export type EndpointRow = { ip: string; pod: string } & EndpointValue & {
  /** The host-side device of the ifindex; null when it is gone. */
  device: string | null;
  /** The identity's name; null while the endpoint has identity 0. */
  labels: string | null;
};

/** sl_endpoints; `devices` names ifindexes. */
export function endpointRows(cfg: Pick<Config, 'pinRoot'>, names: Namer, devices: ReadonlyMap<number, string>): EndpointRow[] {
  return [...readEndpoints(cfg)].map(([ip, v]) => ({
    ip, pod: names.endpoint(v.id), ...v, device: devices.get(v.ifindex) ?? null, labels: v.identity === 0 ? null : names.identity(v.identity),
  }));
}

export type IpcacheRow = { prefix: string } & IpcacheEntry & {
  labels: string;
  /** "tunnel", "direct" or "-". */
  path: string;
};

export function ipcacheRows(cfg: Pick<Config, 'pinRoot'>, names: Namer): IpcacheRow[] {
  const flagWords = (f: number) => [f & IPCACHE_FLAGS.tunnel ? 'tunnel' : '', f & IPCACHE_FLAGS.direct ? 'direct' : ''].filter(Boolean).join(',') || '-';
  return [...readIpcache(cfg)].map(([prefix, v]) => ({ prefix, ...v, labels: names.identity(v.identity), path: flagWords(v.flags) }))
    .sort((a, b) => byAddress(a.prefix, b.prefix));
}

export interface NodesMapRow {
  /** The node's underlay address: VXLAN from it is taken. */
  address: string;
  /** The node whose record names the address ('' when no record does any more). */
  node: string;
  /** The pod block whose addresses it may carry inside VXLAN ('' when none: only its own address). */
  podBlock: string;
  /** The MAC a packet routed directly from its pods must come from ('' when not checked). */
  mac: string;
}

const maskBits = (mask: string) => mask.split('.').reduce((a, o) => a + [...Number(o).toString(2)].filter((b) => b === '1').length, 0);

/** sl_nodes, with the nodes named from their records (`names`: underlay address → node name). */
export function nodesRows(cfg: Pick<Config, 'pinRoot'>, names: ReadonlyMap<string, string>): NodesMapRow[] {
  return [...readNodes(cfg)].map(([address, v]) => ({
    address, node: names.get(address) ?? '', podBlock: v.flags & NODES_FLAGS.block ? `${v.pod_block}/${maskBits(v.pod_mask)}` : '',
    mac: v.flags & NODES_FLAGS.mac ? v.mac : '',
  }))
    .sort((a, b) => byAddress(a.address, b.address));
}

export interface PrefilterMapRow {
  cidr: string;
  rule: number;
  packets: number;
  bytes: number;
}

export function prefilterRows(cfg: Pick<Config, 'pinRoot'>): PrefilterMapRow[] {
  const counters = readPrefilterCounters(cfg);
  return [...readPrefilterRules(cfg)].map(([cidr, r]) => ({ cidr, rule: r.id, packets: counters.get(r.id)?.packets ?? 0, bytes: counters.get(r.id)?.bytes ?? 0 }))
    .sort((a, b) => byAddress(a.cidr, b.cidr));
}

export interface PolicyRow {
  endpoint: string;
  endpointId: number;
  direction: 'egress' | 'ingress';
  peer: string;
  identity: number;
  protocol: string;
  /** "any", "80" or "8000-8191" */
  ports: string;
  verdict: string;
  policy: string;
}

/** Key bits: endpoint 32 + identity 32 + dir 8 (= 72), protocol 8 (= 80), dport 16 (= 96). */
export function policyRow(k: PolicyKey, v: PolicyValue, names: Namer): PolicyRow {
  const protoKnown = k.prefixlen >= 80;
  const portBits = Math.max(0, k.prefixlen - 80);
  const ports = !protoKnown || portBits === 0 ? 'any' : portBits === 16 ? String(k.dport) : `${k.dport}-${k.dport + 2 ** (16 - portBits) - 1}`;
  return {
    endpoint: names.endpoint(k.endpoint), endpointId: k.endpoint,
    direction: k.dir === 1 ? 'ingress' : 'egress',
    peer: names.identity(k.identity), identity: k.identity,
    protocol: protoKnown ? PROTOCOL[k.protocol] ?? String(k.protocol) : 'any',
    ports, verdict: VERDICT[v.flags] ?? String(v.flags), policy: names.policy(v.policy),
  };
}

export function readPolicyRows(cfg: Pick<Config, 'pinRoot'>, names: Namer): PolicyRow[] {
  return [...readPolicy(cfg).values()].map(({ key, value }) => policyRow(key, value, names)).sort((a, b) =>
    a.endpointId - b.endpointId || a.direction.localeCompare(b.direction) || a.identity - b.identity || a.protocol.localeCompare(b.protocol) || a.ports.localeCompare(b.ports, 'en', { numeric: true }));
}

export interface CtRow {
  protocol: string;
  src: string;
  dst: string;
  state: string;
  /** Seconds until the entry expires; negative: dead, waiting for the agent's GC. */
  expiresIn: number;
  packets: number;
  bytes: number;
  policy: string;
}

export function readCtRows(cfg: Pick<Config, 'pinRoot'>, names: Namer, now = process.hrtime.bigint()): CtRow[] {
  const withPorts = (p: number) => p === 6 || p === 17 || p === 132;
  return readCt(cfg).map(([k, v]) => ({
    protocol: PROTOCOL[k.protocol] ?? String(k.protocol),
    src: withPorts(k.protocol) ? `${k.saddr}:${k.sport}` : k.saddr,
    dst: withPorts(k.protocol) ? `${k.daddr}:${k.dport}` : k.daddr,
    state: CT_STATE[v.state] ?? String(v.state),
    expiresIn: Math.round(Number(v.expires - now) / 1e8) / 10,
    packets: Number(v.packets), bytes: Number(v.bytes), policy: names.policy(v.policy),
  })).sort((a, b) => byAddress(a.src, b.src) || byAddress(a.dst, b.dst));
}

export interface NatRow {
  /** "masquerade" (the source becomes the node's) or "service" (the destination, a frontend, becomes a backend). */
  kind: 'masquerade' | 'service';
  protocol: string;
  /** The pod's side: address:port (ICMP echo: address:identifier). */
  pod: string;
  /** What it is translated to: masquerade, the node's address and port it leaves with; a service, the backend. */
  node: string;
  remote: string;
  state: string;
  /** Seconds until the pair is dead (the later of its entries); negative: waiting for collection. */
  expiresIn: number;
  packetsOut: number;
  packetsIn: number;
  /** "both" for a whole pair, else the entry that is there ("forward", "reverse"): a half pair the next packet heals or the collection removes. */
  entries: string;
}

/** One row per translated flow (pure). */
export function natRows(pairs: readonly NatPair[], now: bigint): NatRow[] {
  return pairs.map((p) => {
    const k = p.key;
    const withPort = (a: string, port: number) => `${a}:${port}`;
    const expires = [p.forward?.expires, p.reverse?.expires].filter((e): e is bigint => e !== undefined).reduce((a, b) => (a > b ? a : b), 0n);
    const state = p.reverse?.state ?? p.forward?.state ?? 0;
    const svc = ((p.forward?.flags ?? 0) | (p.reverse?.flags ?? 0)) & NAT_FLAGS.svc;
    return {
      kind: svc ? 'service' as const : 'masquerade' as const,
      protocol: PROTOCOL[k.protocol] ?? String(k.protocol),
      pod: withPort(k.saddr, k.sport),
      node: svc ? withPort(p.reverseKey.saddr, p.reverseKey.sport) : withPort(p.reverseKey.daddr, p.reverseKey.dport),
      remote: k.protocol === 1 ? k.daddr : withPort(k.daddr, k.dport),
      state: (p.reverse?.flags ?? 0) & NAT_FLAGS.reset ? 'reset' : CT_STATE[state] ?? String(state),
      expiresIn: Math.round(Number(expires - now) / 1e8) / 10,
      packetsOut: Number(p.forward?.packets ?? 0n),
      packetsIn: Number(p.reverse?.packets ?? 0n),
      entries: p.forward && p.reverse ? 'both' : p.forward ? 'forward' : 'reverse',
    };
  }).sort((a, b) => byAddress(a.pod, b.pod) || byAddress(a.remote, b.remote));
}

/** sl_nat. */
export function readNatRows(cfg: Pick<Config, 'pinRoot'>, now = process.hrtime.bigint()): NatRow[] {
  return natRows(readNat(cfg), now);
}

export interface ServiceRow {
  /** address:port of the frontend. */
  frontend: string;
  protocol: string;
  /** "ClusterIP", "ExternalIP" or "NodePort", with "(Local)" under traffic policy Local. */
  kind: string;
  /** namespace/name and port name of the service it belongs to ("" when no stored service has that frontend id). */
  service: string;
  /** address:port of each backend; none: the frontend refuses (ICMP port unreachable). */
  backends: string[];
  /** sessionAffinity ClientIP seconds (0: none). */
  affinity: number;
  /** Clients with a live affinity entry. */
  clients: number;
  /** The backend set's revision (0: none). */
  rev: number;
  id: number;
}

/** sl_svc with sl_svc_be (pure): one row per frontend, named by `names` (frontend id → "namespace/name port"). */
export function serviceRows(frontends: readonly FrontendRead[], names: ReadonlyMap<number, string>, clients: ReadonlyMap<string, number> = new Map()): ServiceRow[] {
  return frontends.map((f) => {
    const kind = f.flags & SVC_FLAGS.nodePort ? 'NodePort' : f.flags & SVC_FLAGS.external ? 'ExternalIP' : 'ClusterIP';
    const frontend = `${f.key.addr}:${f.key.port}`;
    return {
      frontend, protocol: PROTOCOL[f.key.protocol] ?? String(f.key.protocol),
      kind: f.flags & SVC_FLAGS.local ? `${kind} (Local)` : kind,
      service: names.get(f.id) ?? '',
      backends: f.backends.map((b) => `${b.addr}:${b.port}`),
      affinity: f.affinity, clients: clients.get(`${frontend}/${f.key.protocol}`) ?? 0, rev: f.rev, id: f.id,
    };
  }).sort((a, b) => byAddress(a.frontend, b.frontend) || a.protocol.localeCompare(b.protocol));
}

/** sl_svc, sl_svc_be and sl_svc_aff. */
export function readServiceRows(cfg: Pick<Config, 'pinRoot'>, names: ReadonlyMap<number, string>, now = process.hrtime.bigint()): ServiceRow[] {
  const clients = new Map<string, number>();
  for (const [k, v] of readAffinity(cfg)) {
    if (v.expires <= now) continue;
    const key = `${k.addr}:${k.port}/${k.protocol}`;
    clients.set(key, (clients.get(key) ?? 0) + 1);
  }
  return serviceRows(readFrontends(cfg), names, clients);
}
