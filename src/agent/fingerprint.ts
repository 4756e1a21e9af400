/**
 * A cheap digest of what a reconciliation pass reads, so a pass whose inputs did not change
 * since the last good one can skip its work. Pure.
 *
 * The value is serialized canonically and hashed (SHA-256) as it is walked: plain objects
 * by sorted keys, arrays in order, Maps and Sets in any order (their entries are sorted by
 * key or by element), strings length-prefixed (no escaping: a 6 MB policy set costs one
 * pass over its bytes). Two values with the same canonical form have the same fingerprint;
 * anything else differs (short of a SHA-256 collision).
 */
import { createHash, type Hash } from 'node:crypto';

/** Bytes gathered before each hash update: one update per item would dominate at 50,000 items. */
const FLUSH_AT = 1 << 16;

interface Sink {
  put(s: string): void;
}

class Writer implements Sink {
  private readonly hash: Hash = createHash('sha256');
  private pending = '';

  put(s: string): void {
    this.pending += s;
    if (this.pending.length >= FLUSH_AT) this.flush();
  }

  flush(): void {
    if (this.pending) this.hash.update(this.pending);
    this.pending = '';
  }

  digest(): string {
    this.flush();
    return this.hash.digest('hex');
  }
}

/** Keys of a Map or elements of a Set, sorted: numbers by value, strings by code units, anything else by its canonical form. */
function sortedKeys(keys: unknown[]): unknown[] {
  if (keys.every((k) => typeof k === 'string')) return keys.sort(); // the default order: by UTF-16 code units
  if (keys.every((k) => typeof k === 'number')) return keys.sort((a, b) => (a as number) - (b as number));
  const byForm = keys.map((k) => ({ k, form: canonical(k) }));
  return byForm.sort((a, b) => (a.form < b.form ? -1 : a.form > b.form ? 1 : 0)).map((x) => x.k);
}

/** An object's keys whose value is not undefined, sorted (usually already in order: no sort then). */
function objectKeys(o: Record<string, unknown>): string[] {
  const keys = Object.keys(o);
  let ordered = true;
  let defined = true;
  for (let i = 0; i < keys.length; i++) {
    if (i > 0 && keys[i - 1]! > keys[i]!) ordered = false;
    if (o[keys[i]!] === undefined) defined = false;
  }
  const out = defined ? keys : keys.filter((k) => o[k] !== undefined);
  return ordered ? out : out.sort();
}

function write(w: Sink, v: unknown): void {
  switch (typeof v) {
    case 'string':
      w.put(`s${v.length}:`);
      w.put(v);
      return;
    case 'number':
      w.put(`n${String(v)};`);
      return;
    case 'bigint':
      w.put(`b${v.toString()};`);
      return;
    case 'boolean':
      w.put(v ? 'T' : 'F');
      return;
    case 'undefined':
      w.put('U');
      return;
    case 'object':
      break;
    default:
      throw new TypeError(`cannot fingerprint a ${typeof v}`);
  }
  if (v === null) {
    w.put('N');
  } else if (Array.isArray(v)) {
    w.put(`[${v.length}:`);
    for (const x of v) write(w, x);
    w.put(']');
  } else if (v instanceof Map) {
    w.put(`{M${v.size}:`);
    for (const k of sortedKeys([...v.keys()])) {
      write(w, k);
      write(w, v.get(k));
    }
    w.put('}');
  } else if (v instanceof Set) {
    w.put(`{S${v.size}:`);
    for (const x of sortedKeys([...v])) write(w, x);
    w.put('}');
  } else {
    const o = v as Record<string, unknown>;
    const keys = objectKeys(o);
    w.put(`{O${keys.length}:`);
    for (const k of keys) {
      write(w, k);
      write(w, o[k]);
    }
    w.put('}');
  }
}

/** The canonical form of `v` as a string (for sorting mixed keys; small values only). */
function canonical(v: unknown): string {
  let out = '';
  write({ put: (s) => void (out += s) }, v);
  return out;
}

/**
 * The fingerprint of `v` (hex SHA-256 of its canonical form). An object property that is
 * undefined counts as absent, like in JSON.
 */
export function fingerprint(v: unknown): string {
  const w = new Writer();
  write(w, v);
  return w.digest();
}
