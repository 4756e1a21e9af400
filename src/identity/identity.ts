/**
 * Security identities: the numbers policy is written against. A pod's identity is a
 * function of its namespace and labels, allocated cluster-wide in the store so every node
 * agrees on it (and can send it in the VXLAN VNI, 24 bits). Small numbers are reserved.
 * CIDR identities (for ipBlock peers) are node-local and live above the VNI range.
 *
 * In the store (keys in store/keys.ts): each identity with the label set it stands for and
 * when an endpoint last asked for it, and an index from label set digest to identity.
 */
import { createHash } from 'node:crypto';
import { IDENTITY_IDS, identityKey, identityLabelsKey, identityOfKey } from '../store/keys.js';
import type { Store } from '../store/types.js';
import type { Labels } from '../util/labels.js';

export const IDENTITY = {
  /** Matches any identity in a policy key; never a packet's identity. */
  any: 0,
  /** The node itself (its stack: health checks, host processes). */
  host: 1,
  /** Anything outside the cluster that no CIDR rule names. */
  world: 2,
  /** Another node of the cluster (its underlay address). */
  remoteNode: 3,
} as const;

export const RESERVED_NAMES: Record<number, string> = { 1: 'reserved:host', 2: 'reserved:world', 3: 'reserved:remote-node' };

/** The first identity given to pods; below it, reserved ones. */
export const FIRST_POD_IDENTITY = 256;
/** The VXLAN VNI is 24 bits: pod identities must fit. */
export const MAX_POD_IDENTITY = 0xffffff;
/** Node-local CIDR identities start here (never sent on the wire). */
export const FIRST_CIDR_IDENTITY = 0x1000000;

/** The label that carries a pod's namespace inside its identity's label set. */
export const NAMESPACE_LABEL = 'io.kubernetes.pod.namespace';

/** A pod's identity labels: its own labels plus its namespace, canonical (keys sorted). */
export function identityLabels(namespace: string, labels: Labels): Labels {
  const all: Labels = { ...labels, [NAMESPACE_LABEL]: namespace };
  return Object.fromEntries(Object.keys(all).sort().map((k) => [k, all[k]!]));
}

export function labelsDigest(labels: Labels): string {
  return createHash('sha256').update(JSON.stringify(identityLabels(labels[NAMESPACE_LABEL] ?? '', labels))).digest('hex');
}

const MAX_RACES = 64;
/** How often an identity in use is marked as used (collection spares identities used within its grace period, 10 min). */
const TOUCH_EVERY_MS = 60_000;

export class IdentityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IdentityError';
  }
}

export class IdentityAllocator {
  constructor(private readonly store: Store) {}

  /** The identity of (namespace, labels), allocating it if no node did yet. Idempotent. */
  async allocate(namespace: string, labels: Labels): Promise<number> {
    const canon = identityLabels(namespace, labels);
    const digest = labelsDigest(canon);
    for (let race = 0; race < MAX_RACES; race++) {
      const known = await this.store.get(identityLabelsKey(digest));
      if (known) {
        const id = (JSON.parse(known.value) as { id: number }).id;
        // Touch it (only while it still stands for these labels), so a collection running now
        // spares it; at most once a minute, so asking for it often costs no store write.
        const cur = await this.store.get(identityKey(id));
        if (cur && Date.now() - ((JSON.parse(cur.value) as { used?: number }).used ?? 0) < TOUCH_EVERY_MS) return id;
        const r = await this.store.txn([{ key: identityLabelsKey(digest), modRevision: known.modRevision }],
          [{ op: 'put', key: identityKey(id), value: JSON.stringify({ labels: canon, used: Date.now() }) }]);
        if (r.succeeded) return id;
        continue;
      }
      const used = new Set((await this.store.list(IDENTITY_IDS)).map((kv) => identityOfKey(kv.key)));
      let id = FIRST_POD_IDENTITY + race; // racers spread out instead of all wanting the same number
      while (used.has(id)) id++;
      if (id > MAX_POD_IDENTITY) throw new IdentityError('no free security identity: all 16.7 million are in use');
      const r = await this.store.txn(
        [{ key: identityLabelsKey(digest), modRevision: 0 }, { key: identityKey(id), modRevision: 0 }],
        [{ op: 'put', key: identityKey(id), value: JSON.stringify({ labels: canon, used: Date.now() }) }, { op: 'put', key: identityLabelsKey(digest), value: JSON.stringify({ id }) }],
      );
      if (r.succeeded) return id;
    }
    throw new IdentityError('could not allocate an identity: too much contention, try again');
  }

  /** Every allocated identity and its labels. */
  async list(): Promise<Map<number, Labels>> {
    return new Map((await this.store.list(IDENTITY_IDS)).map((kv) => [identityOfKey(kv.key), (JSON.parse(kv.value) as { labels: Labels }).labels]));
  }

  /**
   * Releases identities nobody uses any more: not in `inUse` (the identities of every
   * endpoint in the cluster) and not asked for during the last `graceMs` (an endpoint being
   * created may hold one it has not published yet).
   */
  async collect(inUse: ReadonlySet<number>, graceMs = 10 * 60_000): Promise<number[]> {
    const freed: number[] = [];
    for (const kv of await this.store.list(IDENTITY_IDS)) {
      const id = identityOfKey(kv.key);
      const { labels, used } = JSON.parse(kv.value) as { labels: Labels; used?: number };
      if (inUse.has(id) || Date.now() - (used ?? 0) < graceMs) continue;
      const idx = identityLabelsKey(labelsDigest(labels));
      const cur = await this.store.get(idx);
      const r = await this.store.txn(
        [{ key: kv.key, modRevision: kv.modRevision }, ...(cur ? [{ key: idx, modRevision: cur.modRevision }] : [])],
        [{ op: 'delete', key: kv.key }, ...(cur && (JSON.parse(cur.value) as { id: number }).id === id ? [{ op: 'delete' as const, key: idx }] : [])],
      );
      if (r.succeeded) freed.push(id);
    }
    return freed;
  }
}
