/**
 * BTF (BPF Type Format) parser: the `.BTF` section of a clang `-target bpf -g`
 * object, or the raw kernel BTF (`/sys/kernel/btf/vmlinux`, `btf__raw_data()`).
 * Format: Documentation/bpf/btf.rst. Only little-endian blobs are supported.
 *
 * The whole blob is validated up front (header, section bounds, every record,
 * every string offset, every referenced type id), so accessors never read out
 * of bounds; malformed input throws an Error naming the problem.
 */

import { listElfSections, readElfSection, readElfSymbols } from './elf.js';

const BTF_MAGIC = 0xeb9f;
const HEADER_SIZE = 24;
const RECORD_SIZE = 12;
/** Pointer size on BPF and x86_64; BTF does not record it. */
export const BTF_PTR_SIZE = 8;

/** Kind names, indexed by BTF_KIND_* number. 0 is void (BTF_KIND_UNKN). */
const KIND_NAMES = [
  'VOID', 'INT', 'PTR', 'ARRAY', 'STRUCT', 'UNION', 'ENUM', 'FWD', 'TYPEDEF', 'VOLATILE',
  'CONST', 'RESTRICT', 'FUNC', 'FUNC_PROTO', 'VAR', 'DATASEC', 'FLOAT', 'DECL_TAG', 'TYPE_TAG', 'ENUM64',
] as const;

export type BtfKind = (typeof KIND_NAMES)[number];
export type BtfLinkage = 'static' | 'global' | 'extern';

const LINKAGES: readonly BtfLinkage[] = ['static', 'global', 'extern'];

interface BtfCommon {
  /** Type id; 0 is void. */
  readonly id: number;
  /** Name, '' for anonymous types. */
  readonly name: string;
}

export interface BtfVoid extends BtfCommon { readonly kind: 'VOID' }

export interface BtfInt extends BtfCommon {
  readonly kind: 'INT';
  readonly size: number;
  readonly signed: boolean;
  /** BTF_INT_CHAR encoding (clang does not set it; `char` is SIGNED and named "char"). */
  readonly char: boolean;
  readonly bool: boolean;
  /** BTF_INT_OFFSET: legacy bitfield offset within the storage; 0 in practice. */
  readonly bitOffset: number;
  /** BTF_INT_BITS: number of value bits. */
  readonly bits: number;
}

export interface BtfPtr extends BtfCommon { readonly kind: 'PTR'; readonly type: number }

export interface BtfArray extends BtfCommon {
  readonly kind: 'ARRAY';
  readonly elemType: number;
  readonly indexType: number;
  readonly nelems: number;
}

export interface BtfMember {
  /** '' for an anonymous struct/union member. */
  readonly name: string;
  readonly type: number;
  /** Offset from the start of the struct, in bits. */
  readonly bitOffset: number;
  /**
   * Bitfield width in bits from the member's encoding (struct kind_flag set),
   * or 0. With kind_flag clear, a bitfield is described by its INT type's
   * `bits`/`bitOffset` instead (legacy encoding); see `memberBitfield()`.
   */
  readonly bitfieldSize: number;
}

export interface BtfComposite extends BtfCommon {
  readonly kind: 'STRUCT' | 'UNION';
  readonly size: number;
  readonly members: readonly BtfMember[];
}

export interface BtfEnum extends BtfCommon {
  readonly kind: 'ENUM';
  readonly size: number;
  /** kind_flag: values are signed. Clang 14 never sets it (negative values appear as large unsigned). */
  readonly signed: boolean;
  readonly values: readonly { readonly name: string; readonly value: number }[];
}

export interface BtfEnum64 extends BtfCommon {
  readonly kind: 'ENUM64';
  readonly size: number;
  readonly signed: boolean;
  readonly values: readonly { readonly name: string; readonly value: bigint }[];
}

export interface BtfFwd extends BtfCommon { readonly kind: 'FWD'; readonly fwdKind: 'struct' | 'union' }

/** TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG: a name or qualifier on `type`. */
export interface BtfModifier extends BtfCommon {
  readonly kind: 'TYPEDEF' | 'VOLATILE' | 'CONST' | 'RESTRICT' | 'TYPE_TAG';
  readonly type: number;
}

export interface BtfFunc extends BtfCommon { readonly kind: 'FUNC'; readonly type: number; readonly linkage: BtfLinkage }

export interface BtfFuncProto extends BtfCommon {
  readonly kind: 'FUNC_PROTO';
  readonly returnType: number;
  /** A final `{ name: '', type: 0 }` parameter means variadic (`...`). */
  readonly params: readonly { readonly name: string; readonly type: number }[];
}

export interface BtfVar extends BtfCommon { readonly kind: 'VAR'; readonly type: number; readonly linkage: BtfLinkage }

export interface BtfVarSecinfo { readonly type: number; readonly offset: number; readonly size: number }

export interface BtfDatasec extends BtfCommon {
  readonly kind: 'DATASEC';
  /** Section size. 0 in a clang .o until laid out (see `Btf.fromElf`). */
  readonly size: number;
  readonly vars: readonly BtfVarSecinfo[];
}

export interface BtfFloat extends BtfCommon { readonly kind: 'FLOAT'; readonly size: number }

export interface BtfDeclTag extends BtfCommon {
  readonly kind: 'DECL_TAG';
  readonly type: number;
  /** -1 for the type/var/func itself, else the member or parameter index. */
  readonly componentIdx: number;
}

export type BtfType =
  | BtfVoid | BtfInt | BtfPtr | BtfArray | BtfComposite | BtfEnum | BtfEnum64 | BtfFwd
  | BtfModifier | BtfFunc | BtfFuncProto | BtfVar | BtfDatasec | BtfFloat | BtfDeclTag;

/** One variable of a data section, as `Btf.datasec()` returns it. */
export interface BtfDatasecVar {
  readonly name: string;
  /** The variable's type (not the VAR's id): what `codecFor` wants. */
  readonly typeId: number;
  readonly offset: number;
  readonly size: number;
}

/** Kinds `resolve()` looks through. */
const TRANSPARENT = new Set<BtfKind>(['TYPEDEF', 'CONST', 'VOLATILE', 'RESTRICT', 'TYPE_TAG']);

/** Bytes that follow the 12-byte common record for each kind. */
function extraBytes(kind: number, vlen: number): number {
  switch (kind) {
    case 1: case 14: case 17: return 4; // INT, VAR, DECL_TAG
    case 3: return 12; // ARRAY
    case 4: case 5: case 15: case 19: return vlen * 12; // STRUCT, UNION, DATASEC, ENUM64
    case 6: case 13: return vlen * 8; // ENUM, FUNC_PROTO
    default: return 0;
  }
}

/** Format a type for messages: `[7] STRUCT 'sl_endpoint'`. */
function label(t: BtfType): string {
  return `[${t.id}] ${t.kind}${t.name ? ` '${t.name}'` : ''}`;
}

/** Type ids a type refers to, each with what refers to it (for error messages). */
function references(t: BtfType): Array<[string, number]> {
  switch (t.kind) {
    case 'PTR': case 'TYPEDEF': case 'CONST': case 'VOLATILE': case 'RESTRICT':
    case 'TYPE_TAG': case 'FUNC': case 'VAR': case 'DECL_TAG':
      return [['type', t.type]];
    case 'ARRAY': return [['element type', t.elemType], ['index type', t.indexType]];
    case 'STRUCT': case 'UNION': return t.members.map((m) => [`member '${m.name}'`, m.type]);
    case 'FUNC_PROTO': return [['return type', t.returnType], ...t.params.map((p, i): [string, number] => [`parameter ${i}`, p.type])];
    case 'DATASEC': return t.vars.map((v, i): [string, number] => [`variable ${i}`, v.type]);
    default: return [];
  }
}

/** Parsed, validated BTF. Immutable after construction (apart from `fromElf`'s layout). */
export class Btf {
  /** types[id]; types[0] is void. */
  private readonly types: BtfType[];
  private byName: Map<string, number[]> | undefined;

  private constructor(types: BtfType[]) {
    this.types = types;
  }

  /** Number of types, not counting void: valid ids are 0..count. */
  get count(): number {
    return this.types.length - 1;
  }

  /** Parse and validate a raw BTF blob. Throws an Error naming what is malformed. */
  static parse(raw: Uint8Array): Btf {
    return new Btf(new BlobReader(raw).readTypes());
  }

  /**
   * Parse the `.BTF` section of a BPF ELF object and lay out its DATASECs the
   * way libbpf does at open time: clang leaves every DATASEC size and variable
   * offset 0; the real ones are the ELF section size and each symbol's value.
   */
  static fromElf(file: Uint8Array): Btf {
    const raw = readElfSection(file, '.BTF');
    if (raw === undefined) throw new Error('ELF object has no .BTF section (was it compiled with -g?)');
    const btf = Btf.parse(raw);
    btf.layOutDatasecs(listElfSections(file), readElfSymbols(file));
    return btf;
  }

  /** The type with this id (0 is void). Throws for an id out of range. */
  type(id: number): BtfType {
    const t = Number.isInteger(id) ? this.types[id] : undefined;
    if (t === undefined) throw new Error(`BTF: type id ${id} is out of range (0..${this.count})`);
    return t;
  }

  /**
   * The first type called `name`, optionally of one kind. Without a kind, a
   * complete type is preferred over a FWD declaration of the same name.
   */
  findByName(name: string, kind?: BtfKind): BtfType | undefined {
    const ids = this.nameIndex().get(name) ?? [];
    const types = ids.map((id) => this.type(id));
    if (kind !== undefined) return types.find((t) => t.kind === kind);
    return types.find((t) => t.kind !== 'FWD') ?? types[0];
  }

  /** Follow typedefs and const/volatile/restrict/type_tag to the underlying type's id. */
  resolve(id: number): number {
    let t = this.type(id);
    for (let steps = 0; TRANSPARENT.has(t.kind); steps++) {
      if (steps > this.count) throw new Error(`BTF: type ${label(this.type(id))} is part of a reference cycle`);
      t = this.type((t as BtfModifier).type);
    }
    return t.id;
  }

  /** Size in bytes of a value of this type. Throws for void, functions and forward declarations. */
  sizeof(id: number): number {
    return this.sizeofAt(id, 0);
  }

  private sizeofAt(id: number, depth: number): number {
    if (depth > this.count) throw new Error(`BTF: type ${label(this.type(id))} is part of a reference cycle`);
    const t = this.type(this.resolve(id));
    switch (t.kind) {
      case 'INT': case 'STRUCT': case 'UNION': case 'ENUM': case 'ENUM64': case 'FLOAT': case 'DATASEC':
        return t.size;
      case 'PTR': return BTF_PTR_SIZE;
      case 'ARRAY': return t.nelems * this.sizeofAt(t.elemType, depth + 1);
      case 'VAR': return this.sizeofAt(t.type, depth + 1);
      default: throw new Error(`BTF: type ${label(t)} has no size`);
    }
  }

  /**
   * Enumerators of the ENUM or ENUM64 called `name`, by value. When several
   * names share a value, `preferredEnumName()` picks one. Throws if there is no
   * such enum, or if an ENUM64 value is not a safe integer (use `type()` then).
   */
  enumValues(name: string): Map<number, string> {
    const t = this.findByName(name, 'ENUM') ?? this.findByName(name, 'ENUM64');
    if (t === undefined || (t.kind !== 'ENUM' && t.kind !== 'ENUM64')) throw new Error(`BTF: no enum named '${name}'`);
    const out = new Map<number, string>();
    for (const [value, n] of enumNameByValue(t)) {
      if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
        throw new Error(`BTF: enum '${name}' value ${n} = ${value} is not a safe integer; read type(${t.id}).values instead`);
      }
      out.set(Number(value), n);
    }
    return out;
  }

  /**
   * Variables of the DATASEC called `name` (e.g. ".rodata"), sorted by offset.
   * Offsets are only meaningful once laid out: kernel BTF and `Btf.fromElf`
   * have them; `Btf.parse` of a bare .o `.BTF` section reports 0 for all.
   */
  datasec(name: string): BtfDatasecVar[] {
    const sec = this.findByName(name, 'DATASEC');
    if (sec === undefined || sec.kind !== 'DATASEC') {
      const have = this.types.filter((t) => t.kind === 'DATASEC').map((t) => t.name);
      throw new Error(`BTF: no DATASEC named '${name}' (have: ${have.join(', ') || 'none'})`);
    }
    return sec.vars.map((v) => {
      const t = this.type(v.type);
      if (t.kind !== 'VAR' && t.kind !== 'FUNC') throw new Error(`BTF: DATASEC '${name}' entry ${label(t)} is not a VAR or FUNC`);
      return { name: t.name, typeId: t.type, offset: v.offset, size: v.size };
    });
  }

  /** C spelling of a type: `struct sl_endpoint`, `__u8 [6]`, `const volatile char [8]`, `struct fx_node *`. */
  typeName(id: number): string {
    return this.declarator(id, '', 0);
  }

  /** C declaration of `name` with this type: `__u8 grid[2][3]`, `int (*fn)(int)`. */
  declare(id: number, name: string): string {
    return this.declarator(id, name, 0);
  }

  private declarator(id: number, d: string, depth: number): string {
    if (depth > 64) throw new Error(`BTF: type [${id}] nests too deeply to print`);
    const t = this.type(id);
    const base = (b: string): string => (d === '' ? b : `${b} ${d}`);
    switch (t.kind) {
      case 'VOID': return base('void');
      case 'INT': case 'FLOAT': case 'TYPEDEF': return base(t.name);
      case 'STRUCT': case 'UNION': return base(`${t.kind.toLowerCase()} ${t.name || '(anon)'}`);
      case 'ENUM': case 'ENUM64': return base(`enum ${t.name || '(anon)'}`);
      case 'FWD': return base(`${t.fwdKind} ${t.name}`);
      case 'TYPE_TAG': return this.declarator(t.type, d, depth + 1);
      case 'CONST': case 'VOLATILE': case 'RESTRICT': {
        const q = t.kind.toLowerCase();
        // A qualified pointer puts the qualifier after the '*': `char *const p`.
        if (this.type(t.type).kind === 'PTR') return this.declarator(t.type, d === '' ? q : `${q} ${d}`, depth + 1);
        return `${q} ${this.declarator(t.type, d, depth + 1)}`;
      }
      case 'PTR': {
        const target = this.type(t.type).kind;
        const inner = target === 'ARRAY' || target === 'FUNC_PROTO' ? `(*${d})` : `*${d}`;
        return this.declarator(t.type, inner, depth + 1);
      }
      case 'ARRAY': return this.declarator(t.elemType, `${d}[${t.nelems}]`, depth + 1);
      case 'FUNC_PROTO': {
        const params = t.params.map((p) => (p.type === 0 && p.name === '' ? '...' : this.declarator(p.type, p.name, depth + 1)));
        return this.declarator(t.returnType, `${d}(${params.join(', ') || 'void'})`, depth + 1);
      }
      case 'FUNC': return this.declarator(t.type, d || t.name, depth + 1);
      case 'VAR': return this.declarator(t.type, d || t.name, depth + 1);
      case 'DATASEC': return `SEC("${t.name}")`;
      case 'DECL_TAG': return `__attribute__((btf_decl_tag("${t.name}")))`;
    }
  }

  /**
   * The effective bitfield of a struct member: `{ bitOffset, bits }` if it is a
   * bitfield (either encoding), else undefined. Legacy (kind_flag clear)
   * bitfields are an INT member type with fewer bits than its storage.
   */
  memberBitfield(m: BtfMember): { bitOffset: number; bits: number } | undefined {
    if (m.bitfieldSize > 0) return { bitOffset: m.bitOffset, bits: m.bitfieldSize };
    const t = this.type(this.resolve(m.type));
    if (t.kind === 'INT' && (t.bitOffset !== 0 || t.bits !== t.size * 8)) {
      return { bitOffset: m.bitOffset + t.bitOffset, bits: t.bits };
    }
    return undefined;
  }

  private nameIndex(): Map<string, number[]> {
    if (this.byName === undefined) {
      this.byName = new Map();
      for (const t of this.types) {
        if (t.name === '' || t.id === 0) continue;
        const ids = this.byName.get(t.name);
        if (ids === undefined) this.byName.set(t.name, [t.id]);
        else ids.push(t.id);
      }
    }
    return this.byName;
  }

  /** libbpf's btf_fixup_datasec: sizes from ELF sections, offsets from symbols, vars sorted by offset. */
  private layOutDatasecs(sections: ReturnType<typeof listElfSections>, symbols: ReturnType<typeof readElfSymbols>): void {
    for (const t of this.types) {
      if (t.kind !== 'DATASEC') continue;
      const sec = sections.find((s) => s.name === t.name);
      if (sec === undefined) continue; // .kconfig/.ksyms: not backed by an ELF section
      const vars = t.vars.map((v) => {
        const vt = this.type(v.type);
        const sym = symbols.find((s) => s.name === vt.name && s.section === t.name);
        if (sym === undefined) throw new Error(`BTF: DATASEC '${t.name}' variable '${vt.name}' has no ELF symbol`);
        if (sym.value + v.size > sec.size) {
          throw new Error(`BTF: DATASEC '${t.name}' variable '${vt.name}' (offset ${sym.value}, size ${v.size}) overruns the section (${sec.size} bytes)`);
        }
        return { type: v.type, offset: sym.value, size: v.size };
      });
      vars.sort((a, b) => a.offset - b.offset);
      this.types[t.id] = { ...t, size: t.size || sec.size, vars };
    }
  }
}

/**
 * Among enumerators sharing one value, pick the name whose family (the name
 * up to its second '_': "SL_REASON" in SL_REASON_DROP_MALFORMED) is most
 * common in the enum; ties go to the first declared. So SL_DROP_BASE = 128
 * loses to SL_REASON_DROP_MALFORMED = 128, and FOO_MAX = FOO_LAST keeps FOO_LAST.
 * Returns the chosen name for every distinct value, keyed as the BTF declares it.
 */
export function enumNameByValue(t: BtfEnum | BtfEnum64): Map<bigint, string> {
  const family = (n: string): string => n.split('_').slice(0, 2).join('_');
  const familySize = new Map<string, number>();
  for (const v of t.values) familySize.set(family(v.name), (familySize.get(family(v.name)) ?? 0) + 1);
  const out = new Map<bigint, string>();
  for (const v of t.values) {
    const key = BigInt(v.value);
    const prev = out.get(key);
    if (prev === undefined || (familySize.get(family(v.name)) ?? 0) > (familySize.get(family(prev)) ?? 0)) out.set(key, v.name);
  }
  return out;
}

/** Reads and validates the records of one blob. */
class BlobReader {
  private readonly view: DataView;
  private readonly buf: Buffer;
  private readonly strStart: number;
  private readonly strLen: number;
  private readonly typeStart: number;
  private readonly typeEnd: number;
  private readonly strings = new Map<number, string>();

  constructor(raw: Uint8Array) {
    this.buf = Buffer.from(raw); // a private copy: later changes to `raw` cannot invalidate checks
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    const len = this.buf.length;
    if (len < HEADER_SIZE) throw new Error(`BTF: blob is ${len} bytes, too short for the ${HEADER_SIZE}-byte header`);
    const magic = this.view.getUint16(0, true);
    if (magic === 0x9feb) throw new Error('BTF: blob is big-endian; only little-endian BTF is supported');
    if (magic !== BTF_MAGIC) throw new Error(`BTF: bad magic 0x${magic.toString(16).padStart(4, '0')} (expected 0xeb9f)`);
    const version = this.view.getUint8(2);
    if (version !== 1) throw new Error(`BTF: unsupported version ${version} (expected 1)`);
    const hdrLen = this.view.getUint32(4, true);
    if (hdrLen < HEADER_SIZE || hdrLen > len) throw new Error(`BTF: header length ${hdrLen} is invalid (blob is ${len} bytes)`);
    const [typeOff, typeLen, strOff, strLen] = [8, 12, 16, 20].map((at) => this.view.getUint32(at, true)) as [number, number, number, number];
    const dataLen = len - hdrLen;
    const check = (what: string, off: number, n: number): void => {
      if (off + n > dataLen) {
        throw new Error(`BTF: ${what} section (offset ${off}, length ${n}) extends past the end of the blob (${dataLen} bytes after the header): truncated?`);
      }
    };
    check('type', typeOff, typeLen);
    check('string', strOff, strLen);
    if (typeOff % 4 !== 0) throw new Error(`BTF: type section offset ${typeOff} is not 4-byte aligned`);
    this.typeStart = hdrLen + typeOff;
    this.typeEnd = this.typeStart + typeLen;
    this.strStart = hdrLen + strOff;
    this.strLen = strLen;
    if (strLen === 0) throw new Error('BTF: string section is empty');
    if (this.buf[this.strStart] !== 0) throw new Error('BTF: string section does not start with an empty string');
    if (this.buf[this.strStart + strLen - 1] !== 0) throw new Error('BTF: string section is not NUL-terminated: truncated?');
  }

  /** Decode every type record, then check all cross-references. */
  readTypes(): BtfType[] {
    const types: BtfType[] = [{ id: 0, kind: 'VOID', name: '' }];
    for (let at = this.typeStart, id = 1; at < this.typeEnd; id++) {
      if (this.typeEnd - at < RECORD_SIZE) {
        throw new Error(`BTF: type section truncated: ${this.typeEnd - at} bytes left for type id ${id}, need ${RECORD_SIZE}`);
      }
      const info = this.u32(at + 4);
      const kind = (info >>> 24) & 0x1f;
      const vlen = info & 0xffff;
      if (kind < 1 || kind >= KIND_NAMES.length) throw new Error(`BTF: type id ${id} has unknown kind ${kind}`);
      const size = RECORD_SIZE + extraBytes(kind, vlen);
      if (at + size > this.typeEnd) {
        throw new Error(`BTF: type section truncated: type id ${id} (${KIND_NAMES[kind]}, vlen ${vlen}) needs ${size} bytes, ${this.typeEnd - at} left`);
      }
      types.push(this.readType(id, at, kind, vlen, info >>> 31 === 1));
      at += size;
    }
    const last = types.length - 1;
    for (const t of types) {
      for (const [what, ref] of references(t)) {
        if (ref > last) throw new Error(`BTF: type ${label(t)} ${what} refers to type id ${ref}, but the blob has only ${last} types`);
      }
    }
    return types;
  }

  private u32(at: number): number {
    return this.view.getUint32(at, true);
  }

  /** The string at `off` in the string section. */
  private str(off: number, what: () => string): string {
    const cached = this.strings.get(off);
    if (cached !== undefined) return cached;
    if (off >= this.strLen) throw new Error(`BTF: ${what()} name offset ${off} is outside the string section (${this.strLen} bytes)`);
    const start = this.strStart + off;
    const s = this.buf.toString('utf8', start, this.buf.indexOf(0, start)); // terminated: the section ends in NUL
    this.strings.set(off, s);
    return s;
  }

  private linkage(n: number, what: () => string): BtfLinkage {
    const l = LINKAGES[n];
    if (l === undefined) throw new Error(`BTF: ${what()} has unknown linkage ${n}`);
    return l;
  }

  private readType(id: number, at: number, kind: number, vlen: number, kflag: boolean): BtfType {
    const kindName = KIND_NAMES[kind]!;
    const where = (): string => `type id ${id} (${kindName})`;
    const name = this.str(this.u32(at), where);
    const sizeOrType = this.u32(at + 8);
    const ext = at + RECORD_SIZE;
    switch (kindName) {
      case 'INT': {
        const enc = this.u32(ext);
        const bits = enc & 0xff;
        const bitOffset = (enc >>> 16) & 0xff;
        const encoding = (enc >>> 24) & 0xf;
        if (![1, 2, 4, 8, 16].includes(sizeOrType)) throw new Error(`BTF: ${where()} '${name}' has invalid size ${sizeOrType}`);
        if (bits === 0 || bitOffset + bits > sizeOrType * 8) {
          throw new Error(`BTF: ${where()} '${name}' has ${bits} bits at offset ${bitOffset}, which do not fit its ${sizeOrType} bytes`);
        }
        return { id, kind: 'INT', name, size: sizeOrType, signed: (encoding & 1) !== 0, char: (encoding & 2) !== 0, bool: (encoding & 4) !== 0, bitOffset, bits };
      }
      case 'PTR': case 'TYPEDEF': case 'VOLATILE': case 'CONST': case 'RESTRICT': case 'TYPE_TAG':
        return { id, kind: kindName, name, type: sizeOrType } as BtfPtr | BtfModifier;
      case 'ARRAY':
        return { id, kind: 'ARRAY', name, elemType: this.u32(ext), indexType: this.u32(ext + 4), nelems: this.u32(ext + 8) };
      case 'STRUCT': case 'UNION': {
        const members: BtfMember[] = [];
        for (let i = 0; i < vlen; i++) {
          const m = ext + i * 12;
          const off = this.u32(m + 8);
          members.push({
            name: this.str(this.u32(m), () => `${where()} '${name}' member ${i}`),
            type: this.u32(m + 4),
            bitOffset: kflag ? off & 0xffffff : off,
            bitfieldSize: kflag ? off >>> 24 : 0,
          });
        }
        return { id, kind: kindName, name, size: sizeOrType, members };
      }
      case 'ENUM': {
        const values = [];
        for (let i = 0; i < vlen; i++) {
          const e = ext + i * 8;
          values.push({
            name: this.str(this.u32(e), () => `${where()} '${name}' enumerator ${i}`),
            value: kflag ? this.view.getInt32(e + 4, true) : this.u32(e + 4),
          });
        }
        return { id, kind: 'ENUM', name, size: sizeOrType, signed: kflag, values };
      }
      case 'ENUM64': {
        const values = [];
        for (let i = 0; i < vlen; i++) {
          const e = ext + i * 12;
          const raw = (BigInt(this.u32(e + 8)) << 32n) | BigInt(this.u32(e + 4));
          values.push({
            name: this.str(this.u32(e), () => `${where()} '${name}' enumerator ${i}`),
            value: kflag ? BigInt.asIntN(64, raw) : raw,
          });
        }
        return { id, kind: 'ENUM64', name, size: sizeOrType, signed: kflag, values };
      }
      case 'FWD': return { id, kind: 'FWD', name, fwdKind: kflag ? 'union' : 'struct' };
      case 'FUNC': return { id, kind: 'FUNC', name, type: sizeOrType, linkage: this.linkage(vlen, where) };
      case 'FUNC_PROTO': {
        const params = [];
        for (let i = 0; i < vlen; i++) {
          const p = ext + i * 8;
          params.push({ name: this.str(this.u32(p), () => `${where()} parameter ${i}`), type: this.u32(p + 4) });
        }
        return { id, kind: 'FUNC_PROTO', name, returnType: sizeOrType, params };
      }
      case 'VAR': return { id, kind: 'VAR', name, type: sizeOrType, linkage: this.linkage(this.u32(ext), where) };
      case 'DATASEC': {
        const vars: BtfVarSecinfo[] = [];
        for (let i = 0; i < vlen; i++) {
          const v = ext + i * 12;
          vars.push({ type: this.u32(v), offset: this.u32(v + 4), size: this.u32(v + 8) });
        }
        return { id, kind: 'DATASEC', name, size: sizeOrType, vars };
      }
      case 'FLOAT': return { id, kind: 'FLOAT', name, size: sizeOrType };
      case 'DECL_TAG': return { id, kind: 'DECL_TAG', name, type: sizeOrType, componentIdx: this.view.getInt32(ext, true) };
      default: throw new Error(`BTF: ${where()} is not a type record`); // VOID (kind 0) is rejected by the caller
    }
  }
}
