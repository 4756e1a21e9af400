/**
 * Everything one pass of the policy feature compiles from, as read (store values still
 * JSON text), its fingerprint, and what the pass derives from it: the compile input and
 * the feature's ipcache entries. Pure.
 *
 * The fingerprint covers every input of compilePolicies and of the ipcache contribution:
 * policies, namespace labels, identities (their labels), every node's published endpoints
 * (addresses, identities and ports), this node's endpoints and this node's addresses.
 * Collections are sets: their order does not change it.
 */
import type { IpcacheEntry } from '../maps/ipcache.js';
import type { PodPort } from '../endpoint/ports.js';
import { IDENTITY } from '../identity/identity.js';
import type { CompileInput } from '../policy/compile.js';
import { parsePublishedEndpoint, type PublishedEndpoint } from '../policy/store.js';
import { parseRecords } from '../store/record.js';
import type { NetworkPolicy } from '../policy/types.js';
import type { Labels } from '../util/labels.js';
import { fingerprint } from './fingerprint.js';

/** A ready endpoint of this node that has its identity. */
export interface LocalEndpointInput {
  id: number;
  namespace: string;
  identity: number;
  labels: Labels;
  ports: readonly PodPort[];
}

export interface PolicyInputs {
  /** Stored policies: store key → stored value (the normalised policy as JSON). */
  policies: ReadonlyMap<string, string>;
  /** Namespace name → stored value (`{labels}` as JSON). */
  namespaces: ReadonlyMap<string, string>;
  /** Every node's published endpoints: store key → stored value (PublishedEndpoint as JSON). */
  endpoints: ReadonlyMap<string, string>;
  /**
   * Every identity and its labels; not when it was last used (that changes every minute and
   * nothing compiled depends on it).
   */
  identities: ReadonlyMap<number, Labels>;
  /** This node's ready endpoints with an identity, by endpoint id. */
  local: ReadonlyMap<number, LocalEndpointInput>;
  /** This node's own IPv4 addresses (the host identity in the ipcache). */
  addresses: ReadonlySet<string>;
}

/** Bumped when what the inputs compile to changes meaning (the agent restarts then anyway). */
const FORMAT = 1;

export function policyInputsFingerprint(i: PolicyInputs): string {
  return fingerprint({
    format: FORMAT, policies: i.policies, namespaces: i.namespaces, endpoints: i.endpoints,
    identities: i.identities, local: i.local, addresses: i.addresses,
  });
}

const byKey = <V>(m: ReadonlyMap<string, V>): [string, V][] => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/**
 * The published endpoints parsed once per map of stored values: a pass asks for them three
 * times (compile input, ipcache, problems) from the same inputs, which are never mutated.
 */
const parsed = new WeakMap<ReadonlyMap<string, string>, { records: PublishedEndpoint[]; problems: string[] }>();

function parsedEndpoints(i: Pick<PolicyInputs, 'endpoints'>): { records: PublishedEndpoint[]; problems: string[] } {
  let p = parsed.get(i.endpoints);
  if (!p) {
    p = parseRecords(byKey(i.endpoints).map(([key, value]) => ({ key, value })), parsePublishedEndpoint);
    parsed.set(i.endpoints, p);
  }
  return p;
}

/** Every node's published endpoints that pass their checks, in key order. */
export function publishedEndpoints(i: Pick<PolicyInputs, 'endpoints'>): PublishedEndpoint[] {
  return parsedEndpoints(i).records;
}

/** What is wrong with the published endpoints left out of publishedEndpoints (one line each). */
export function endpointRecordProblems(i: Pick<PolicyInputs, 'endpoints'>): string[] {
  return parsedEndpoints(i).problems;
}

/** The compile input these inputs stand for (in key order, whatever the order they were read in). */
export function compileInputOf(i: PolicyInputs): CompileInput {
  const identityPorts = new Map<number, PodPort[]>();
  const podPorts = new Map<string, PodPort[]>();
  for (const e of publishedEndpoints(i)) {
    identityPorts.set(e.identity, [...(identityPorts.get(e.identity) ?? []), ...e.ports]);
    if (e.ports.length) podPorts.set(e.ip, [...e.ports]);
  }
  return {
    podPorts,
    policies: byKey(i.policies).map(([, v]) => JSON.parse(v) as NetworkPolicy),
    namespaces: new Map(byKey(i.namespaces).map(([name, v]) => [name, (JSON.parse(v) as { labels: Labels }).labels])),
    identities: i.identities,
    identityPorts,
    endpoints: [...i.local.values()].sort((a, b) => a.id - b.id)
      .map((e) => ({ id: e.id, namespace: e.namespace, labels: e.labels, ports: [...e.ports] })),
  };
}

const NONE = 0;

/**
 * The policy feature's ipcache entries: the CIDR identities of ipBlocks, every other node's
 * pods (/32 with their identity) and this node's own addresses as the host. A pod's or the
 * node's /32 wins over an ipBlock's /32 of the same address: an address has the identity of
 * what owns it, and the policy stage finds its CIDR identity in sl_policy_cidr.
 */
export function policyIpcache(nodeName: string, i: PolicyInputs, cidrIdentities: ReadonlyMap<string, number>): Map<string, IpcacheEntry> {
  const out = new Map<string, IpcacheEntry>();
  for (const [cidr, id] of cidrIdentities) out.set(cidr, { identity: id, tunnel_endpoint: '0.0.0.0', flags: NONE });
  for (const e of publishedEndpoints(i)) if (e.node !== nodeName) out.set(`${e.ip}/32`, { identity: e.identity, tunnel_endpoint: '0.0.0.0', flags: NONE });
  for (const a of [...i.addresses].sort()) out.set(`${a}/32`, { identity: IDENTITY.host, tunnel_endpoint: '0.0.0.0', flags: NONE });
  return out;
}
