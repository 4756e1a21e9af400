/**
 * NetworkPolicies and namespace labels as cluster state in the store, so a command given to
 * any node reaches every node (each agent watches these prefixes), and the endpoints each
 * agent publishes. Their keys are in store/keys.ts.
 *
 * `applyPolicies` writes every policy of one input in a single transaction: all or nothing.
 */
import { namespaceKey, namespaceOfKey, namespacePoliciesPrefix, NAMESPACES, POLICIES, policyStoreKey } from '../store/keys.js';
import type { Store } from '../store/types.js';
import { StoreError } from '../store/types.js';
import { policyId } from './compile.js';
import { policyKey, type NetworkPolicy } from './types.js';
import type { Labels } from '../util/labels.js';
import type { PodPort } from '../endpoint/ports.js';

/** A pod as its node's agent publishes it (store/keys.ts endpointKey). */
export interface PublishedEndpoint {
  node: string;
  id: number;
  name: string;
  namespace: string;
  ip: string;
  identity: number;
  labels: Labels;
  ports: PodPort[];
}
const keyOf = (p: Pick<NetworkPolicy, 'metadata'>) => policyStoreKey(policyKey(p));

export interface ApplyResult {
  created: string[];
  configured: string[];
  unchanged: string[];
}

/** Stores `policies` (already validated) in one transaction; reports what each one did. */
export async function applyPolicies(store: Store, policies: readonly NetworkPolicy[]): Promise<ApplyResult> {
  for (let attempt = 0; attempt < 16; attempt++) {
    const current = await Promise.all(policies.map((p) => store.get(keyOf(p))));
    const r: ApplyResult = { created: [], configured: [], unchanged: [] };
    const ops: { op: 'put'; key: string; value: string }[] = [];
    policies.forEach((p, i) => {
      const value = JSON.stringify(p);
      const cur = current[i];
      if (cur?.value === value) r.unchanged.push(policyKey(p));
      else {
        (cur ? r.configured : r.created).push(policyKey(p));
        ops.push({ op: 'put', key: keyOf(p), value });
      }
    });
    if (ops.length === 0) return r;
    const t = await store.txn(policies.map((p, i) => ({ key: keyOf(p), modRevision: current[i]?.modRevision ?? 0 })), ops);
    if (t.succeeded) return r;
  }
  throw new StoreError('applying the policies kept racing with other writers: try again');
}

export async function listPolicies(store: Store, namespace?: string): Promise<NetworkPolicy[]> {
  return (await store.list(namespace ? namespacePoliciesPrefix(namespace) : POLICIES)).map((kv) => JSON.parse(kv.value) as NetworkPolicy);
}

/** "namespace/name" of every stored policy by its datapath id (policyId), for naming map entries and events. */
export async function policyRefsById(store: Store): Promise<Map<number, string>> {
  return new Map((await listPolicies(store)).map((p) => [policyId(policyKey(p)), policyKey(p)] as const));
}

export async function getPolicy(store: Store, ref: string): Promise<NetworkPolicy | undefined> {
  const kv = await store.get(policyStoreKey(ref));
  return kv ? (JSON.parse(kv.value) as NetworkPolicy) : undefined;
}

/** Deletes the named policies ("ns/name") in one transaction; returns those that existed. */
export async function deletePolicies(store: Store, refs: readonly string[]): Promise<string[]> {
  const current = await Promise.all(refs.map((r) => store.get(policyStoreKey(r))));
  const present = refs.filter((_, i) => current[i]);
  if (present.length === 0) return [];
  const t = await store.txn(
    refs.flatMap((r, i) => (current[i] ? [{ key: policyStoreKey(r), modRevision: current[i]!.modRevision }] : [])),
    present.map((r) => ({ op: 'delete' as const, key: policyStoreKey(r) })),
  );
  if (!t.succeeded) throw new StoreError('the policies changed while deleting them: try again');
  return present;
}

export async function namespaceLabels(store: Store): Promise<Map<string, Labels>> {
  return new Map((await store.list(NAMESPACES)).map((kv) => [namespaceOfKey(kv.key), (JSON.parse(kv.value) as { labels: Labels }).labels]));
}

/** Applies a kubectl-style label change (set, overwrite, `key-` removes) to a namespace; returns its labels. */
export async function labelNamespace(store: Store, name: string, set: Labels, remove: readonly string[]): Promise<Labels> {
  for (let attempt = 0; attempt < 16; attempt++) {
    const cur = await store.get(namespaceKey(name));
    const labels: Labels = { ...(cur ? (JSON.parse(cur.value) as { labels: Labels }).labels : {}), ...set };
    for (const k of remove) delete labels[k];
    const t = await store.txn([{ key: namespaceKey(name), modRevision: cur?.modRevision ?? 0 }],
      [{ op: 'put', key: namespaceKey(name), value: JSON.stringify({ labels }) }]);
    if (t.succeeded) return labels;
  }
  throw new StoreError(`labelling namespace ${name} kept racing with other writers: try again`);
}
