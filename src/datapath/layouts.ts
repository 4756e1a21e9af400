/**
 * The layout of every map of the datapath, as the compiled objects' BTF declares it (the
 * C definitions in include/sluice/maps.h and types.h are the only source): map type, size
 * limits, and the key and value types flattened to their fields. Used to hold map layouts
 * to the versioning rule (src/maps/migrate.ts; test/unit/map-layouts.test.ts) and by
 * `sluice bpf layouts`.
 */
import { readFileSync } from 'node:fs';
import { Btf, type BtfType } from '../bpf/btf.js';
import { MAP_TYPES } from '../bpf/map.js';
import { buildProgram, datapathSources } from './build.js';

export interface MapLayout {
  name: string;
  /** The name without its layout suffix, and the layout number (1 when it has none). */
  base: string;
  version: number;
  type: string;
  maxEntries: number;
  flags: number;
  /**
   * The address family of its key: 4 when the key holds an sl_ipv4_t, 6 when it holds an
   * sl_ipv6_t, 'any' when it holds no address (keyed by endpoint, identity, reason, index).
   * Address-keyed maps are per family (docs/architecture.md, "Address families").
   */
  family: MapFamily;
  /** "TYPE NAME" and its fields "path: type @offset" (empty for maps without a key, like ringbufs). */
  key: string[];
  value: string[];
}

export type MapFamily = 4 | 6 | 'any';

/** The address type of each family, as include/sluice/types.h names it. */
export const FAMILY_TYPES = { 4: 'sl_ipv4_t', 6: 'sl_ipv6_t' } as const;

/**
 * The family of a key from its flattened fields; a key with addresses of both families is
 * against the rule and an error.
 */
export function keyFamily(mapName: string, key: readonly string[]): MapFamily {
  const has = (f: 4 | 6) => key.slice(1).some((l) => l.includes(`: ${FAMILY_TYPES[f]} `));
  if (has(4) && has(6)) throw new Error(`map ${mapName}: its key holds both an IPv4 and an IPv6 address; address-keyed maps are per family (one map for each)`);
  return has(6) ? 6 : has(4) ? 4 : 'any';
}

/** `sl_ct_v2` -> { base: 'sl_ct', version: 2 }; a name without a suffix is layout 1. */
export function layoutVersion(name: string): { base: string; version: number } {
  const m = /^(.*)_v(\d+)$/.exec(name);
  return m && Number(m[2]) >= 2 ? { base: m[1]!, version: Number(m[2]) } : { base: name, version: 1 };
}

/** The name of the map `base` at layout `version`. */
export function versionedName(base: string, version: number): string {
  return version <= 1 ? base : `${base}_v${version}`;
}

/** A type and its fields, one line each, members at their byte offsets. */
function flatten(btf: Btf, id: number): string[] {
  const lines = [`${btf.typeName(id)} (${btf.sizeof(id)} bytes)`];
  const walk = (tid: number, path: string, offset: number) => {
    const t = btf.type(btf.resolve(tid));
    if (t.kind === 'STRUCT' || t.kind === 'UNION') {
      for (const m of t.members) {
        const bits = btf.memberBitfield(m);
        const at = offset + Math.floor(m.bitOffset / 8);
        const p = path ? `${path}.${m.name}` : m.name;
        if (bits) lines.push(`${p}: ${btf.typeName(m.type)} @${at}+${m.bitOffset % 8}:${bits.bits} bits`);
        else walk(m.type, p, at);
      }
      return;
    }
    lines.push(`${path}: ${btf.typeName(tid)} @${offset} (${btf.sizeof(tid)})`);
  };
  const top = btf.type(btf.resolve(id));
  if (top.kind === 'STRUCT' || top.kind === 'UNION') walk(id, '', 0);
  return lines;
}

/** Follows `int (*name)[N]` (libbpf's __uint) to N, and `T *name` (__type) to T. */
function member(btf: Btf, def: BtfType, name: string): BtfType | undefined {
  if (def.kind !== 'STRUCT') return undefined;
  const m = def.members.find((x) => x.name === name);
  if (!m) return undefined;
  const ptr = btf.type(btf.resolve(m.type));
  return ptr.kind === 'PTR' ? btf.type(ptr.type) : undefined;
}

function uintOf(btf: Btf, def: BtfType, name: string): number {
  const t = member(btf, def, name);
  return t && t.kind === 'ARRAY' ? t.nelems : 0;
}

/** The maps an object's BTF defines (section .maps). */
export function mapLayoutsOf(btf: Btf): MapLayout[] {
  return btf.datasec('.maps').map((v) => {
    const def = btf.type(btf.resolve(v.typeId));
    const key = member(btf, def, 'key');
    const value = member(btf, def, 'value');
    const keyFields = key ? flatten(btf, key.id) : [];
    return {
      name: v.name, ...layoutVersion(v.name),
      type: MAP_TYPES[uintOf(btf, def, 'type')] ?? String(uintOf(btf, def, 'type')),
      maxEntries: uintOf(btf, def, 'max_entries'),
      flags: uintOf(btf, def, 'map_flags'),
      family: keyFamily(v.name, keyFields),
      key: keyFields,
      value: value ? flatten(btf, value.id) : [],
    };
  });
}

/** Every map of this build's datapath (each object defines them all; they must agree). */
export function datapathMapLayouts(o: { cacheDir?: string } = {}): MapLayout[] {
  const all = new Map<string, MapLayout>();
  for (const source of datapathSources()) {
    const built = buildProgram(source, o);
    for (const m of mapLayoutsOf(Btf.fromElf(readFileSync(built.object)))) {
      const seen = all.get(m.name);
      if (seen && JSON.stringify(seen) !== JSON.stringify(m)) throw new Error(`map ${m.name} is defined differently in ${source}.c than before`);
      all.set(m.name, m);
    }
  }
  return [...all.values()].sort((a, b) => a.name.localeCompare(b.name));
}
