/**
 * BTF and ELF parsing against real clang output: fixtures under
 * test/fixtures/btf are compiled at test time and every type is cross-checked
 * with `bpftool btf dump format raw`. Malformed blobs come from slicing and
 * corrupting a real blob, and from a tiny hand-written BTF builder.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileBpf } from '../../src/toolchain/clang.js';
import { Btf, type BtfType } from '../../src/bpf/btf.js';
import { listElfSections, readElfSection, readElfSymbols } from '../../src/bpf/elf.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURES = join(ROOT, 'test/fixtures/btf');
const work = mkdtempSync(join(tmpdir(), 'sluice-btf-test-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

/** Compile test/fixtures/btf/<name>.c as the datapath is compiled. */
function compile(name: string): { path: string; elf: Buffer } {
  const path = join(work, `${name}.o`);
  compileBpf({ source: join(FIXTURES, `${name}.c`), output: path, includeDirs: [join(ROOT, 'include')] });
  return { path, elf: readFileSync(path) };
}

function btfSection(elf: Uint8Array): Uint8Array {
  const raw = readElfSection(elf, '.BTF');
  if (raw === undefined) throw new Error('fixture has no .BTF section');
  return raw;
}

/** Render types exactly as `bpftool btf dump file X format raw` does. */
function bpftoolRaw(btf: Btf): string {
  const q = (s: string): string => `'${s || '(anon)'}'`;
  const lines: string[] = [];
  for (let id = 1; id <= btf.count; id++) {
    const ty = btf.type(id);
    const head = `[${id}] ${ty.kind} ${q(ty.name)}`;
    switch (ty.kind) {
      case 'INT': {
        const enc = ty.signed ? 'SIGNED' : ty.char ? 'CHAR' : ty.bool ? 'BOOL' : '(none)';
        lines.push(`${head} size=${ty.size} bits_offset=${ty.bitOffset} nr_bits=${ty.bits} encoding=${enc}`);
        break;
      }
      case 'PTR': case 'TYPEDEF': case 'CONST': case 'VOLATILE': case 'RESTRICT': case 'TYPE_TAG':
        lines.push(`${head} type_id=${ty.type}`);
        break;
      case 'ARRAY':
        lines.push(`${head} type_id=${ty.elemType} index_type_id=${ty.indexType} nr_elems=${ty.nelems}`);
        break;
      case 'STRUCT': case 'UNION':
        lines.push(`${head} size=${ty.size} vlen=${ty.members.length}`);
        for (const m of ty.members) {
          lines.push(`\t${q(m.name)} type_id=${m.type} bits_offset=${m.bitOffset}${m.bitfieldSize ? ` bitfield_size=${m.bitfieldSize}` : ''}`);
        }
        break;
      case 'ENUM': case 'ENUM64':
        lines.push(`${head} encoding=${ty.signed ? 'SIGNED' : 'UNSIGNED'} size=${ty.size} vlen=${ty.values.length}`);
        for (const v of ty.values) lines.push(`\t${q(v.name)} val=${v.value}${ty.kind === 'ENUM64' ? (ty.signed ? 'LL' : 'ULL') : ''}`);
        break;
      case 'FWD': lines.push(`${head} fwd_kind=${ty.fwdKind}`); break;
      case 'FUNC': lines.push(`${head} type_id=${ty.type} linkage=${ty.linkage}`); break;
      case 'FUNC_PROTO':
        lines.push(`${head} ret_type_id=${ty.returnType} vlen=${ty.params.length}`);
        for (const p of ty.params) lines.push(`\t${q(p.name)} type_id=${p.type}`);
        break;
      case 'VAR': lines.push(`${head} type_id=${ty.type}, linkage=${ty.linkage}`); break;
      case 'DATASEC':
        lines.push(`${head} size=${ty.size} vlen=${ty.vars.length}`);
        for (const v of ty.vars) {
          const vt = btf.type(v.type);
          lines.push(`\ttype_id=${v.type} offset=${v.offset} size=${v.size} (${vt.kind} ${q(vt.name)})`);
        }
        break;
      case 'FLOAT': lines.push(`${head} size=${ty.size}`); break;
      case 'DECL_TAG': lines.push(`${head} type_id=${ty.type} component_idx=${ty.componentIdx}`); break;
      case 'VOID': break;
    }
  }
  return lines.join('\n');
}

function bpftool(path: string): string {
  return execFileSync('bpftool', ['btf', 'dump', 'file', path, 'format', 'raw'], { maxBuffer: 512 << 20 }).toString().trimEnd();
}

/** A tiny BTF writer for shapes clang 14 cannot emit and for malformed blobs. */
class BtfBuilder {
  private strs = Buffer.from([0]);
  private recs: Buffer[] = [];

  str(s: string): number {
    if (s === '') return 0;
    const off = this.strs.length;
    this.strs = Buffer.concat([this.strs, Buffer.from(`${s}\0`)]);
    return off;
  }

  /** Append a type; returns its id. `extra` is u32 words after the 12-byte record. */
  add(kind: number, name: string, vlen: number, kflag: boolean, sizeOrType: number, extra: number[] = []): number {
    const b = Buffer.alloc(12 + extra.length * 4);
    b.writeUInt32LE(this.str(name), 0);
    b.writeUInt32LE(((kflag ? 1 : 0) << 31 | kind << 24 | vlen) >>> 0, 4);
    b.writeUInt32LE(sizeOrType >>> 0, 8);
    extra.forEach((w, i) => b.writeUInt32LE(w >>> 0, 12 + i * 4));
    this.recs.push(b);
    return this.recs.length;
  }

  build(): Buffer {
    const types = Buffer.concat(this.recs);
    const hdr = Buffer.alloc(24);
    hdr.writeUInt16LE(0xeb9f, 0);
    hdr.writeUInt8(1, 2);
    hdr.writeUInt32LE(24, 4);
    hdr.writeUInt32LE(0, 8);
    hdr.writeUInt32LE(types.length, 12);
    hdr.writeUInt32LE(types.length, 16);
    hdr.writeUInt32LE(this.strs.length, 20);
    return Buffer.concat([hdr, types, this.strs]);
  }
}

const sluice = compile('sluice_types');
const shapes = compile('shapes');

function byName<K extends BtfType['kind']>(btf: Btf, name: string, kind: K): BtfType & { kind: K } {
  const ty = btf.findByName(name, kind);
  if (ty === undefined) throw new Error(`no ${kind} ${name}`);
  return ty as BtfType & { kind: K };
}

t.test('elf reader', async (t) => {
  const sections = listElfSections(shapes.elf).map((s) => s.name);
  t.ok(sections.includes('.BTF') && sections.includes('.rodata') && sections.includes('.bss'), 'lists sections');
  t.equal(readElfSection(shapes.elf, '.no-such-section'), undefined, 'missing section is undefined');
  const ro = readElfSection(shapes.elf, '.rodata');
  t.equal(ro?.length, 24, '.rodata is 24 bytes (4+4+8+8)');
  t.equal(Buffer.from(ro!).readUInt32LE(0), 42, '.rodata holds fx_ro_count = 42');
  t.same(readElfSection(shapes.elf, '.bss'), new Uint8Array(listElfSections(shapes.elf).find((s) => s.name === '.bss')!.size), '.bss (NOBITS) reads as zeros');
  const syms = readElfSymbols(shapes.elf);
  t.match(syms.find((s) => s.name === 'fx_ro_big'), { section: '.rodata', value: 16, size: 8, bind: 1, type: 1 });

  t.throws(() => readElfSection(Buffer.from('not an elf file at all'), '.BTF'), /not an ELF file/);
  t.throws(() => readElfSection(Buffer.alloc(0), '.BTF'), /not an ELF file/);
  const elf32 = Buffer.from(shapes.elf);
  elf32[4] = 1;
  t.throws(() => readElfSection(elf32, '.BTF'), /not a 64-bit ELF/);
  const bigEndian = Buffer.from(shapes.elf);
  bigEndian[5] = 2;
  t.throws(() => readElfSection(bigEndian, '.BTF'), /not a little-endian ELF/);
  t.throws(() => readElfSection(shapes.elf.subarray(0, 40), '.BTF'), /truncated/);
  t.throws(() => readElfSection(shapes.elf.subarray(0, shapes.elf.length - 100), '.BTF'), /ELF: .*(truncated|past end)/);
});

t.test('matches bpftool for every type of the fixtures', async (t) => {
  for (const f of [sluice, shapes]) {
    const btf = Btf.parse(btfSection(f.elf));
    t.equal(bpftoolRaw(btf), bpftool(f.path), `${f.path}: identical raw dump`);
  }
  // After layout, the DATASECs look like libbpf's view (bpftool on the .o shows zeros).
  const laid = Btf.fromElf(shapes.elf);
  t.match(bpftoolRaw(laid), /\[\d+\] DATASEC '.rodata' size=24 vlen=4\n\ttype_id=\d+ offset=0 size=4 \(VAR 'fx_ro_count'\)\n\ttype_id=\d+ offset=4 size=4 \(VAR 'fx_ro_chain'\)\n\ttype_id=\d+ offset=8 size=8 \(VAR 'fx_ro_name'\)\n\ttype_id=\d+ offset=16 size=8 \(VAR 'fx_ro_big'\)/);
});

const VMLINUX = '/sys/kernel/btf/vmlinux';
function readable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

t.test('the kernel BTF matches bpftool', { skip: readable(VMLINUX) ? false : `${VMLINUX} is not readable` }, async (t) => {
  const path = VMLINUX;
  const btf = Btf.parse(readFileSync(path));
  t.equal(bpftoolRaw(btf), bpftool(path), 'identical raw dump of every kernel type');
  const skb = byName(btf, 'sk_buff', 'STRUCT');
  t.equal(btf.sizeof(skb.id), skb.size, 'sizeof(struct sk_buff)');
  t.ok(btf.count > 1000, `${btf.count} types`);
});

t.test('struct sl_endpoint and friends from include/sluice/types.h', async (t) => {
  const btf = Btf.parse(btfSection(sluice.elf));
  const ep = byName(btf, 'sl_endpoint', 'STRUCT');
  t.equal(ep.size, 28);
  t.equal(btf.sizeof(ep.id), 28);
  t.same(ep.members.map((m) => [m.name, m.bitOffset / 8, m.bitfieldSize]), [
    ['ifindex', 0, 0], ['id', 4, 0], ['mac', 8, 0], ['host_mac', 14, 0], ['identity', 20, 0], ['flags', 24, 0],
  ]);
  t.equal(btf.typeName(ep.members[2]!.type), 'sl_mac_t');
  t.equal(btf.sizeof(ep.members[2]!.type), 6, 'sizeof(sl_mac_t)');
  const mac = btf.type(btf.resolve(ep.members[2]!.type));
  t.match(mac, { kind: 'ARRAY', nelems: 6 });
  t.equal(btf.typeName(mac.id), '__u8 [6]');

  const ip = byName(btf, 'sl_ipv4_t', 'TYPEDEF');
  t.equal(btf.typeName(ip.type), '__be32', 'sl_ipv4_t is a __be32');
  t.match(btf.type(btf.resolve(ip.id)), { kind: 'INT', name: 'unsigned int', size: 4, signed: false, bits: 32 });
  t.equal(btf.findByName('sl_ipv4_t')?.id, ip.id, 'findByName without a kind');
  t.equal(btf.findByName('sl_ipv4_t', 'STRUCT'), undefined, 'findByName with the wrong kind');
  t.equal(btf.findByName('no_such_type'), undefined);
  t.equal(btf.sizeof(byName(btf, 'sl_metrics_key', 'STRUCT').id), 8);
  t.equal(btf.sizeof(byName(btf, 'sl_metrics_val', 'STRUCT').id), 16);
  t.equal(btf.type(0).kind, 'VOID', 'type 0 is void');
  t.throws(() => btf.type(btf.count + 1), /type id \d+ is out of range/);
  t.throws(() => btf.type(-1), /out of range/);
  t.throws(() => btf.sizeof(0), /has no size/);
});

t.test('enumValues: names for enum sl_reason', async (t) => {
  const btf = Btf.parse(btfSection(sluice.elf));
  const reasons = btf.enumValues('sl_reason');
  t.equal(reasons.get(0), 'SL_REASON_UNSPEC');
  t.equal(reasons.get(1), 'SL_REASON_FORWARD_LOCAL');
  t.equal(reasons.get(128), 'SL_REASON_DROP_MALFORMED', 'SL_DROP_BASE (a marker) loses to the SL_REASON_ family');
  t.equal(reasons.get(129), 'SL_REASON_DROP_SPOOFED_IP');
  t.equal(reasons.get(133), 'SL_REASON_DROP_NO_ENDPOINT');
  t.equal(reasons.get(5), 'SL_REASON_FORWARD_TUNNEL');
  t.equal(reasons.get(136), 'SL_REASON_DROP_REDIRECT');
  t.equal(reasons.get(255), 'SL_REASON_MAX');
  t.equal(reasons.get(139), 'SL_REASON_DROP_TUNNEL_PORT');
  t.equal(reasons.get(140), 'SL_REASON_DROP_TUNNEL_HOST');
  t.equal(reasons.get(9), 'SL_REASON_OVERLAY_DEVICE');
  t.equal(reasons.get(141), 'SL_REASON_DROP_TUNNEL_SOURCE');
  t.equal(reasons.get(142), 'SL_REASON_DROP_TUNNEL_INNER_SOURCE');
  t.equal(reasons.get(143), 'SL_REASON_DROP_NODE_MAC');
  t.equal(reasons.get(10), 'SL_REASON_MASQUERADE');
  t.equal(reasons.get(144), 'SL_REASON_DROP_NAT_NO_PORT');
  t.equal(reasons.get(12), 'SL_REASON_FORWARD_WORLD');
  t.equal(reasons.get(13), 'SL_REASON_SERVICE');
  t.equal(reasons.get(148), 'SL_REASON_DROP_SVC_CONFLICT');
  t.equal(reasons.size, 37, '38 enumerators, 37 distinct values');
  t.same([...btf.enumValues('sl_dir')], [[0, 'SL_DIR_EGRESS'], [1, 'SL_DIR_INGRESS']]);
  const en = byName(btf, 'sl_reason', 'ENUM');
  t.equal(en.size, 4);
  t.equal(en.signed, false, 'clang 14 marks no enum signed');
  t.throws(() => btf.enumValues('sl_nope'), /no enum named 'sl_nope'/);
});

t.test('shapes: bitfields, anonymous members, arrays, tags, functions', async (t) => {
  const btf = Btf.parse(btfSection(shapes.elf));
  const bits = byName(btf, 'fx_bits', 'STRUCT');
  t.equal(bits.size, 16);
  t.same(bits.members.map((m) => [m.name, m.bitOffset, m.bitfieldSize]), [
    ['a', 0, 3], ['b', 3, 5], ['c', 8, 7], ['d', 15, 17], ['e', 32, 0], ['f', 40, 1], ['g', 64, 40],
  ], 'clang emits kind_flag bitfields: offset and width in the member');
  t.same(btf.memberBitfield(bits.members[3]!), { bitOffset: 15, bits: 17 });
  t.equal(btf.memberBitfield(bits.members[4]!), undefined, 'a plain member is not a bitfield');
  t.match(btf.type(btf.resolve(bits.members[2]!.type)), { kind: 'INT', signed: true }, '__s32 c:7 is signed');
  t.match(btf.type(btf.resolve(bits.members[5]!.type)), { kind: 'INT', name: '_Bool', bool: true });

  const anon = byName(btf, 'fx_anon', 'STRUCT');
  t.same(anon.members.map((m) => [m.name, m.bitOffset / 8]), [['kind', 0], ['', 4], ['', 8], ['tail', 16]]);
  t.match(btf.type(anon.members[1]!.type), { kind: 'UNION', name: '', size: 4 });

  const node = byName(btf, 'fx_node', 'STRUCT');
  const member = (n: string): number => node.members.find((m) => m.name === n)!.type;
  t.equal(node.size, 104);
  t.equal(btf.declare(member('next'), 'next'), 'struct fx_node *next', 'self-referential pointer');
  t.equal(btf.declare(member('name'), 'name'), 'char name[16]');
  t.equal(btf.declare(member('grid'), 'grid'), '__u8 grid[2][3]');
  t.equal(btf.sizeof(member('grid')), 6);
  t.equal(btf.typeName(member('cv')), 'const volatile __u16');
  t.equal(btf.typeName(member('chained')), 'fx_u32_chain_t');
  t.match(btf.type(btf.resolve(member('chained'))), { kind: 'INT', name: 'unsigned int' }, 'typedef chain resolves');
  t.match(btf.type(member('ratio')), { kind: 'FLOAT', size: 4 });
  t.match(btf.type(member('precise')), { kind: 'FLOAT', size: 8 });

  const big = btf.type(btf.resolve(member('bigenum')));
  if (big.kind === 'ENUM64') {
    t.same(big.values.map((v) => v.value), [0n, 0xfedcba9876543210n], 'clang >= 15: ENUM64');
  } else {
    t.match(big, { kind: 'ENUM', size: 8 }, 'clang 14: a size-8 ENUM');
    t.same(big.kind === 'ENUM' ? big.values.map((v) => v.value) : [], [0, 0x76543210], 'clang 14 keeps only the low 32 bits');
  }
  t.same(byName(btf, 'fx_small', 'ENUM').values.map((v) => v.value), [0xffffffff, 0, 1], 'clang 14: -1 is stored as unsigned 0xffffffff');
  t.match(byName(btf, 'fx_packed', 'ENUM'), { size: 1 });

  t.match(btf.findByName('fx_opaque'), { kind: 'FWD', fwdKind: 'struct' });
  t.match(btf.findByName('fx_opaque_u'), { kind: 'FWD', fwdKind: 'union' });
  t.throws(() => btf.sizeof(btf.findByName('fx_opaque')!.id), /FWD 'fx_opaque'.*has no size/);
  const restrict = btf.type(byName(btf, 'fx_restrict_ptr', 'VAR').type);
  t.equal(restrict.kind, 'RESTRICT');
  t.equal(btf.typeName(restrict.id), '__u32 *restrict');

  const tagged = byName(btf, 'fx_tagged', 'STRUCT');
  const tags = [];
  for (let id = 1; id <= btf.count; id++) {
    const ty = btf.type(id);
    if (ty.kind === 'DECL_TAG') tags.push([ty.name, ty.type, ty.componentIdx]);
  }
  t.same(tags, [['struct_tag', tagged.id, -1], ['member_tag', tagged.id, 0]]);
  const p = btf.type(tagged.members[1]!.type);
  t.equal(p.kind, 'PTR');
  t.match(btf.type(p.kind === 'PTR' ? p.type : 0), { kind: 'TYPE_TAG', name: 'user' });
  t.equal(btf.declare(p.id, 'p'), 'int *p', 'type tags are transparent when printing');

  const fn = byName(btf, 'fx_func', 'FUNC');
  t.equal(fn.linkage, 'global');
  t.match(btf.type(fn.type), { kind: 'FUNC_PROTO', params: [{ name: 'p' }] });
  t.equal(btf.typeName(fn.id), 'int fx_func(struct fx_all *p)');
  t.match(byName(btf, 'fx_ro_count', 'VAR'), { linkage: 'global' });
});

t.test('DATASEC: zero in the .o, laid out by fromElf as libbpf does', async (t) => {
  const raw = Btf.parse(btfSection(shapes.elf));
  const ro = byName(raw, '.rodata', 'DATASEC');
  t.equal(ro.size, 0, 'clang leaves DATASEC size 0');
  t.same(ro.vars.map((v) => v.offset), [0, 0, 0, 0], 'clang leaves every variable offset 0');
  t.same(ro.vars.map((v) => v.size), [4, 4, 8, 8], 'but variable sizes are right');

  const btf = Btf.fromElf(shapes.elf);
  const vars = btf.datasec('.rodata');
  t.same(vars.map((v) => [v.name, v.offset, v.size]), [
    ['fx_ro_count', 0, 4], ['fx_ro_chain', 4, 4], ['fx_ro_name', 8, 8], ['fx_ro_big', 16, 8],
  ]);
  t.equal(btf.typeName(vars[0]!.typeId), 'const volatile __u32', 'typeId is the variable type, not the VAR');
  t.equal(btf.typeName(vars[2]!.typeId), 'const volatile char [8]');
  t.equal(btf.sizeof(byName(btf, '.rodata', 'DATASEC').id), 24);
  const bss = btf.datasec('.bss');
  t.same(bss.map((v) => v.offset), [...bss.map((v) => v.offset)].sort((a, b) => a - b), '.bss sorted by offset');
  const syms = readElfSymbols(shapes.elf);
  for (const v of btf.datasec('.data')) t.equal(v.offset, syms.find((s) => s.name === v.name)!.value, `.data ${v.name} at its symbol`);
  t.throws(() => btf.datasec('.nope'), /no DATASEC named '.nope' \(have: .bss, .data, .rodata\)/);
  t.throws(() => Btf.fromElf(Buffer.from(readElfSection(shapes.elf, '.rodata')!)), /not an ELF file/);
});

t.test('hand-built BTF: ENUM64, signed enums, legacy bitfields, cycles', async (t) => {
  const b = new BtfBuilder();
  const u32 = b.add(1, 'unsigned int', 0, false, 4, [32]);
  const e64 = b.add(19, 'big', 2, false, 8, [b.str('BIG_LO'), 1, 0, b.str('BIG_HI'), 0x76543210, 0xfedcba98]);
  const s64 = b.add(19, 'sbig', 1, true, 8, [b.str('SBIG_NEG'), 0xffffffff, 0xffffffff]);
  b.add(6, 'senum', 2, true, 4, [b.str('S_NEG'), 0xfffffffe, b.str('S_POS'), 3]);
  const bf3 = b.add(1, 'unsigned int', 0, false, 4, [3]); // legacy 3-bit bitfield INT
  const legacy = b.add(4, 'legacy', 2, false, 4, [b.str('x'), bf3, 0, b.str('y'), bf3, 3]);
  const loopA = b.add(8, 'loop_a', 0, false, 8);
  b.add(8, 'loop_b', 0, false, loopA);
  const fwd = b.add(7, 'fu', 0, true, 0);
  const btf = Btf.parse(b.build());

  t.match(btf.type(e64), { kind: 'ENUM64', signed: false, values: [{ name: 'BIG_LO', value: 1n }, { name: 'BIG_HI', value: 0xfedcba9876543210n }] });
  t.match(btf.type(s64), { kind: 'ENUM64', signed: true, values: [{ name: 'SBIG_NEG', value: -1n }] });
  t.same([...btf.enumValues('sbig')], [[-1, 'SBIG_NEG']]);
  t.throws(() => btf.enumValues('big'), /BIG_HI = 18364758544493064720 is not a safe integer/);
  t.same([...btf.enumValues('senum')], [[-2, 'S_NEG'], [3, 'S_POS']], 'kind_flag enums are signed');
  t.equal(btf.typeName(e64), 'enum big');

  const st = btf.type(legacy);
  t.ok(st.kind === 'STRUCT');
  if (st.kind === 'STRUCT') {
    t.equal(st.members[1]!.bitfieldSize, 0, 'no kind_flag: width not in the member');
    t.same(btf.memberBitfield(st.members[1]!), { bitOffset: 3, bits: 3 }, 'width comes from the INT');
  }
  t.equal(btf.resolve(u32), u32);
  t.throws(() => btf.resolve(loopA), /reference cycle/);
  t.throws(() => btf.sizeof(loopA), /reference cycle/);
  t.match(btf.type(fwd), { kind: 'FWD', fwdKind: 'union' });
});

t.test('malformed blobs are rejected with a reason', async (t) => {
  const good = Buffer.from(btfSection(shapes.elf));
  const copy = (): Buffer => Buffer.from(good);
  const hdrLen = good.readUInt32LE(4);
  const typeStart = hdrLen + good.readUInt32LE(8);
  const strStart = hdrLen + good.readUInt32LE(16);

  t.throws(() => Btf.parse(new Uint8Array(0)), /BTF: blob is 0 bytes, too short/);
  let b = copy();
  b[0] = 0;
  t.throws(() => Btf.parse(b), /BTF: bad magic 0xeb00/);
  b = copy();
  b.writeUInt16BE(0xeb9f, 0);
  t.throws(() => Btf.parse(b), /big-endian/);
  b = copy();
  b[2] = 2;
  t.throws(() => Btf.parse(b), /unsupported version 2/);
  b = copy();
  b.writeUInt32LE(1 << 30, 4);
  t.throws(() => Btf.parse(b), /header length \d+ is invalid/);
  b = copy();
  b.writeUInt32LE(good.length, 12);
  t.throws(() => Btf.parse(b), /type section \(offset \d+, length \d+\) extends past the end/);
  b = copy();
  b.writeUInt32LE(good.readUInt32LE(12) - 4, 12);
  t.throws(() => Btf.parse(b), /type section truncated/);
  b = copy();
  b.writeUInt32LE(0xffffff, typeStart); // first type's name offset
  t.throws(() => Btf.parse(b), /type id 1 \(PTR\) name offset 16777215 is outside the string section/);
  b = copy();
  b.writeUInt32LE(9999, typeStart + 8); // first type is a PTR: its target
  t.throws(() => Btf.parse(b), /type \[1\] PTR type refers to type id 9999, but the blob has only \d+ types/);
  b = copy();
  b.writeUInt32LE((31 << 24) >>> 0, typeStart + 4);
  t.throws(() => Btf.parse(b), /type id 1 has unknown kind 31/);
  b = copy();
  b[strStart + good.readUInt32LE(20) - 1] = 0x41;
  t.throws(() => Btf.parse(b), /string section is not NUL-terminated/);
  b = copy();
  b[strStart] = 0x41;
  t.throws(() => Btf.parse(b), /string section does not start with an empty string/);

  // Every truncation of a real blob is an Error naming the problem, never a crash.
  let rejected = 0;
  for (let len = 0; len < good.length; len++) {
    try {
      Btf.parse(good.subarray(0, len));
    } catch (e) {
      if (!(e instanceof Error) || !e.message.startsWith('BTF: ')) t.fail(`length ${len}: ${String(e)}`);
      else rejected++;
    }
  }
  t.equal(rejected, good.length, 'every truncated blob is rejected');

  // Random corruption: parse and use the result or throw a BTF error; no other failure.
  let seed = 12345;
  const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
  let odd = 0;
  for (let i = 0; i < 3000; i++) {
    const c = copy();
    for (let k = 0; k < 1 + rand(4); k++) c[rand(c.length)] = rand(256);
    try {
      const btf = Btf.parse(c);
      for (let id = 0; id <= btf.count; id++) {
        try {
          btf.typeName(id);
          btf.sizeof(id);
        } catch (e) {
          if (!(e instanceof Error) || !e.message.startsWith('BTF: ')) odd++;
        }
      }
    } catch (e) {
      if (!(e instanceof Error) || !e.message.startsWith('BTF: ')) odd++;
    }
  }
  t.equal(odd, 0, 'corrupted blobs only ever fail with BTF errors');
});
