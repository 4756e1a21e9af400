/**
 * BTF-driven codecs: turn JS values into the exact bytes of a C type and back,
 * so user space never copies a struct layout. A type graph is compiled once
 * into closures (memoized per Btf and type id); pointers are not followed, so
 * self-referential types are fine.
 *
 * Values:
 *   INT 1/2/4 bytes   number (signed per encoding); 8/16 bytes: bigint
 *                     (encode also takes a safe-integer number); _Bool: boolean
 *   char[N]           NUL-terminated string (UTF-8, at most N bytes)
 *   sl_ipv4_t         "10.0.0.1" (stored in network order)
 *   sl_mac_t          "aa:bb:cc:dd:ee:ff" (decode lower-case; encode any case)
 *   __be16/32/64      host-order number/number/bigint, stored big-endian
 *   ENUM/ENUM64       enumerator name, or the number (bigint for 8 bytes) if unnamed
 *   STRUCT            object by member name; anonymous members flattened in
 *   UNION             decode: every member; encode: exactly one member
 *   ARRAY             JS array of exactly N elements
 *   PTR               bigint; FLOAT: number
 * Everything else is little-endian. Encoding zero-fills first (padding is zero:
 * these bytes are hash-map keys); a missing struct field encodes as zero.
 */

import { Btf, enumNameByValue, type BtfComposite, type BtfEnum, type BtfEnum64, type BtfInt, type BtfType } from './btf.js';

export interface Codec {
  /** Bytes of one value. */
  readonly size: number;
  /** A fresh zero-padded buffer holding `value`. */
  encode(value: unknown): Buffer;
  /** Zero `buf[offset, offset+size)` then write `value` there. On a CodecError the range may hold part of the value. */
  encodeInto(value: unknown, buf: Buffer, offset: number): void;
  decode(buf: Uint8Array, offset?: number): unknown;
  /** C-like one-line rendering of the type. */
  describe(): string;
}

/** A value that does not fit its type; `path` names the field (`sl_endpoint.mac`). */
export class CodecError extends Error {
  constructor(readonly path: string, readonly problem: string) {
    super(`${path}: ${problem}`);
    this.name = 'CodecError';
  }
}

/** A compiled type: reads and writes one value at a byte offset. */
interface Node {
  readonly size: number;
  /** Write into a region the caller has zeroed. */
  write(v: unknown, buf: Buffer, off: number, path: string): void;
  read(buf: Buffer, off: number): unknown;
}

/** An integer-like value as unsigned raw bits: how enums, ints and bools enter bitfields. */
interface Scalar {
  toRaw(v: unknown, path: string): bigint;
  fromRaw(raw: bigint): unknown;
}

// ---------------------------------------------------------------- helpers

/** Short rendering of a bad value for messages. */
function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 64 ? `${v.slice(0, 64)}...` : v);
  if (typeof v === 'bigint') return `${v}n`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name} of ${v.byteLength} bytes`;
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'function') return 'a function';
  return String(v);
}

function fail(path: string, expected: string, v: unknown): never {
  throw new CodecError(path, `expected ${expected}, got ${show(v)}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** Integer range of `bits` bits. */
function range(bits: number, signed: boolean): [bigint, bigint] {
  return signed ? [-(1n << BigInt(bits - 1)), (1n << BigInt(bits - 1)) - 1n] : [0n, (1n << BigInt(bits)) - 1n];
}

/** `u8`, `s32`, `u40` for messages. */
function intLabel(bits: number, signed: boolean): string {
  return `${signed ? 's' : 'u'}${bits}`;
}

/** Check an integer (number or bigint) is within [min, max]; returns it as a bigint. */
function toBigInt(v: unknown, min: bigint, max: bigint, what: string, path: string): bigint {
  let b: bigint;
  if (typeof v === 'bigint') b = v;
  else if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
  else if (typeof v === 'number' && Number.isInteger(v)) throw new CodecError(path, `${v} is not a safe integer; pass a bigint (${what})`);
  else fail(path, `an integer (${what})`, v);
  if (b < min || b > max) fail(path, `an integer in ${min}..${max} (${what})`, v);
  return b;
}

/** Check a number-valued integer is within [min, max]. */
function toNumber(v: unknown, min: number, max: number, what: string, path: string): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return v;
  if (typeof v === 'bigint' && v >= BigInt(min) && v <= BigInt(max)) return Number(v);
  if (typeof v === 'number' && Number.isInteger(v)) fail(path, `an integer in ${min}..${max} (${what})`, v);
  if (typeof v === 'bigint') fail(path, `an integer in ${min}..${max} (${what})`, v);
  return fail(path, `an integer (${what})`, v);
}

/** Read `n` (≤ 9) little-endian bytes as an unsigned bigint. */
function readLE(buf: Buffer, off: number, n: number): bigint {
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[off + i]!);
  return v;
}

function writeLE(buf: Buffer, off: number, n: number, v: bigint): void {
  for (let i = 0; i < n; i++, v >>= 8n) buf[off + i] = Number(v & 0xffn);
}

// ---------------------------------------------------------------- scalars

/** Integer scalar of `bits` bits; bigint-valued when the storage is 8 bytes or more. */
function intScalar(bits: number, signed: boolean, bigintValued: boolean): Scalar {
  const [min, max] = range(bits, signed);
  const what = intLabel(bits, signed);
  return {
    toRaw: (v, path) => BigInt.asUintN(bits, toBigInt(v, min, max, what, path)),
    fromRaw: (raw) => {
      const v = signed ? BigInt.asIntN(bits, raw) : raw;
      return bigintValued ? v : Number(v);
    },
  };
}

function boolScalar(): Scalar {
  return {
    toRaw: (v, path) => (typeof v === 'boolean' ? (v ? 1n : 0n) : fail(path, 'a boolean', v)),
    fromRaw: (raw) => raw !== 0n,
  };
}

/** Enum of `bits` bits: names in and out, numbers for unnamed values. */
function enumScalar(t: BtfEnum | BtfEnum64, bits: number): Scalar {
  const byName = new Map<string, bigint>();
  for (const v of t.values) byName.set(v.name, BigInt.asUintN(bits, BigInt(v.value)));
  const byRaw = new Map<bigint, string>();
  for (const [value, name] of enumNameByValue(t)) byRaw.set(BigInt.asUintN(bits, value), name);
  // Accept both signed and unsigned spellings of a value: clang 14 never marks enums signed.
  const [min] = range(bits, true);
  const [, max] = range(bits, false);
  const label = `enum ${t.name || '(anon)'}`;
  const names = (): string => {
    const all = [...byName.keys()];
    return all.length > 40 ? `${all.slice(0, 40).join(', ')}, ... (${all.length} in all)` : all.join(', ');
  };
  return {
    toRaw: (v, path) => {
      if (typeof v === 'string') {
        const raw = byName.get(v);
        if (raw === undefined) throw new CodecError(path, `unknown ${label} value ${show(v)} (valid: ${names()})`);
        return raw;
      }
      if (typeof v !== 'number' && typeof v !== 'bigint') fail(path, `an ${label} name or number`, v);
      return BigInt.asUintN(bits, toBigInt(v, min, max, label, path));
    },
    fromRaw: (raw) => {
      const name = byRaw.get(raw);
      if (name !== undefined) return name;
      const v = t.signed ? BigInt.asIntN(bits, raw) : raw;
      return bits > 32 ? v : Number(v);
    },
  };
}

/** The Scalar for a type that may be a bitfield, or undefined if it is not integer-like. */
function scalarFor(btf: Btf, id: number, bits: number): Scalar | undefined {
  const t = btf.type(btf.resolve(id));
  if (t.kind === 'INT') return t.bool ? boolScalar() : intScalar(bits, t.signed, t.size >= 8);
  if (t.kind === 'ENUM' || t.kind === 'ENUM64') return enumScalar(t, bits);
  return undefined;
}

/** A scalar occupying whole bytes, read and written little-endian through bigint. */
function scalarNode(s: Scalar, size: number): Node {
  return {
    size,
    read: (buf, off) => s.fromRaw(readLE(buf, off, size)),
    write: (v, buf, off, path) => writeLE(buf, off, size, s.toRaw(v, path)),
  };
}

/** A bitfield of `bits` bits at bit `bitOff` from the start of its struct. */
function bitfieldNode(s: Scalar, bitOff: number, bits: number): Node & { first: number; span: number } {
  const first = Math.floor(bitOff / 8);
  const shift = BigInt(bitOff % 8);
  const span = Math.ceil((bitOff % 8 + bits) / 8);
  const mask = ((1n << BigInt(bits)) - 1n) << shift;
  return {
    size: 0,
    first,
    span,
    read: (buf, off) => s.fromRaw((readLE(buf, off + first, span) & mask) >> shift),
    write: (v, buf, off, path) => {
      const old = readLE(buf, off + first, span);
      writeLE(buf, off + first, span, (old & ~mask) | ((s.toRaw(v, path) << shift) & mask));
    },
  };
}

/** A plain integer with a fast path through Buffer's accessors. */
function intNode(t: BtfInt): Node {
  if (t.bool) return scalarNode(boolScalar(), t.size);
  const what = intLabel(t.size * 8, t.signed);
  if (t.size >= 8) {
    const [min, max] = range(t.size * 8, t.signed);
    if (t.size === 8) {
      return {
        size: 8,
        read: t.signed ? (buf, off) => buf.readBigInt64LE(off) : (buf, off) => buf.readBigUInt64LE(off),
        write: (v, buf, off, path) => void buf.writeBigUInt64LE(BigInt.asUintN(64, toBigInt(v, min, max, what, path)), off),
      };
    }
    return scalarNode(intScalar(t.size * 8, t.signed, true), t.size);
  }
  const [min, max] = range(t.size * 8, t.signed).map(Number) as [number, number];
  const size = t.size;
  return {
    size,
    read: t.signed ? (buf, off) => buf.readIntLE(off, size) : (buf, off) => buf.readUIntLE(off, size),
    write: t.signed
      ? (v, buf, off, path) => void buf.writeIntLE(toNumber(v, min, max, what, path), off, size)
      : (v, buf, off, path) => void buf.writeUIntLE(toNumber(v, min, max, what, path), off, size),
  };
}

/** __be16/__be32 (number) and __be64 (bigint): host-order values stored big-endian. */
function bigEndianNode(size: number): Node {
  const what = `big-endian u${size * 8}`;
  if (size === 8) {
    const [min, max] = range(64, false);
    return {
      size,
      read: (buf, off) => buf.readBigUInt64BE(off),
      write: (v, buf, off, path) => void buf.writeBigUInt64BE(toBigInt(v, min, max, what, path), off),
    };
  }
  const max = 2 ** (size * 8) - 1;
  return {
    size,
    read: (buf, off) => buf.readUIntBE(off, size),
    write: (v, buf, off, path) => void buf.writeUIntBE(toNumber(v, 0, max, what, path), off, size),
  };
}

const IPV4 = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;
const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/i;

/** sl_ipv4_t: a dotted quad, stored in network byte order. */
function ipv4Node(): Node {
  const expected = 'an IPv4 address like 10.0.0.1';
  return {
    size: 4,
    read: (buf, off) => `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`,
    write: (v, buf, off, path) => {
      const m = typeof v === 'string' ? IPV4.exec(v) : null;
      if (m === null) fail(path, expected, v);
      for (let i = 0; i < 4; i++) {
        const octet = Number(m[i + 1]);
        if (octet > 255) fail(path, expected, v);
        buf[off + i] = octet;
      }
    },
  };
}

/** sl_mac_t: six bytes as aa:bb:cc:dd:ee:ff. */
function macNode(): Node {
  return {
    size: 6,
    read: (buf, off) => buf.toString('hex', off, off + 6).replace(/(..)(?!$)/g, '$1:'),
    write: (v, buf, off, path) => {
      if (typeof v !== 'string' || !MAC.test(v)) fail(path, 'a MAC address like aa:bb:cc:dd:ee:ff', v);
      Buffer.from(v.replace(/:/g, ''), 'hex').copy(buf, off);
    },
  };
}

/** char[n]: a NUL-terminated UTF-8 string of at most n bytes. */
function charArrayNode(n: number): Node {
  return {
    size: n,
    read: (buf, off) => {
      const nul = buf.subarray(off, off + n).indexOf(0);
      return buf.toString('utf8', off, nul < 0 ? off + n : off + nul);
    },
    write: (v, buf, off, path) => {
      if (typeof v !== 'string') fail(path, `a string (char[${n}])`, v);
      const bytes = Buffer.from(v, 'utf8');
      if (bytes.length > n) fail(path, `a string of at most ${n} bytes (char[${n}])`, v);
      if (bytes.includes(0)) fail(path, 'a string without NUL characters', v);
      bytes.copy(buf, off);
    },
  };
}

function floatNode(size: number, name: string): Node {
  if (size !== 4 && size !== 8) throw new Error(`BTF: float type '${name}' of ${size} bytes is not supported`);
  const check = (v: unknown, path: string): number => (typeof v === 'number' ? v : fail(path, `a number (${name})`, v));
  return size === 4
    ? { size, read: (buf, off) => buf.readFloatLE(off), write: (v, buf, off, path) => void buf.writeFloatLE(check(v, path), off) }
    : { size, read: (buf, off) => buf.readDoubleLE(off), write: (v, buf, off, path) => void buf.writeDoubleLE(check(v, path), off) };
}

function ptrNode(): Node {
  const [min, max] = range(64, false);
  return {
    size: 8,
    read: (buf, off) => buf.readBigUInt64LE(off),
    write: (v, buf, off, path) => void buf.writeBigUInt64LE(toBigInt(v, min, max, 'pointer', path), off),
  };
}

function arrayNode(elem: Node, n: number, label: string): Node {
  const es = elem.size;
  return {
    size: es * n,
    read: (buf, off) => {
      const out = new Array<unknown>(n);
      for (let i = 0; i < n; i++) out[i] = elem.read(buf, off + i * es);
      return out;
    },
    write: (v, buf, off, path) => {
      if (!Array.isArray(v) && !(ArrayBuffer.isView(v) && !(v instanceof DataView))) fail(path, `an array of ${n} (${label})`, v);
      const a = v as ArrayLike<unknown>;
      if (a.length !== n) throw new CodecError(path, `expected an array of exactly ${n} elements (${label}), got ${a.length}`);
      for (let i = 0; i < n; i++) elem.write(a[i], buf, off + i * es, `${path}[${i}]`);
    },
  };
}

// ---------------------------------------------------------------- structs

/** One flattened member: a name, how to read/write it, and which union branches it belongs to. */
interface Field {
  readonly name: string;
  readonly node: Node;
  /** Byte offset from the start of the outermost struct (bitfields: 0, they carry their own). */
  readonly off: number;
  /** [union group, branch] pairs from the outside in: fields in different branches of a group conflict. */
  readonly branches: ReadonlyArray<readonly [number, number]>;
}

/** A struct, union or datasec as a list of flattened fields. */
function compositeNode(fields: Field[], size: number, label: string, rootUnion: boolean): Node {
  const byName = new Map(fields.map((f) => [f.name, f]));
  const fieldList = (): string => [...byName.keys()].join(', ') || 'none';
  return {
    size,
    read: (buf, off) => {
      const out: Record<string, unknown> = {};
      for (const f of fields) out[f.name] = f.node.read(buf, off + f.off);
      return out;
    },
    write: (v, buf, off, path) => {
      if (!isRecord(v)) fail(path, `an object (${label})`, v);
      const chosen = new Map<number, string>(); // union group -> "branch:field"
      let given = 0;
      for (const key of Object.keys(v)) {
        const f = byName.get(key);
        if (f === undefined) throw new CodecError(path, `no field "${key}" in ${label} (fields: ${fieldList()})`);
        const fv = v[key];
        if (fv === undefined) continue;
        given++;
        for (const [group, branch] of f.branches) {
          const prev = chosen.get(group);
          if (prev === undefined) chosen.set(group, `${branch}:${key}`);
          else if (!prev.startsWith(`${branch}:`)) {
            throw new CodecError(path, `fields "${prev.slice(prev.indexOf(':') + 1)}" and "${key}" share union bytes; give only one`);
          }
        }
        f.node.write(fv, buf, off + f.off, `${path}.${key}`);
      }
      if (rootUnion && given === 0) throw new CodecError(path, `expected exactly one member of ${label} (members: ${fieldList()}), got none`);
    },
  };
}

// ---------------------------------------------------------------- compiler

const SEMANTIC_TYPEDEFS = new Set(['sl_ipv4_t', 'sl_mac_t', '__be16', '__be32', '__be64']);

/** Compiles and memoizes nodes for one Btf. */
class Compiler {
  private readonly nodes = new Map<number, Node>();
  private readonly building = new Set<number>();
  private nextGroup = 0;

  constructor(readonly btf: Btf) {}

  node(id: number): Node {
    const hit = this.nodes.get(id);
    if (hit !== undefined) return hit;
    if (this.building.has(id)) throw new Error(`BTF: type ${this.btf.typeName(id)} [${id}] contains itself (not through a pointer)`);
    this.building.add(id);
    try {
      const n = this.build(this.btf.type(id));
      this.nodes.set(id, n);
      return n;
    } finally {
      this.building.delete(id);
    }
  }

  private build(t: BtfType): Node {
    switch (t.kind) {
      case 'TYPEDEF':
        return (SEMANTIC_TYPEDEFS.has(t.name) ? this.semantic(t.name, t.type) : undefined) ?? this.node(t.type);
      case 'CONST': case 'VOLATILE': case 'RESTRICT': case 'TYPE_TAG': case 'VAR':
        return this.node(t.type);
      case 'INT': return intNode(t);
      case 'ENUM': case 'ENUM64': {
        if (![1, 2, 4, 8].includes(t.size)) throw new Error(`BTF: enum '${t.name}' has unsupported size ${t.size}`);
        return scalarNode(enumScalar(t, t.size * 8), t.size);
      }
      case 'PTR': return ptrNode();
      case 'FLOAT': return floatNode(t.size, t.name);
      case 'ARRAY': {
        const elem = this.btf.type(this.btf.resolve(t.elemType));
        if (elem.kind === 'INT' && elem.size === 1 && (elem.char || elem.name === 'char')) return charArrayNode(t.nelems);
        return arrayNode(this.node(t.elemType), t.nelems, this.btf.typeName(t.id));
      }
      case 'STRUCT': case 'UNION': {
        const fields: Field[] = [];
        this.flatten(t, 0, t.size, [], fields, t.kind === 'UNION' ? this.nextGroup++ : undefined);
        return compositeNode(fields, t.size, `${t.kind.toLowerCase()} ${t.name || '(anon)'}`, t.kind === 'UNION');
      }
      case 'DATASEC': {
        if (t.size === 0 && t.vars.length > 0) {
          throw new Error(`BTF: DATASEC '${t.name}' has size 0: not laid out yet (raw .o BTF; use Btf.fromElf or libbpf's BTF)`);
        }
        const fields = t.vars.map((v): Field => {
          const vt = this.btf.type(v.type);
          const node = this.node(v.type);
          if (v.offset + node.size > t.size) throw new Error(`BTF: DATASEC '${t.name}' variable '${vt.name}' overruns the section`);
          return { name: vt.name, node, off: v.offset, branches: [] };
        });
        return compositeNode(fields, t.size, `section ${t.name}`, false);
      }
      default:
        throw new Error(`BTF: cannot encode or decode values of type ${this.btf.typeName(t.id)} [${t.id}] (${t.kind})`);
    }
  }

  /** The node for a semantic typedef, or undefined if its underlying type does not fit the meaning. */
  private semantic(name: string, target: number): Node | undefined {
    const t = this.btf.type(this.btf.resolve(target));
    switch (name) {
      case 'sl_ipv4_t': return t.kind === 'INT' && t.size === 4 ? ipv4Node() : undefined;
      case 'sl_mac_t': {
        if (t.kind !== 'ARRAY' || t.nelems !== 6) return undefined;
        const e = this.btf.type(this.btf.resolve(t.elemType));
        return e.kind === 'INT' && e.size === 1 ? macNode() : undefined;
      }
      default: {
        const size = Number(name.slice(4)) / 8; // __be16 -> 2
        return t.kind === 'INT' && t.size === size ? bigEndianNode(size) : undefined;
      }
    }
  }

  /**
   * Append the fields of `comp` (at `baseBits` within a composite of `limit`
   * bytes) to `out`, flattening anonymous struct/union members. `group` is set
   * when `comp` is a union, whose members are mutually exclusive on encode.
   */
  private flatten(comp: BtfComposite, baseBits: number, limit: number, branches: Field['branches'], out: Field[], group: number | undefined): void {
    const where = `${comp.kind.toLowerCase()} ${comp.name || '(anon)'}`;
    comp.members.forEach((m, i) => {
      const mine = group === undefined ? branches : [...branches, [group, i] as const];
      const bitOff = baseBits + m.bitOffset;
      const target = this.btf.type(this.btf.resolve(m.type));
      if (m.name === '') {
        if (target.kind === 'STRUCT' || target.kind === 'UNION') {
          if (bitOff % 8 !== 0 || bitOff / 8 + target.size > limit) throw new Error(`BTF: ${where} anonymous member ${i} is misplaced`);
          this.flatten(target, bitOff, limit, mine, out, target.kind === 'UNION' ? this.nextGroup++ : undefined);
        }
        return; // an unnamed bitfield is padding
      }
      if (out.some((f) => f.name === m.name)) throw new Error(`BTF: ${where} has two members named '${m.name}' after flattening`);
      const bf = this.btf.memberBitfield(m);
      if (bf !== undefined) {
        const s = scalarFor(this.btf, m.type, bf.bits);
        if (s === undefined) throw new Error(`BTF: ${where} bitfield '${m.name}' has non-integer type ${this.btf.typeName(m.type)}`);
        const b = bitfieldNode(s, baseBits + bf.bitOffset, bf.bits);
        if (b.first + b.span > limit) throw new Error(`BTF: ${where} bitfield '${m.name}' overruns the ${limit}-byte type`);
        out.push({ name: m.name, node: b, off: 0, branches: mine });
        return;
      }
      if (bitOff % 8 !== 0) throw new Error(`BTF: ${where} member '${m.name}' is at bit ${bitOff}, not on a byte boundary`);
      const node = this.node(m.type);
      if (bitOff / 8 + node.size > limit) throw new Error(`BTF: ${where} member '${m.name}' overruns the ${limit}-byte type`);
      out.push({ name: m.name, node, off: bitOff / 8, branches: mine });
    });
  }
}

// ---------------------------------------------------------------- describe

/** C-like one-line rendering: bodies of structs, unions and enums, expanded inline when anonymous. */
function describeType(btf: Btf, id: number, depth = 0): string {
  if (depth > 16) return btf.typeName(id);
  const t = btf.type(id);
  switch (t.kind) {
    case 'STRUCT': case 'UNION': {
      const members = t.members.map((m) => {
        const mt = btf.type(m.type);
        const bf = btf.memberBitfield(m);
        const bits = bf === undefined ? '' : `:${bf.bits}`;
        const inline = (mt.kind === 'STRUCT' || mt.kind === 'UNION' || mt.kind === 'ENUM' || mt.kind === 'ENUM64') && mt.name === '';
        const decl = inline ? `${describeType(btf, m.type, depth + 1)}${m.name ? ` ${m.name}` : ''}` : btf.declare(m.type, m.name);
        return `${decl}${bits};`;
      });
      return `${t.kind.toLowerCase()} ${t.name ? `${t.name} ` : ''}{ ${members.join(' ')} }`;
    }
    case 'ENUM': case 'ENUM64':
      return `enum ${t.name ? `${t.name} ` : ''}{ ${t.values.map((v) => `${v.name} = ${v.value}`).join(', ')} }`;
    case 'TYPEDEF': {
      const target = btf.type(t.type);
      const anon = (target.kind === 'STRUCT' || target.kind === 'UNION' || target.kind === 'ENUM' || target.kind === 'ENUM64') && target.name === '';
      return anon ? `typedef ${describeType(btf, t.type, depth + 1)} ${t.name}` : `typedef ${btf.declare(t.type, t.name)}`;
    }
    case 'VAR': return btf.declare(t.type, t.name);
    case 'DATASEC':
      return `SEC("${t.name}") { ${t.vars.map((v) => `${btf.typeName(v.type)} /* +${v.offset} */;`).join(' ')} }`;
    default: return btf.typeName(id);
  }
}

/** The name errors start their path with: `sl_endpoint`, `sl_mac_t`, `__u8 [6]`. */
function rootPath(btf: Btf, id: number): string {
  const t = btf.type(id);
  if (t.kind === 'VAR' || ((t.kind === 'STRUCT' || t.kind === 'UNION' || t.kind === 'ENUM' || t.kind === 'ENUM64') && t.name)) return t.name;
  if (t.kind === 'DATASEC') return t.name;
  return btf.typeName(id);
}

// ---------------------------------------------------------------- public API

/** Wrap a compiled node with bounds checks and zero-filling. */
function makeCodec(node: Node, root: string, describe: () => string): Codec {
  const size = node.size;
  const check = (len: number, offset: number, what: string): void => {
    if (!Number.isInteger(offset) || offset < 0 || offset + size > len) {
      throw new RangeError(`${root}: ${what} needs ${size} bytes at offset ${offset}, but the buffer has ${len}`);
    }
  };
  let described: string | undefined;
  return Object.freeze({
    size,
    encode(value: unknown): Buffer {
      const buf = Buffer.alloc(size);
      node.write(value, buf, 0, root);
      return buf;
    },
    encodeInto(value: unknown, buf: Buffer, offset: number): void {
      const b = asBuffer(buf);
      check(b.length, offset, 'encode');
      b.fill(0, offset, offset + size);
      node.write(value, b, offset, root);
    },
    decode(buf: Uint8Array, offset = 0): unknown {
      const b = asBuffer(buf);
      check(b.length, offset, 'decode');
      return node.read(b, offset);
    },
    describe(): string {
      described ??= describe();
      return described;
    },
  });
}

const compilers = new WeakMap<Btf, { compiler: Compiler; codecs: Map<number, Codec> }>();

/**
 * The codec for values of BTF type `typeId` (a VAR or DATASEC id works too:
 * a DATASEC decodes to an object keyed by variable name). Built once per
 * (btf, typeId). Throws if the type has no value representation (void,
 * functions, forward declarations) or its layout is inconsistent.
 */
export function codecFor(btf: Btf, typeId: number): Codec {
  let entry = compilers.get(btf);
  if (entry === undefined) {
    entry = { compiler: new Compiler(btf), codecs: new Map() };
    compilers.set(btf, entry);
  }
  const hit = entry.codecs.get(typeId);
  if (hit !== undefined) return hit;
  const codec = makeCodec(entry.compiler.node(typeId), rootPath(btf, typeId), () => describeType(btf, typeId));
  entry.codecs.set(typeId, codec);
  return codec;
}

/**
 * The codec for a per-CPU map value: one `inner` value per possible CPU, each
 * at a stride of `inner.size` rounded up to 8 bytes (as the kernel lays them
 * out). Decodes to an array of `ncpus` values; encodes such an array, or any
 * non-array value replicated to every CPU.
 */
export function percpuCodec(inner: Codec, ncpus: number): Codec {
  if (!Number.isInteger(ncpus) || ncpus < 1) throw new RangeError(`percpuCodec: ncpus must be a positive integer, got ${ncpus}`);
  const stride = Math.ceil(inner.size / 8) * 8;
  const size = stride * ncpus;
  const label = `${inner.describe()} [per-CPU x${ncpus}]`;
  const check = (len: number, offset: number, what: string): void => {
    if (!Number.isInteger(offset) || offset < 0 || offset + size > len) {
      throw new RangeError(`per-CPU ${what} needs ${size} bytes (${ncpus} CPUs x ${stride}) at offset ${offset}, but the buffer has ${len}`);
    }
  };
  const encodeInto = (value: unknown, buf: Buffer, offset: number): void => {
    const b = asBuffer(buf);
    check(b.length, offset, 'encode');
    let values: readonly unknown[];
    if (Array.isArray(value)) {
      if (value.length !== ncpus) throw new CodecError('per-CPU value', `expected one value per CPU (${ncpus}), got ${value.length}`);
      values = value;
    } else {
      values = new Array<unknown>(ncpus).fill(value);
    }
    b.fill(0, offset, offset + size);
    values.forEach((v, cpu) => {
      try {
        inner.encodeInto(v, b, offset + cpu * stride);
      } catch (e) {
        if (e instanceof CodecError) throw new CodecError(`cpu ${cpu}: ${e.path}`, e.problem);
        throw e;
      }
    });
  };
  return Object.freeze({
    size,
    encode(value: unknown): Buffer {
      const buf = Buffer.alloc(size);
      encodeInto(value, buf, 0);
      return buf;
    },
    encodeInto,
    decode(buf: Uint8Array, offset = 0): unknown[] {
      check(buf.length, offset, 'decode');
      const out = new Array<unknown>(ncpus);
      for (let cpu = 0; cpu < ncpus; cpu++) out[cpu] = inner.decode(buf, offset + cpu * stride);
      return out;
    },
    describe: () => label,
  });
}
