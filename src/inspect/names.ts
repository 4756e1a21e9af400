/**
 * The one namer of the numbers the datapath's maps and events hold, for `sluice bpf …`
 * listings and `sluice monitor` events alike: identities → labels (reserved names,
 * "cidr:<prefix>" for CIDR identities), policy ids → "namespace/name", endpoint ids →
 * "namespace/name". What it looks names up in is a NameSource: a snapshot read once
 * (Names.load, for listings) or tables refreshed on a miss (events.ts). A number nobody
 * knows keeps its number: "identity 300", "id 7", "endpoint 4".
 */
import type { Config } from '../config/config.js';
import { NodeState } from '../endpoint/state.js';
import { FIRST_CIDR_IDENTITY, IdentityAllocator, RESERVED_NAMES } from '../identity/identity.js';
import { POLICY_CIDR_MAP, readPolicyCidrs } from '../maps/policy-cidr.js';
import { readIpcache } from '../maps/ipcache.js';
import { policyRefsById } from '../policy/store.js';
import type { Store } from '../store/types.js';
import { formatLabels, type Labels } from '../util/labels.js';

/** What names numbers in listings (Names, or a stand-in in tests). */
export interface Namer {
  identity(id: number): string;
  policy(id: number): string;
  endpoint(id: number): string;
}

/** Where names are looked up; each lookup is undefined for what it does not know. */
export interface NameSource {
  /** The labels of an identity allocated in the store (a pod identity). */
  identityLabels(id: number): Labels | undefined;
  /** The prefix a (node-local) CIDR identity stands for. */
  cidr(id: number): string | undefined;
  /** "namespace/name" of a policy id. */
  policy(id: number): string | undefined;
  /** "namespace/name" of a local endpoint id. */
  endpoint(id: number): string | undefined;
}

/** Whether identity `id`'s name is the labels it was allocated with in the store (not 0, reserved or a CIDR's). */
export function allocatedIdentity(id: number): boolean {
  return id !== 0 && RESERVED_NAMES[id] === undefined && id < FIRST_CIDR_IDENTITY;
}

export class Names implements Namer {
  constructor(private readonly source: NameSource) {}

  /**
   * Names for identities, policies and endpoints read once: the store's identities and
   * policies, the CIDR identities in this node's sl_policy_cidr (a superset of sl_ipcache's:
   * it also has the pods' /32s that named ports resolve against), the node's endpoint records.
   */
  static async load(cfg: Config, store: Store): Promise<Names> {
    const identities = await new IdentityAllocator(store).list();
    const cidrs = new Map<number, string>();
    // A datapath from before sl_policy_cidr has its CIDR identities in sl_ipcache only.
    if (POLICY_CIDR_MAP.pinned(cfg)) for (const [cidr, id] of readPolicyCidrs(cfg)) cidrs.set(id, cidr);
    else for (const [cidr, e] of readIpcache(cfg)) if (e.identity >= FIRST_CIDR_IDENTITY) cidrs.set(e.identity, cidr);
    const policies = await policyRefsById(store);
    const endpoints = new Map(new NodeState(cfg).endpoints().map((e) => [e.id, e.name]));
    return new Names({
      identityLabels: (id) => identities.get(id),
      cidr: (id) => cidrs.get(id),
      policy: (id) => policies.get(id),
      endpoint: (id) => endpoints.get(id),
    });
  }

  /** An identity's labels (k=v,…), reserved name or "cidr:<prefix>"; undefined for 0 and for what nobody knows. */
  labels(id: number): string | undefined {
    if (id === 0) return undefined;
    const reserved = RESERVED_NAMES[id];
    if (reserved !== undefined) return reserved;
    if (id >= FIRST_CIDR_IDENTITY) {
      const cidr = this.source.cidr(id);
      return cidr === undefined ? undefined : `cidr:${cidr}`;
    }
    const labels = this.source.identityLabels(id);
    return labels ? formatLabels(labels) : undefined;
  }

  identity(id: number): string {
    return id === 0 ? 'any' : this.labels(id) ?? `identity ${id}`;
  }

  policy(id: number): string {
    return id === 0 ? '-' : this.source.policy(id) ?? `id ${id}`;
  }

  endpoint(id: number): string {
    return this.source.endpoint(id) ?? `endpoint ${id}`;
  }
}
