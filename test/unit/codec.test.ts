/**
 * BTF-driven codecs against clang's own bytes: the fixtures initialise globals
 * in .data/.rodata, so the expected encoding of each value is exactly what
 * clang laid out (padding included), not a layout re-derived here.
 */
import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileBpf } from '../../src/toolchain/clang.js';
import { Btf } from '../../src/bpf/btf.js';
import { CodecError, codecFor, percpuCodec, type Codec } from '../../src/bpf/codec.js';
import { readElfSection } from '../../src/bpf/elf.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURES = join(ROOT, 'test/fixtures/btf');
const work = mkdtempSync(join(tmpdir(), 'sluice-codec-test-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

/** Compile test/fixtures/btf/<name>.c as the datapath is compiled. */
function compile(name: string): Buffer {
  const path = join(work, `${name}.o`);
  compileBpf({ source: join(FIXTURES, `${name}.c`), output: path, includeDirs: [join(ROOT, 'include')] });
  return readFileSync(path);
}

/** A loaded fixture: its laid-out BTF and helpers to find codecs and initial bytes. */
function fixture(name: string): {
  btf: Btf;
  codec: (typeName: string) => Codec;
  init: (varName: string, section?: string) => { codec: Codec; bytes: Buffer };
} {
  const elf = compile(name);
  const btf = Btf.fromElf(elf);
  const codec = (typeName: string): Codec => {
    const ty = btf.findByName(typeName);
    if (ty === undefined) throw new Error(`no type ${typeName}`);
    return codecFor(btf, ty.id);
  };
  const init = (varName: string, section = '.data'): { codec: Codec; bytes: Buffer } => {
    const v = btf.datasec(section).find((x) => x.name === varName);
    if (v === undefined) throw new Error(`no ${section} variable ${varName}`);
    const data = Buffer.from(readElfSection(elf, section)!);
    return { codec: codecFor(btf, v.typeId), bytes: data.subarray(v.offset, v.offset + v.size) };
  };
  return { btf, codec, init };
}

const sl = fixture('sluice_types');
const fx = fixture('shapes');

/** Check `value` encodes to clang's bytes and those bytes decode to `value`. */
function oracle(t: Pick<Test, 'equal' | 'same'>, varName: string, value: unknown, f = fx): void {
  const { codec, bytes } = f.init(varName);
  t.equal(codec.size, bytes.length, `${varName}: size`);
  t.same(codec.decode(bytes), value, `${varName}: decodes clang's bytes`);
  t.equal(codec.encode(value).toString('hex'), bytes.toString('hex'), `${varName}: encodes to clang's bytes`);
}

/** Round-trip `value` and pick one field of the decoded struct. */
function field(codec: Codec, value: Record<string, unknown>, name: string): unknown {
  return (codec.decode(codec.encode(value)) as Record<string, unknown>)[name];
}

t.test('struct sl_endpoint: layout, IP and MAC strings', async (t) => {
  const ep = sl.codec('sl_endpoint');
  t.equal(ep.size, 28);
  const value = { ifindex: 7, id: 42, mac: 'aa:bb:cc:00:11:22', host_mac: '02:00:00:00:00:01', identity: 0x12345678, flags: 0 };
  oracle(t, 'fx_endpoint_init', value, sl);
  const bytes = ep.encode(value);
  t.equal(bytes.subarray(8, 14).toString('hex'), 'aabbcc001122', 'mac at offset 8');
  t.equal(bytes.subarray(14, 20).toString('hex'), '020000000001', 'host_mac at offset 14');
  t.equal(bytes.readUInt32LE(20), 0x12345678, 'identity at offset 20, little-endian');

  t.equal(ep.encode({ ...value, mac: 'AA:BB:CC:00:11:22' }).toString('hex'), bytes.toString('hex'), 'encode accepts upper-case MACs');
  t.same(ep.encode({ id: 42 }), Buffer.from('000000002a' + '00'.repeat(23), 'hex'), 'missing fields are zero');
  t.throws(() => ep.encode({ ...value, mac: 'zz' }), {
    message: 'sl_endpoint.mac: expected a MAC address like aa:bb:cc:dd:ee:ff, got "zz"',
  });
  for (const bad of ['aa:bb:cc:dd:ee', 'aa-bb-cc-dd-ee-ff', 'aa:bb:cc:dd:ee:fg', 'aabbccddeeff']) {
    t.throws(() => ep.encode({ mac: bad }), /^sl_endpoint\.mac: expected a MAC address/, `rejects ${bad}`);
  }
  t.throws(() => ep.encode({ host_mac: [1, 2, 3, 4, 5, 6] }), /sl_endpoint\.host_mac: expected a MAC address.*got an array of 6/);
  t.throws(() => ep.encode({ vlan: 3 }), {
    message: 'sl_endpoint: no field "vlan" in struct sl_endpoint (fields: ifindex, id, mac, host_mac, identity, flags)',
  });
  t.throws(() => ep.encode({ ifindex: -1 }), { message: 'sl_endpoint.ifindex: expected an integer in 0..4294967295 (u32), got -1' });
  t.throws(() => ep.encode({ ifindex: 2 ** 32 }), /sl_endpoint\.ifindex: expected an integer in 0\.\.4294967295/);
  t.throws(() => ep.encode({ ifindex: 1.5 }), { message: 'sl_endpoint.ifindex: expected an integer (u32), got 1.5' });
  t.throws(() => ep.encode({ ifindex: '7' }), { message: 'sl_endpoint.ifindex: expected an integer (u32), got "7"' });
  t.throws(() => ep.encode(null), { message: 'sl_endpoint: expected an object (struct sl_endpoint), got null' });
  t.throws(() => ep.encode([1, 2]), /expected an object/);
  t.equal(ep.encode({ ifindex: 7n }).readUInt32LE(0), 7, 'a bigint is fine for a u32');
  t.type(ep.encode({}), Buffer);
  t.equal(ep.describe(), 'struct sl_endpoint { __u32 ifindex; __u32 id; sl_mac_t mac; sl_mac_t host_mac; __u32 identity; __u32 flags; }');
  t.throws(() => ep.encode({ mac: 'zz' }), CodecError, 'errors are CodecErrors');
});

t.test('sl_endpoint_key: sl_ipv4_t is a dotted quad in network order', async (t) => {
  oracle(t, 'fx_endpoint_key_init', { ip: '10.0.0.1' }, sl);
  const key = sl.codec('sl_endpoint_key');
  t.equal(key.encode({ ip: '192.168.1.254' }).toString('hex'), 'c0a801fe');
  t.equal(key.encode({ ip: '0.0.0.0' }).toString('hex'), '00000000');
  for (const bad of ['10.0.0', '256.0.0.1', '01.2.3.4', '1.2.3.4.5', 'a.b.c.d', ' 10.0.0.1', '', 167772161]) {
    t.throws(() => key.encode({ ip: bad }), /^sl_endpoint_key\.ip: expected an IPv4 address like 10\.0\.0\.1, got /, `rejects ${JSON.stringify(bad)}`);
  }
  const ip = sl.codec('sl_ipv4_t');
  t.equal(ip.decode(Buffer.from([10, 1, 2, 3])), '10.1.2.3', 'the typedef on its own');
  t.equal(ip.describe(), 'typedef __be32 sl_ipv4_t');
  t.throws(() => ip.encode('x'), /^sl_ipv4_t: expected an IPv4 address/);
  const mac = sl.codec('sl_mac_t');
  t.equal(mac.decode(Buffer.from('A0B1C2D3E4F5', 'hex')), 'a0:b1:c2:d3:e4:f5', 'decodes lower-case');
});

t.test('sl_metrics_key/val: enums by name, u64 as bigint', async (t) => {
  oracle(t, 'fx_metrics_key_init', { reason: 'SL_REASON_DROP_SPOOFED_MAC', dir: 'SL_DIR_INGRESS' }, sl);
  oracle(t, 'fx_metrics_val_init', { packets: 3n, bytes: 0x100000000n }, sl);
  const key = sl.codec('sl_metrics_key');
  t.equal(key.size, 8);
  t.same(key.encode({ reason: 130, dir: 1 }), key.encode({ reason: 'SL_REASON_DROP_SPOOFED_MAC', dir: 'SL_DIR_INGRESS' }), 'numbers work too');
  t.same(key.decode(key.encode({ reason: 'SL_DROP_BASE' })), { reason: 'SL_REASON_DROP_MALFORMED', dir: 'SL_DIR_EGRESS' }, 'aliases decode to the family name');
  t.same(key.decode(key.encode({ reason: 77 })), { reason: 77, dir: 'SL_DIR_EGRESS' }, 'unnamed values decode to numbers');
  t.throws(() => key.encode({ reason: 'drop_spoofed_ip' }), {
    message: /^sl_metrics_key\.reason: unknown enum sl_reason value "drop_spoofed_ip" \(valid: SL_REASON_UNSPEC, .*SL_REASON_DROP_SPOOFED_IP, .*SL_REASON_MAX\)$/,
  });
  t.throws(() => key.encode({ dir: true }), /sl_metrics_key\.dir: expected an enum sl_dir name or number, got true/);
  t.throws(() => key.encode({ dir: 2 ** 32 }), /sl_metrics_key\.dir: expected an integer in -2147483648\.\.4294967295/);
  t.equal(key.describe(), 'struct sl_metrics_key { enum sl_reason reason; enum sl_dir dir; }');
  t.equal(sl.codec('sl_dir').describe(), 'enum sl_dir { SL_DIR_EGRESS = 0, SL_DIR_INGRESS = 1 }');

  const val = sl.codec('sl_metrics_val');
  t.same(val.decode(val.encode({ packets: 5, bytes: 2n ** 64n - 1n })), { packets: 5n, bytes: 18446744073709551615n }, 'a safe number is accepted for u64');
  t.throws(() => val.encode({ packets: 2 ** 53 }), /sl_metrics_val\.packets: 9007199254740992 is not a safe integer; pass a bigint/);
  t.throws(() => val.encode({ packets: -1n }), /sl_metrics_val\.packets: expected an integer in 0\.\.18446744073709551615 \(u64\), got -1n/);
  t.throws(() => val.encode({ bytes: 2n ** 64n }), /got 18446744073709551616n/);
});

t.test('per-CPU values', async (t) => {
  const val = sl.codec('sl_metrics_val');
  const pc = percpuCodec(val, 3);
  t.equal(pc.size, 48, '16-byte values need no padding');
  const buf = pc.encode([{ packets: 1n }, { packets: 2n }, { packets: 3n, bytes: 4n }]);
  t.equal(buf.readBigUInt64LE(32), 3n);
  t.equal(buf.readBigUInt64LE(40), 4n);
  t.same(pc.decode(buf), [{ packets: 1n, bytes: 0n }, { packets: 2n, bytes: 0n }, { packets: 3n, bytes: 4n }]);
  t.same(pc.decode(pc.encode({ packets: 9n })), [0, 1, 2].map(() => ({ packets: 9n, bytes: 0n })), 'one value is replicated');
  t.throws(() => pc.encode([{}, {}]), /expected one value per CPU \(3\), got 2/);
  t.throws(() => pc.encode([{}, {}, { packets: -1 }]), { message: /^cpu 2: sl_metrics_val\.packets: expected an integer/ });
  t.throws(() => pc.decode(Buffer.alloc(47)), /per-CPU decode needs 48 bytes/);

  const u32 = percpuCodec(sl.codec('__u32'), 4);
  t.equal(u32.size, 32, 'a 4-byte value has an 8-byte stride');
  const dirty = Buffer.alloc(40, 0xff);
  u32.encodeInto([1, 2, 3, 4], dirty, 4);
  t.equal(dirty.toString('hex'), `ffffffff${'0100000000000000'}${'0200000000000000'}${'0300000000000000'}${'0400000000000000'}ffffffff`, 'padding zeroed, outside untouched');
  t.same(u32.decode(dirty, 4), [1, 2, 3, 4]);
  t.throws(() => percpuCodec(val, 0), /ncpus must be a positive integer/);
});

t.test('bitfields', async (t) => {
  const value = { a: 5, b: 17, c: -3, d: 99999, e: 0xab, f: true, g: 0x123456789an };
  oracle(t, 'fx_bits_init', value);
  const bits = fx.codec('fx_bits');
  t.equal(bits.describe(), 'struct fx_bits { __u32 a:3; __u32 b:5; __s32 c:7; __u32 d:17; __u8 e; _Bool f:1; __u64 g:40; }');
  t.same(bits.decode(bits.encode({ d: 131071 })), { a: 0, b: 0, c: 0, d: 131071, e: 0, f: false, g: 0n }, 'neighbours stay zero');
  t.same(field(bits, { c: -64 }, 'c'), -64, 'signed minimum');
  t.throws(() => bits.encode({ a: 8 }), { message: 'fx_bits.a: expected an integer in 0..7 (u3), got 8' });
  t.throws(() => bits.encode({ c: 64 }), { message: 'fx_bits.c: expected an integer in -64..63 (s7), got 64' });
  t.throws(() => bits.encode({ g: 2n ** 40n }), /fx_bits\.g: expected an integer in 0\.\.1099511627775 \(u40\)/);
  t.throws(() => bits.encode({ f: 1 }), { message: 'fx_bits.f: expected a boolean, got 1' });
  oracle(t, 'fx_enum_bits_init', { s: 'FX_SMALL_NEG', u: 33 });
  const eb = fx.codec('fx_enum_bits');
  t.same(eb.decode(eb.encode({ s: -1, u: 63 })), { s: 'FX_SMALL_NEG', u: 63 }, 'an enum bitfield takes numbers too');
  t.throws(() => eb.encode({ s: 'FX_NOPE' }), /fx_enum_bits\.s: unknown enum fx_small value "FX_NOPE" \(valid: FX_SMALL_NEG, FX_SMALL_ZERO, FX_SMALL_ONE\)/);
});

t.test('anonymous members are flattened; unions', async (t) => {
  const anon = fx.codec('fx_anon');
  const { bytes } = fx.init('fx_anon_init');
  t.same(anon.decode(bytes), { kind: 0x0102, as_u32: 0x0a0b0c0d, as_bytes: [0x0d, 0x0c, 0x0b, 0x0a], x: 9, y: 8, tail: 0x1122334455667788n });
  t.equal(anon.encode({ kind: 0x0102, as_u32: 0x0a0b0c0d, x: 9, y: 8, tail: 0x1122334455667788n }).toString('hex'), bytes.toString('hex'), 'encodes to clang\'s bytes, padding zero');
  t.equal(anon.encode({ as_bytes: [0x0d, 0x0c, 0x0b, 0x0a], kind: 0x0102, x: 9, y: 8, tail: 0x1122334455667788n }).toString('hex'), bytes.toString('hex'), 'either union member');
  t.throws(() => anon.encode({ as_u32: 1, as_bytes: [1, 0, 0, 0] }), { message: 'fx_anon: fields "as_u32" and "as_bytes" share union bytes; give only one' });
  t.throws(() => anon.encode({ as_bytes: [1, 2, 3] }), { message: 'fx_anon.as_bytes: expected an array of exactly 4 elements (__u8 [4]), got 3' });
  t.equal(anon.describe(), 'struct fx_anon { __u16 kind; union { __u32 as_u32; __u8 as_bytes[4]; }; struct { __u8 x; __u8 y; }; __u64 tail; }');

  const dirty = Buffer.alloc(anon.size + 8, 0xee);
  anon.encodeInto({ kind: 1 }, dirty, 4);
  t.equal(dirty.toString('hex'), `eeeeeeee0100${'00'.repeat(22)}eeeeeeee`, 'encodeInto zeroes its range (padding too) and nothing else');

  const un = fx.codec('fx_union');
  t.same(un.decode(fx.init('fx_union_init').bytes), { word: 0xabcd1234, halves: [0x1234, 0xabcd], bytes: [0x34, 0x12, 0xcd, 0xab] }, 'decode: every member');
  t.same(un.encode({ halves: [0x1234, 0xabcd] }), fx.init('fx_union_init').bytes, 'one member');
  t.same(un.encode({ bytes: Uint8Array.from([0x34, 0x12, 0xcd, 0xab]) }), fx.init('fx_union_init').bytes, 'a Uint8Array for a byte array');
  t.throws(() => un.encode({}), { message: 'fx_union: expected exactly one member of union fx_union (members: word, halves, bytes), got none' });
  t.throws(() => un.encode({ word: 1, halves: [1, 0] }), /fx_union: fields "word" and "halves" share union bytes; give only one/);
  t.throws(() => un.encode({ halves: [1, 70000] }), { message: 'fx_union.halves[1]: expected an integer in 0..65535 (u16), got 70000' });
});

t.test('struct fx_node: strings, nested arrays, floats, big-endian, pointers', async (t) => {
  const value = {
    next: 0n,
    name: 'hello',
    grid: [[1, 2, 3], [4, 5, 6]],
    sc: -5,
    uc: 250,
    ok: true,
    ratio: 1.5,
    precise: -2.25,
    big: -1234567890123n,
    chained: 77,
    port: 8080,
    be: 0xc0a80001,
    be64: 0x0102030405060708n,
    small: 'FX_SMALL_ONE',
    bigenum: 'FX_BIG_ZERO',
    cv: 65535,
  };
  oracle(t, 'fx_node_init', value);
  const node = fx.codec('fx_node');
  t.equal(node.size, 104);
  const buf = node.encode({ port: 0x1234, be: 0x0a000001, be64: 1n, next: 0xffff888012345678n });
  t.equal(buf.subarray(60, 62).toString('hex'), '1234', '__be16 (under a typedef chain) is stored big-endian');
  t.equal(buf.subarray(64, 68).toString('hex'), '0a000001', '__be32 big-endian');
  t.equal(buf.subarray(72, 80).toString('hex'), '0000000000000001', '__be64 big-endian');
  t.equal(buf.readBigUInt64LE(0), 0xffff888012345678n, 'pointer as bigint');

  t.equal(field(node, { name: 'x'.repeat(16) }, 'name'), 'x'.repeat(16), 'a full char[16] needs no NUL');
  t.equal(field(node, { name: 'héllo' }, 'name'), 'héllo', 'UTF-8');
  t.throws(() => node.encode({ name: 'x'.repeat(17) }), { message: `fx_node.name: expected a string of at most 16 bytes (char[16]), got "${'x'.repeat(17)}"` });
  t.throws(() => node.encode({ name: 'a\0b' }), /fx_node\.name: expected a string without NUL characters/);
  t.throws(() => node.encode({ name: 5 }), /fx_node\.name: expected a string \(char\[16\]\), got 5/);
  t.throws(() => node.encode({ grid: [[1, 2, 3], [4, 5]] }), { message: 'fx_node.grid[1]: expected an array of exactly 3 elements (__u8 [3]), got 2' });
  t.throws(() => node.encode({ grid: [[1, 2, 3], [4, 5, 256]] }), { message: 'fx_node.grid[1][2]: expected an integer in 0..255 (u8), got 256' });
  t.throws(() => node.encode({ sc: 128 }), /fx_node\.sc: expected an integer in -128\.\.127 \(s8\)/);
  t.throws(() => node.encode({ ratio: '1.5' }), /fx_node\.ratio: expected a number \(float\), got "1\.5"/);
  t.throws(() => node.encode({ port: 65536 }), /fx_node\.port: expected an integer in 0\.\.65535 \(big-endian u16\)/);
  t.throws(() => node.encode({ next: -1n }), /fx_node\.next: expected an integer in 0\.\.18446744073709551615 \(pointer\)/);
  t.equal(field(node, { small: -1 }, 'small'), 'FX_SMALL_NEG', 'clang 14 stores -1 as 0xffffffff; -1 still encodes');
  t.equal(node.encode({ small: 'FX_SMALL_NEG' }).readUInt32LE(80), 0xffffffff);

  const all = fx.codec('fx_all');
  t.equal(all.size, 152);
  t.same(all.decode(all.encode({ node: { name: 'n' }, bits: { a: 1 } })), {
    ...all.decode(Buffer.alloc(152)) as object,
    node: { ...(all.decode(Buffer.alloc(152)) as { node: object }).node, name: 'n' },
    bits: { a: 1, b: 0, c: 0, d: 0, e: 0, f: false, g: 0n },
  }, 'nested structs');
  t.throws(() => all.encode({ node: { nope: 1 } }), { message: 'fx_all.node: no field "nope" in struct fx_node (fields: next, name, grid, sc, uc, ok, ratio, precise, big, chained, port, be, be64, small, bigenum, cv)' });
  t.equal(fx.codec('fx_packed_holder').size, 2);
  oracle(t, 'fx_packed_init', { p: 'FX_PACKED_B', tail: 7 });
});

t.test('.rodata globals through the DATASEC', async (t) => {
  const ro = { fx_ro_count: 42, fx_ro_chain: 7, fx_ro_name: 'sluice', fx_ro_big: 0x1122334455667788n };
  const sec = fx.btf.findByName('.rodata', 'DATASEC')!;
  const codec = codecFor(fx.btf, sec.id);
  const { bytes } = fx.init('fx_ro_count', '.rodata');
  const whole = Buffer.from(bytes.buffer, bytes.byteOffset, 24);
  t.same(codec.decode(whole), ro, 'decodes the initial values');
  t.equal(codec.encode(ro).toString('hex'), whole.toString('hex'), 'encodes to the same bytes');
  t.same(fx.init('fx_ro_name', '.rodata').codec.decode(fx.init('fx_ro_name', '.rodata').bytes), 'sluice', 'a const volatile char array is a string');
  for (const v of fx.btf.datasec('.rodata')) {
    t.same(codecFor(fx.btf, v.typeId).decode(whole, v.offset), ro[v.name as keyof typeof ro], `${v.name} by offset`);
  }
  t.match(codec.describe(), /^SEC\("\.rodata"\) \{ const volatile __u32 fx_ro_count \/\* \+0 \*\/; /);
  t.throws(() => codec.encode({ fx_nope: 1 }), /no field "fx_nope" in section \.rodata/);

  const unlaid = Btf.parse(readElfSection(compile('shapes'), '.BTF')!);
  t.throws(() => codecFor(unlaid, unlaid.findByName('.rodata', 'DATASEC')!.id), /DATASEC '\.rodata' has size 0: not laid out/);
});

t.test('codecs are memoized, bounds-checked and reject non-values', async (t) => {
  const node = fx.btf.findByName('fx_node')!.id;
  t.equal(codecFor(fx.btf, node), codecFor(fx.btf, node), 'same codec object');
  const ep = sl.codec('sl_endpoint');
  t.throws(() => ep.decode(Buffer.alloc(27)), { message: 'sl_endpoint: decode needs 28 bytes at offset 0, but the buffer has 27' });
  t.throws(() => ep.decode(Buffer.alloc(40), 13), /needs 28 bytes at offset 13, but the buffer has 40/);
  t.throws(() => ep.encodeInto({}, Buffer.alloc(28), 1), /encode needs 28 bytes at offset 1/);
  const raw = ep.encode({ id: 9 });
  t.same(ep.decode(new Uint8Array(raw)), ep.decode(raw), 'a plain Uint8Array decodes');
  const wrapped = Buffer.concat([Buffer.alloc(5, 0xff), raw]);
  t.same(ep.decode(wrapped.subarray(5)), ep.decode(raw), 'a subarray decodes at its own offset');
  t.same(ep.decode(wrapped, 5), ep.decode(raw), 'decode at an offset');

  t.throws(() => codecFor(fx.btf, fx.btf.findByName('fx_func')!.id), /cannot encode or decode values of type int fx_func\(struct fx_all \*p\)/);
  t.throws(() => codecFor(fx.btf, fx.btf.findByName('fx_opaque')!.id), /cannot encode or decode values of type struct fx_opaque/);
  t.throws(() => codecFor(fx.btf, 0), /cannot encode or decode values of type void/);
});

t.test('hand-built BTF: ENUM64, signed enums, legacy bitfields, cycles', async (t) => {
  // Minimal BTF writer: records as u32 words, strings appended.
  let strs = Buffer.from([0]);
  const words: number[] = [];
  let count = 0;
  const str = (s: string): number => {
    const off = strs.length;
    strs = Buffer.concat([strs, Buffer.from(`${s}\0`)]);
    return off;
  };
  const add = (kind: number, name: string, vlen: number, kflag: boolean, sizeOrType: number, extra: number[] = []): number => {
    words.push(name ? str(name) : 0, ((kflag ? 1 << 31 : 0) | kind << 24 | vlen) >>> 0, sizeOrType, ...extra);
    return ++count;
  };
  const u32 = add(1, 'unsigned int', 0, false, 4, [32]);
  const e64 = add(19, 'big', 2, false, 8, [str('BIG_LO'), 1, 0, str('BIG_HI'), 0x76543210, 0xfedcba98]);
  const s8 = add(6, 'tiny', 2, true, 1, [str('TINY_NEG'), 0xffffffff, str('TINY_POS'), 5]);
  const bf3 = add(1, 'unsigned int', 0, false, 4, [3]);
  const legacy = add(4, 'legacy', 3, false, 4, [str('x'), bf3, 0, str('y'), bf3, 3, str('z'), u32, 0]);
  const self = add(4, 'self', 1, false, 4, [str('me'), count + 1, 0]);
  const fwd = add(7, 'opaque', 0, false, 0);
  const holder = add(4, 'holder', 2, false, 16, [str('e'), e64, 0, str('t'), s8, 64]);
  const types = Buffer.alloc(words.length * 4);
  words.forEach((w, i) => types.writeUInt32LE(w >>> 0, i * 4));
  const hdr = Buffer.alloc(24);
  hdr.writeUInt16LE(0xeb9f, 0);
  hdr.writeUInt8(1, 2);
  [24, 0, types.length, types.length, strs.length].forEach((v, i) => hdr.writeUInt32LE(v, 4 + i * 4));
  const btf = Btf.parse(Buffer.concat([hdr, types, strs]));

  const h = codecFor(btf, holder);
  const buf = h.encode({ e: 'BIG_HI', t: 'TINY_NEG' });
  t.equal(buf.readBigUInt64LE(0), 0xfedcba9876543210n, 'ENUM64 name to its 64-bit value');
  t.equal(buf[8], 0xff, 'signed 1-byte enum -1');
  t.same(h.decode(buf), { e: 'BIG_HI', t: 'TINY_NEG' });
  t.same(h.decode(h.encode({ e: 0xfedcba9876543211n, t: -7 })), { e: 0xfedcba9876543211n, t: -7 }, 'unnamed: bigint for 8 bytes, signed number for a signed enum');
  t.throws(() => h.encode({ t: 'TINY_X' }), /holder\.t: unknown enum tiny value "TINY_X" \(valid: TINY_NEG, TINY_POS\)/);

  const lg = codecFor(btf, legacy);
  t.equal(lg.encode({ x: 5, y: 6 }).readUInt32LE(0), 5 | (6 << 3), 'legacy bitfields (kind_flag clear) from the INT encoding');
  t.same(lg.decode(Buffer.from([0x35, 0, 0, 0])), { x: 5, y: 6, z: 0x35 });
  t.throws(() => lg.encode({ y: 8 }), /legacy\.y: expected an integer in 0\.\.7 \(u3\)/);

  t.throws(() => codecFor(btf, self), /type struct self \[\d+\] contains itself/);
  t.throws(() => codecFor(btf, fwd), /cannot encode or decode values of type struct opaque/);
  t.equal(codecFor(btf, u32).size, 4);
});
