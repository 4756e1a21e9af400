/**
 * store.json of the file store (src/store/file.ts): its in-memory form, parsing with
 * validation, and the on-disk form.
 *
 *   {"format": "sluice-store/1", "stamp": "<16 hex>", "revision", "compacted", "nextLease",
 *    "keys", "leases", "events"}
 *
 * The stamp is random and new at every write. It comes second, so the first bytes of the
 * file tell which write produced it (the parse cache, src/store/file-cache.ts, checks it
 * besides the file's stat identity). Older files have no stamp and are still read.
 */
import { randomBytes } from 'node:crypto';

export const FORMAT = 'sluice-store/1';

export interface FileKey {
  value: string;
  modRevision: number;
  lease: number;
}

export interface FileLease {
  ttlSeconds: number;
  /** Wall-clock expiry, ms since the epoch. */
  expiresAt: number;
}

export interface FileEvent {
  type: 'put' | 'delete';
  key: string;
  value?: string;
  modRevision: number;
}

/**
 * store.json, in memory, read-only: what reads get, possibly shared with the parse cache
 * and other readers, so nobody may change it (changes go through a copy: Changes in
 * file.ts). Maps: keys are arbitrary strings, "__proto__" included.
 */
export interface DocView {
  readonly revision: number;
  /** History holds every event after this revision. */
  readonly compacted: number;
  readonly nextLease: number;
  readonly keys: ReadonlyMap<string, Readonly<FileKey>>;
  readonly leases: ReadonlyMap<number, Readonly<FileLease>>;
  readonly events: readonly Readonly<FileEvent>[];
}

interface DiskDoc {
  format: string;
  stamp: string;
  revision: number;
  compacted: number;
  nextLease: number;
  keys: Record<string, Readonly<FileKey>>;
  leases: Record<string, Readonly<FileLease>>;
  events: readonly Readonly<FileEvent>[];
}

export const emptyDoc = (): DocView => ({ revision: 1, compacted: 1, nextLease: 1, keys: new Map(), leases: new Map(), events: [] });

const isInt = (v: unknown, min = 0): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A new random stamp for a write. */
export const newStamp = (): string => randomBytes(8).toString('hex');

const STAMP_RE = /^\{\s*"format"\s*:\s*"[^"\\]*"\s*,\s*"stamp"\s*:\s*"([0-9a-f]{16})"/;

/** How many leading bytes of the file hold the stamp (STAMP_RE) when it has one. */
export const STAMP_PREFIX_BYTES = 128;

/** The stamp in the first bytes of a store file, or undefined (an older or hand-made file). */
export function stampOf(head: string): string | undefined {
  return STAMP_RE.exec(head)?.[1];
}

/** Parses and validates store.json; throws an Error saying what is wrong. */
export function parseDoc(text: string): DocView {
  const raw = JSON.parse(text) as unknown;
  if (!isObj(raw)) throw new Error('not a JSON object');
  if (raw.format !== FORMAT) throw new Error(`unknown format ${JSON.stringify(raw.format)} (expected "${FORMAT}")`);
  if (!isInt(raw.revision, 1) || !isInt(raw.compacted, 1) || !isInt(raw.nextLease, 1)) {
    throw new Error('revision, compacted and nextLease must be positive integers');
  }
  if (!isObj(raw.keys) || !isObj(raw.leases) || !Array.isArray(raw.events)) throw new Error('keys, leases or events missing');
  const keys = new Map<string, FileKey>();
  const leases = new Map<number, FileLease>();
  const events: FileEvent[] = [];
  for (const [k, v] of Object.entries(raw.keys)) {
    if (!isObj(v) || typeof v.value !== 'string' || !isInt(v.modRevision, 1) || !isInt(v.lease)) throw new Error(`bad entry for key ${JSON.stringify(k)}`);
    keys.set(k, { value: v.value, modRevision: v.modRevision, lease: v.lease });
  }
  for (const [id, v] of Object.entries(raw.leases)) {
    if (!/^[1-9]\d*$/.test(id) || !isObj(v) || !isInt(v.ttlSeconds, 1) || !isInt(v.expiresAt)) throw new Error(`bad entry for lease ${JSON.stringify(id)}`);
    leases.set(Number(id), { ttlSeconds: v.ttlSeconds, expiresAt: v.expiresAt });
  }
  for (const e of raw.events as unknown[]) {
    if (!isObj(e) || (e.type !== 'put' && e.type !== 'delete') || typeof e.key !== 'string' || !isInt(e.modRevision, 1)
      || (e.type === 'put' && typeof e.value !== 'string')) {
      throw new Error('bad event in the history');
    }
    events.push(e.type === 'put'
      ? { type: 'put', key: e.key, value: e.value as string, modRevision: e.modRevision }
      : { type: 'delete', key: e.key, modRevision: e.modRevision });
  }
  return { revision: raw.revision, compacted: raw.compacted, nextLease: raw.nextLease, keys, leases, events };
}

/** The JSON text of store.json for `doc`, written with `stamp`. */
export function serializeDoc(doc: DocView, stamp: string): string {
  const disk: DiskDoc = {
    format: FORMAT,
    stamp,
    revision: doc.revision,
    compacted: doc.compacted,
    nextLease: doc.nextLease,
    keys: Object.fromEntries(doc.keys),
    leases: Object.fromEntries([...doc.leases].map(([id, l]) => [String(id), l])),
    events: doc.events,
  };
  return `${JSON.stringify(disk, null, 2)}\n`;
}
