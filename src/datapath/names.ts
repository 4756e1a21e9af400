/**
 * Names for the numbers the datapath's maps hold, for listings: identities → labels
 * (reserved names, "cidr:<prefix>" for CIDR identities found in sl_ipcache), policy ids →
 * "namespace/name", endpoint ids → "namespace/name". Read once from the store, the node's
 * endpoint records and the ipcache; anything unknown keeps its number.
 */
import type { Config } from '../config/config.js';
import { NodeState } from '../endpoint/state.js';
import { FIRST_CIDR_IDENTITY, IdentityAllocator, RESERVED_NAMES } from '../identity/identity.js';
import { policyRefsById } from '../policy/store.js';
import type { Store } from '../store/types.js';
import { formatLabels } from '../util/labels.js';
import { readIpcache } from './ipcache.js';

export class MapNames {
  private constructor(
    private readonly identities: Map<number, string>,
    private readonly policies: Map<number, string>,
    private readonly endpoints: Map<number, string>,
  ) {}

  static async load(cfg: Config, store: Store): Promise<MapNames> {
    const identities = new Map([...await new IdentityAllocator(store).list()].map(([id, l]) => [id, formatLabels(l)]));
    for (const [cidr, e] of readIpcache(cfg)) if (e.identity >= FIRST_CIDR_IDENTITY) identities.set(e.identity, `cidr:${cidr}`);
    const policies = await policyRefsById(store);
    const endpoints = new Map(new NodeState(cfg).endpoints().map((e) => [e.id, e.name]));
    return new MapNames(identities, policies, endpoints);
  }

  identity(id: number): string {
    if (id === 0) return 'any';
    return RESERVED_NAMES[id] ?? this.identities.get(id) ?? `identity ${id}`;
  }

  policy(id: number): string {
    return id === 0 ? '-' : this.policies.get(id) ?? `id ${id}`;
  }

  endpoint(id: number): string {
    return this.endpoints.get(id) ?? `endpoint ${id}`;
  }
}
