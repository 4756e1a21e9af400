/**
 * Denied CIDRs in the store (cluster-wide): one key per CIDR -> {cidr, id, added} (keys in
 * store/keys.ts). Adds and deletes are one compare-and-swap transaction each: every CIDR of
 * a request is applied, or none is. Rule ids come from the counter key PREFILTER_NEXT_ID_KEY,
 * which every add compares and bumps, so two nodes adding at once never share an id.
 */
import type { Compare, Store, TxnOp } from '../store/types.js';
import { PREFILTER_NEXT_ID_KEY, PREFILTER_PREFIX, prefilterKey } from '../store/keys.js';
import { compareCidrs, parseEntry, type PrefilterEntry } from './cidr.js';

const MAX_TRIES = 20;

/** Every valid rule in the store, sorted by address. Invalid records are skipped. */
export async function listEntries(store: Store): Promise<PrefilterEntry[]> {
  const out: PrefilterEntry[] = [];
  for (const kv of await store.list(PREFILTER_PREFIX)) {
    const e = parseEntry(kv.key, kv.value);
    if (e) out.push(e);
  }
  return out.sort((a, b) => compareCidrs(a.cidr, b.cidr));
}

export interface AddResult {
  /** Rules this request created. */
  added: PrefilterEntry[];
  /** Rules that were already there (left as they were). */
  existing: PrefilterEntry[];
}

/** Adds `cidrs` (already normalised by parseDenyCidrs) in one transaction. */
export async function addEntries(store: Store, cidrs: readonly string[], now = () => new Date()): Promise<AddResult> {
  for (let attempt = 0; attempt < MAX_TRIES; attempt++) {
    const existing: PrefilterEntry[] = [];
    const missing: string[] = [];
    const compares: Compare[] = [];
    for (const cidr of cidrs) {
      const kv = await store.get(prefilterKey(cidr));
      const e = kv && parseEntry(kv.key, kv.value);
      if (e) existing.push(e);
      else missing.push(cidr);
      compares.push({ key: prefilterKey(cidr), modRevision: kv?.modRevision ?? 0 });
    }
    if (missing.length === 0) return { added: [], existing };
    const counter = await store.get(PREFILTER_NEXT_ID_KEY);
    let last = counter ? Number(counter.value) : 0;
    if (!Number.isInteger(last) || last < 0) last = 0;
    // A counter lost or reset behind our back must not hand out an id still in use.
    for (const e of await listEntries(store)) last = Math.max(last, e.id);
    const added = missing.map((cidr, i) => ({ cidr, id: last + 1 + i, added: now().toISOString() }));
    const ops: TxnOp[] = [
      ...added.map((e): TxnOp => ({ op: 'put', key: prefilterKey(e.cidr), value: JSON.stringify(e) })),
      { op: 'put', key: PREFILTER_NEXT_ID_KEY, value: String(last + added.length) },
    ];
    const r = await store.txn([...compares, { key: PREFILTER_NEXT_ID_KEY, modRevision: counter?.modRevision ?? 0 }], ops);
    if (r.succeeded) return { added, existing };
  }
  throw new Error(`adding prefilter rules: the store kept changing under ${MAX_TRIES} attempts; try again`);
}

export interface DelResult {
  /** Rules this request removed. */
  deleted: PrefilterEntry[];
  /** CIDRs that were not denied (nothing to do). */
  absent: string[];
}

/** Deletes `cidrs` in one transaction. */
export async function deleteEntries(store: Store, cidrs: readonly string[]): Promise<DelResult> {
  for (let attempt = 0; attempt < MAX_TRIES; attempt++) {
    const deleted: PrefilterEntry[] = [];
    const absent: string[] = [];
    const compares: Compare[] = [];
    const ops: TxnOp[] = [];
    for (const cidr of cidrs) {
      const key = prefilterKey(cidr);
      const kv = await store.get(key);
      if (!kv) {
        absent.push(cidr);
        continue;
      }
      const e = parseEntry(kv.key, kv.value);
      deleted.push(e ?? { cidr, id: 0, added: '' });
      compares.push({ key, modRevision: kv.modRevision });
      ops.push({ op: 'delete', key });
    }
    if (ops.length === 0) return { deleted, absent };
    const r = await store.txn(compares, ops);
    if (r.succeeded) return { deleted, absent };
  }
  throw new Error(`deleting prefilter rules: the store kept changing under ${MAX_TRIES} attempts; try again`);
}
