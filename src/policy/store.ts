/**
 * NetworkPolicies and namespace labels as cluster state in the store, so a command given to
 * any node reaches every node (each agent watches these prefixes), and the endpoints each
 * agent publishes. Their keys are in store/keys.ts.
 *
 * `applyPolicies` writes every policy of one input in a single transaction: all or nothing.
 */
import { endpointOfKey, namespaceKey, namespaceOfKey, namespacePoliciesPrefix, NAMESPACES, POLICIES, policyStoreKey } from '../store/keys.js';
import { RecordError, RecordFields } from '../store/record.js';
import type { Store } from '../store/types.js';
import { StoreError } from '../store/types.js';
import { policyId } from './compile.js';
import { policyKey, type NetworkPolicy } from './types.js';
import type { Labels } from '../util/labels.js';
import { checkPorts, type PodPort } from '../endpoint/ports.js';
import { parseEndpointName } from '../endpoint/types.js';

/** A pod as its node's agent publishes it (store/keys.ts endpointKey). */
export interface PublishedEndpoint {
  node: string;
  id: number;
  name: string;
  namespace: string;
  /** Its IPv4 address. */
  ip: string;
  /** Its IPv6 address, with dual stack (docs/architecture.md, "Address families"). */
  ipv6?: string;
  identity: number;
  labels: Labels;
  ports: PodPort[];
}

/** Identities are 24-bit (include/sluice/types.h); 0 is none. */
const MAX_IDENTITY = 0xffffff;

/**
 * A published endpoint read back from the store, every field checked (the store is a trust
 * boundary): its node and id must be the ones its key names, its addresses of their family.
 */
export function parsePublishedEndpoint(key: string, value: string): PublishedEndpoint {
  const at = endpointOfKey(key);
  if (!at) throw new RecordError(key, 'is not an endpoint key (endpoints/<node>/<id>)');
  const f: RecordFields = RecordFields.parse(key, value);
  const node = f.str('node');
  if (node !== at.node) f.fail('node', `is '${node}', but the key is node ${at.node}'s`);
  const id = f.int('id', 1, 0xffffffff);
  if (id !== at.id) f.fail('id', `is ${id}, but the key names endpoint ${at.id}`);
  const name = f.str('name');
  let parsed: { namespace: string; pod: string };
  try {
    parsed = parseEndpointName(name);
  } catch (e) {
    f.fail('name', (e as Error).message);
  }
  const namespace = f.str('namespace');
  if (namespace !== parsed.namespace) f.fail('namespace', `is '${namespace}', but the name is in '${parsed.namespace}'`);
  let ports: PodPort[];
  try {
    ports = checkPorts(f.raw('ports'));
  } catch (e) {
    f.fail('ports', (e as Error).message);
  }
  const ipv6 = f.optIpv6('ipv6');
  return {
    node, id, name, namespace, ip: f.ipv4('ip'), ...(ipv6 ? { ipv6 } : {}),
    identity: f.int('identity', 1, MAX_IDENTITY), labels: f.labels('labels'), ports,
  };
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
