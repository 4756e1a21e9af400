/**
 * Holding a map module's TypeScript view of a key or value against BTF: the C type must be
 * the one the module names (include/sluice/types.h), and every field the module reads or
 * writes must be a member of it. Offsets, sizes and the members TypeScript does not name
 * stay BTF's alone (src/bpf/codec.ts encodes and decodes by them). Pure.
 */
import type { Btf, BtfComposite } from '../bpf/btf.js';

/** The names of T's fields (of one element, for a per-CPU value), each `true`: TypeScript checks it lists every one. */
export type FieldNames<T> = T extends readonly (infer E)[] ? FieldNames<E> : T extends object ? { readonly [F in keyof T]-?: true } : never;

/** A C type as a map module sees it. */
export interface CType<T> {
  /** Its name in BTF: "sl_ct_key", "__u32". */
  readonly name: string;
  /** The members TypeScript reads or writes, by name (structs only; the C struct may have more). */
  readonly fields?: FieldNames<T>;
}

/** A CType with the TypeScript type forgotten: what is held against BTF. */
export interface CTypeNames {
  readonly name: string;
  readonly fields?: Readonly<Record<string, true>>;
}

const PASS_THROUGH = new Set(['TYPEDEF', 'CONST', 'VOLATILE', 'RESTRICT', 'TYPE_TAG']);

/** Member names of a struct or union, anonymous members flattened in (as the codec does). */
function memberNames(btf: Btf, t: BtfComposite, out = new Set<string>()): Set<string> {
  for (const m of t.members) {
    if (m.name !== '') {
      out.add(m.name);
      continue;
    }
    const inner = btf.type(btf.resolve(m.type));
    if (inner.kind === 'STRUCT' || inner.kind === 'UNION') memberNames(btf, inner, out);
  }
  return out;
}

/**
 * What is wrong with BTF type `id` as `want` (nothing: []). The type matches when it, or a
 * typedef or qualifier it goes through, bears `want.name`.
 */
export function typeProblems(btf: Btf, id: number, want: CTypeNames, what: string): string[] {
  let t = btf.type(id);
  const seen: string[] = [];
  for (let steps = 0; t.name !== want.name; steps++) {
    seen.push(t.name || t.kind.toLowerCase());
    if (!PASS_THROUGH.has(t.kind) || steps > btf.count) return [`${what} is ${seen.join(' = ')}, not ${want.name}`];
    t = btf.type((t as { type: number }).type);
  }
  const fields = Object.keys(want.fields ?? {});
  if (fields.length === 0) return [];
  const body = btf.type(btf.resolve(t.id));
  if (body.kind !== 'STRUCT' && body.kind !== 'UNION') return [`${what} ${want.name} is not a struct, but fields are named: ${fields.join(', ')}`];
  const have = memberNames(btf, body);
  const missing = fields.filter((f) => !have.has(f));
  return missing.length ? [`${what} ${want.name} has no member ${missing.map((f) => `'${f}'`).join(', ')} (members: ${[...have].join(', ')})`] : [];
}

/** A map as a compiled object defines it (its `.maps` section): the BTF ids of its key and value, when it has them. */
export interface ObjectMap {
  name: string;
  key?: number;
  value?: number;
}

/**
 * The maps of a BPF object from its BTF (Btf.fromElf): each variable of `.maps` is a struct
 * whose `key` and `value` members point at the key and value types (libbpf's __type()).
 */
export function objectMaps(btf: Btf): ObjectMap[] {
  if (!btf.findByName('.maps', 'DATASEC')) return [];
  return btf.datasec('.maps').map((v) => {
    const def = btf.type(btf.resolve(v.typeId));
    const out: ObjectMap = { name: v.name };
    if (def.kind !== 'STRUCT') return out;
    for (const m of def.members) {
      if (m.name !== 'key' && m.name !== 'value') continue;
      const p = btf.type(m.type);
      if (p.kind === 'PTR') out[m.name] = p.type;
    }
    return out;
  });
}
