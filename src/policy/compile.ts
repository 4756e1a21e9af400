/**
 * NetworkPolicies compiled into sl_policy entries for this node's endpoints. Pure.
 *
 * Per local endpoint and direction:
 *   - selected by no policy of that type: one entry (ep, any, dir) UNISOLATED;
 *   - isolated: one entry (ep, any, dir) DENY naming the first isolating policy, plus one
 *     ALLOW entry per (peer identity, protocol, port prefix) some rule allows.
 * Peers become identities: pod and namespace selectors are matched against every
 * identity's labels (pod labels + namespace) and the namespaces' labels; ipBlocks against
 * node-local CIDR identities (every cidr and except of every policy gets one, so the
 * longest match decides which applies). The CIDR identities go to sl_ipcache (addresses
 * that are nobody's) and to sl_policy_cidr, where the datapath looks up the address of a
 * peer that has an identity of its own (a pod, a node): ipBlocks match pods' addresses too,
 * so two pods of one identity can get different verdicts by address. Named ports resolve
 * against the destination pod's declared ports (ingress: the local endpoint's; egress: the
 * ports declared by the pods of each peer identity). A port range is a few LPM prefixes.
 */
import { createHash } from 'node:crypto';
import type { PodPort } from '../endpoint/ports.js';
import { FIRST_CIDR_IDENTITY, NAMESPACE_LABEL } from '../identity/identity.js';
import { policyKeyString, type PolicyKey, type PolicyValue } from '../maps/policy.js';
import { cidrContains, cidrLast, cidrWithin, formatCidr, parseCidr, parseIPv4, type Ipv4 } from '../util/ipv4.js';
import type { Labels } from '../util/labels.js';
import { matchesSelector } from './selector.js';
import { policyKey, type NetworkPolicy, type NetworkPolicyPeer, type NetworkPolicyPort, type Protocol } from './types.js';

export const DIR = { egress: 0, ingress: 1 } as const;
export const FLAGS = { deny: 0, allow: 1, unisolated: 2 } as const;
const PROTO: Record<Protocol, number> = { TCP: 6, UDP: 17, SCTP: 132 };
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

export interface LocalEndpoint {
  /** Endpoint id (the key of its entries). */
  id: number;
  namespace: string;
  labels: Labels;
  ports: PodPort[];
}

export interface CompileInput {
  policies: readonly NetworkPolicy[];
  /** Namespace labels as stored (the metadata.name label is added here). */
  namespaces: ReadonlyMap<string, Labels>;
  /** Every pod identity of the cluster and its labels (pod labels + NAMESPACE_LABEL). */
  identities: ReadonlyMap<number, Labels>;
  /** Declared ports of the pods of each identity (for named ports in egress rules). */
  identityPorts: ReadonlyMap<number, readonly PodPort[]>;
  /**
   * Declared ports of every pod of the cluster that declares any, by address: for a named
   * port in an egress rule whose peer is an ipBlock (the pods inside the block, by address).
   */
  podPorts?: ReadonlyMap<string, readonly PodPort[]>;
  endpoints: readonly LocalEndpoint[];
}

export interface Compiled {
  /** Entries keyed by the canonical string of the key (policyKeyString). */
  entries: Map<string, { key: PolicyKey; value: PolicyValue }>;
  /** CIDR identities to put in the ipcache: every cidr and except of every policy. */
  cidrIdentities: Map<string, number>;
  /**
   * sl_policy_cidr's entries: the CIDR identities, and a /32 identity for each pod whose
   * address a named port of an egress ipBlock rule resolves against (not in the ipcache:
   * the pod's own entry is there).
   */
  addressIdentities: Map<string, number>;
  /** Policy ids ("ns/name" -> id), for counters and explain. */
  policyIds: Map<string, number>;
}

/** A stable id per policy (31-bit hash of ns/name, never 0). */
export function policyId(ref: string): number {
  return (createHash('sha256').update(ref).digest().readUInt32BE(0) & 0x7fffffff) || 1;
}

/** The inclusive port range lo..hi as LPM prefixes of the 16-bit port: [value, prefix bits]. */
export function portPrefixes(lo: number, hi: number): [number, number][] {
  const out: [number, number][] = [];
  let start = lo;
  while (start <= hi) {
    let bits = 16;
    // Grow the block while it stays aligned and inside the range.
    while (bits > 0) {
      const size = 1 << (16 - (bits - 1));
      if (start % size !== 0 || start + size - 1 > hi) break;
      bits--;
    }
    out.push([start, bits]);
    start += 1 << (16 - bits);
  }
  return out;
}

function nsLabels(input: CompileInput, ns: string): Labels {
  return { ...(input.namespaces.get(ns) ?? {}), [NAMESPACE_NAME_LABEL]: ns };
}

function splitIdentity(labels: Labels): { ns: string; pod: Labels } {
  const { [NAMESPACE_LABEL]: ns, ...pod } = labels;
  return { ns: ns ?? '', pod };
}

/** Identities a peer selects (selectors only); ipBlock peers are handled apart. */
function selectorIdentities(input: CompileInput, policyNs: string, peer: NetworkPolicyPeer): number[] {
  const out: number[] = [];
  for (const [id, labels] of input.identities) {
    const { ns, pod } = splitIdentity(labels);
    const podOk = !peer.podSelector || matchesSelector(peer.podSelector, pod);
    const nsOk = peer.namespaceSelector ? matchesSelector(peer.namespaceSelector, nsLabels(input, ns)) : ns === policyNs;
    if (podOk && nsOk) out.push(id);
  }
  return out;
}

export function compilePolicies(input: CompileInput): Compiled {
  const entries = new Map<string, { key: PolicyKey; value: PolicyValue }>();
  const policyIds = new Map(input.policies.map((p) => [policyKey(p), policyId(policyKey(p))]));
  // Every CIDR of every ipBlock (and its excepts) gets a node-local identity.
  const cidrs = new Set<string>();
  for (const p of input.policies) {
    for (const r of [...p.spec.ingress.flatMap((x) => x.from ?? []), ...p.spec.egress.flatMap((x) => x.to ?? [])]) {
      if (r.ipBlock) for (const c of [r.ipBlock.cidr, ...(r.ipBlock.except ?? [])]) cidrs.add(formatCidr(parseCidr(c)));
    }
  }
  // Pods inside an ipBlock of an egress rule with a named port, which resolves per pod: each
  // gets a /32 identity of its own in sl_policy_cidr, with its declared ports.
  const podCidrs = new Map<string, readonly PodPort[]>();
  const pods = [...input.podPorts ?? []].map(([ip, ports]) => ({ ip, addr: parseIPv4(ip), ports }));
  for (const p of input.policies) {
    for (const r of p.spec.egress) {
      if (!r.ports?.some((x) => typeof x.port === 'string')) continue;
      for (const peer of r.to ?? []) {
        if (!peer.ipBlock) continue;
        const outer = parseCidr(peer.ipBlock.cidr);
        const excepts = (peer.ipBlock.except ?? []).map((e) => parseCidr(e));
        for (const { ip, addr, ports } of pods) {
          if (cidrContains(outer, addr) && !excepts.some((e) => cidrContains(e, addr))) podCidrs.set(`${ip}/32`, ports);
        }
      }
    }
  }
  const addressIdentities = new Map([...new Set([...cidrs, ...podCidrs.keys()])].sort().map((c, i) => [c, FIRST_CIDR_IDENTITY + i]));
  const cidrIdentities = new Map([...cidrs].map((c) => [c, addressIdentities.get(c)!]));
  const addressPorts = new Map([...podCidrs].map(([c, ports]) => [addressIdentities.get(c)!, ports]));
  // The CIDR identities inside an ipBlock: a binary search over them sorted by network
  // address, then a walk over the ones inside (10,000 /32 rules took minutes scanning all).
  const byBase = [...addressIdentities].map(([c, id]) => ({ cidr: parseCidr(c), id })).sort((a, b) => a.cidr.base - b.cidr.base);
  const firstAtOrAfter = (base: Ipv4) => {
    let lo = 0, hi = byBase.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (byBase[mid]!.cidr.base < base) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const blockIdentities = (cidr: string, except: readonly string[]) => {
    const outer = parseCidr(cidr);
    const excepts = except.map((e) => parseCidr(e));
    const last = cidrLast(outer);
    const ids: number[] = [];
    for (let i = firstAtOrAfter(outer.base); i < byBase.length && byBase[i]!.cidr.base <= last; i++) {
      const { cidr: c, id } = byBase[i]!;
      if (cidrWithin(c, outer) && !excepts.some((e) => cidrWithin(c, e))) ids.push(id);
    }
    return ids;
  };

  const put = (key: PolicyKey, value: PolicyValue, overwrite: boolean) => {
    const s = policyKeyString(key);
    if (!overwrite && entries.has(s)) return;
    entries.set(s, { key, value });
  };

  for (const ep of input.endpoints) {
    for (const dirName of ['ingress', 'egress'] as const) {
      const dir = DIR[dirName];
      const type = dirName === 'ingress' ? 'Ingress' : 'Egress';
      const selecting = input.policies.filter((p) => p.metadata.namespace === ep.namespace && p.spec.policyTypes.includes(type)
        && matchesSelector(p.spec.podSelector, ep.labels));
      const base: PolicyKey = { prefixlen: 72, endpoint: ep.id, identity: 0, dir, protocol: 0, dport: 0 };
      if (selecting.length === 0) {
        put(base, { policy: 0, flags: FLAGS.unisolated }, true);
        continue;
      }
      const ordered = [...selecting].sort((a, b) => policyKey(a).localeCompare(policyKey(b)));
      put(base, { policy: policyIds.get(policyKey(ordered[0]!))!, flags: FLAGS.deny }, false);
      for (const p of ordered) {
        const pid = policyIds.get(policyKey(p))!;
        const rules = dirName === 'ingress' ? p.spec.ingress.map((r) => ({ peers: r.from, ports: r.ports }))
          : p.spec.egress.map((r) => ({ peers: r.to, ports: r.ports }));
        for (const rule of rules) {
          // Peer identities; undefined: any peer.
          let ids: number[] | undefined;
          if (rule.peers && rule.peers.length > 0) {
            const set = new Set<number>();
            for (const peer of rule.peers) {
              const found = peer.ipBlock ? blockIdentities(peer.ipBlock.cidr, peer.ipBlock.except ?? []) : selectorIdentities(input, p.metadata.namespace, peer);
              for (const id of found) set.add(id);
            }
            ids = [...set].sort((a, b) => a - b);
          }
          const allow = (identity: number, port?: NetworkPolicyPort, resolved?: number) => {
            const k: PolicyKey = { ...base, identity };
            if (!port) return put(k, { policy: pid, flags: FLAGS.allow }, true);
            const proto = PROTO[port.protocol];
            if (port.port === undefined) return put({ ...k, protocol: proto, prefixlen: 80 }, { policy: pid, flags: FLAGS.allow }, true);
            const lo = resolved ?? (port.port as number);
            const hi = resolved === undefined && port.endPort !== undefined ? port.endPort : lo;
            for (const [value, bits] of portPrefixes(lo, hi)) {
              put({ ...k, protocol: proto, dport: value, prefixlen: 80 + bits }, { policy: pid, flags: FLAGS.allow }, true);
            }
          };
          const peersOrAny = ids ?? [0];
          if (!rule.ports || rule.ports.length === 0) {
            for (const id of peersOrAny) allow(id);
            continue;
          }
          for (const port of rule.ports) {
            if (typeof port.port !== 'string') {
              for (const id of peersOrAny) allow(id, port);
              continue;
            }
            // A named port: the destination pod's declared port of that name and protocol.
            const named = (ports: readonly PodPort[]) => ports.filter((x) => x.name === port.port && x.protocol === port.protocol).map((x) => x.port);
            if (dirName === 'ingress') {
              for (const n of named(ep.ports)) for (const id of peersOrAny) allow(id, port, n);
            } else {
              const peerIds = ids ?? [...input.identityPorts.keys()];
              for (const id of peerIds) for (const n of named(input.identityPorts.get(id) ?? addressPorts.get(id) ?? [])) allow(id, port, n);
            }
          }
        }
      }
    }
  }
  return { entries, cidrIdentities, addressIdentities, policyIds };
}
