/**
 * Addresses and CIDRs of either family: IPv4 (`Ipv4`, `Cidr4` from ipv4.ts) or IPv6. Pure: no I/O.
 *
 * An IPv6 address is an `Ipv6`: an unsigned 128-bit bigint (fd00::1 is 0xfd00…0001n), branded
 * like `Ipv4` so that no other bigint is taken for one. Why a bigint and not 16 bytes:
 * - it is a value: `===` compares two addresses, a `Map` or `Set` keys on one, nothing aliases
 *   or mutates it (a `Uint8Array` compares by identity and is mutable under every holder);
 * - the comparator is `<` (`compareIp`), as the IPv4 one is `-`;
 * - masking for a CIDR is one `&` with the prefix's mask (`ipv6Network`), as for IPv4;
 * - the LPM key encoder needs the 16 bytes in network order: `ipv6ToBytes` writes them with two
 *   `writeBigUInt64BE` (and `ipv6FromBytes` reads a map key back), right where a key is built.
 * A bigint costs an allocation per value, which IPv4 avoids; nothing loops over IPv6 addresses
 * in bulk (IPAM does not enumerate a /64).
 *
 * Text: `parseIp` accepts an IPv4 dotted quad (no leading zeros) or IPv6 text as RFC 4291 writes
 * it (`::` for one or more zero groups, an embedded IPv4 address as the last 32 bits); it refuses
 * zone ids (`fe80::1%eth0`), which name an interface, not an address. Surrounding white space is
 * ignored, as `parseIPv4` does. `formatIp` writes IPv6 in the RFC 5952 canonical form: lowercase,
 * no leading zeros, the longest run of two or more zero groups as `::` (the first of equal runs),
 * and `::ffff:a.b.c.d` for IPv4-mapped addresses (RFC 5952 section 5).
 */
import { cidrContains, formatCidr, formatIPv4, ipv4FromUint32, parseCidr, parseIPv4, type Cidr4, type Ipv4 } from './ipv4.js';

export type IpFamily = 4 | 6;

declare const ipv6Brand: unique symbol;
/** An IPv6 address as an unsigned 128-bit bigint, branded. */
export type Ipv6 = bigint & { readonly [ipv6Brand]: true };

export type IpAddr = { readonly family: 4; readonly v4: Ipv4 } | { readonly family: 6; readonly v6: Ipv6 };

/** An IPv6 CIDR block. */
export interface Cidr6 {
  readonly family: 6;
  /** Network address (host bits zero). */
  readonly base: Ipv6;
  readonly prefix: number;
}
export type CidrAny = Cidr4 | Cidr6;

const U128_MAX = (1n << 128n) - 1n;
const U64_MASK = (1n << 64n) - 1n;

/** `n` as an address; throws unless it is an integer in 0..2^128-1. */
export function ipv6FromBigInt(n: bigint): Ipv6 {
  if (n < 0n || n > U128_MAX) throw new RangeError(`${n} is not an IPv6 address (an integer in 0..2^128-1)`);
  return n as Ipv6;
}

/** The 16 bytes of `a` in network order, as an sl_ipv6_t key field holds them. */
export function ipv6ToBytes(a: Ipv6): Uint8Array {
  const b = Buffer.alloc(16);
  b.writeBigUInt64BE(a >> 64n, 0);
  b.writeBigUInt64BE(a & U64_MASK, 8);
  return new Uint8Array(b.buffer, b.byteOffset, 16);
}

/** The address held in 16 bytes at `off`, network order. */
export function ipv6FromBytes(bytes: Uint8Array, off = 0): Ipv6 {
  if (off < 0 || off + 16 > bytes.length) throw new RangeError(`IPv6 address at ${off} is past the end (${bytes.length} bytes)`);
  const b = Buffer.from(bytes.buffer, bytes.byteOffset + off, 16);
  return ((b.readBigUInt64BE(0) << 64n) | b.readBigUInt64BE(8)) as Ipv6;
}

function ipv6Mask(prefix: number): bigint {
  return prefix === 0 ? 0n : U128_MAX ^ ((1n << BigInt(128 - prefix)) - 1n);
}

/** The network address of `a` under a /`prefix` mask (its host bits cleared). */
export function ipv6Network(a: Ipv6, prefix: number): Ipv6 {
  return (a & ipv6Mask(prefix)) as Ipv6;
}

/** Orders addresses: every IPv4 one before every IPv6 one, then by value. */
export function compareIp(a: IpAddr, b: IpAddr): number {
  if (a.family === 4 && b.family === 4) return a.v4 - b.v4;
  if (a.family === 6 && b.family === 6) return a.v6 < b.v6 ? -1 : a.v6 > b.v6 ? 1 : 0;
  return a.family - b.family;
}

// ---------------------------------------------------------------------------
// Text

/** What is wrong with a dotted quad, or undefined when nothing is (the rules of parseIPv4). */
function ipv4Problem(s: string): string | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return `it has ${parts.length} part${parts.length === 1 ? '' : 's'}, an IPv4 address has 4`;
  for (const p of parts) {
    if (p === '') return 'a part is empty';
    if (!/^[0-9]+$/.test(p)) return `'${p}' is not a decimal number`;
    if (p.length > 1 && p.startsWith('0')) return `'${p}' has a leading zero`;
    if (p.length > 3 || Number(p) > 255) return `${p} is above 255`;
  }
  return undefined;
}

function parseV4Text(text: string, s: string): Ipv4 {
  const problem = ipv4Problem(s);
  if (problem !== undefined) throw new Error(`'${text}' is not an IPv4 address: ${problem}`);
  return parseIPv4(s);
}

function parseV6Text(text: string, s: string): Ipv6 {
  const bad = (why: string) => new Error(`'${text}' is not an IPv6 address: ${why}`);
  const zone = s.indexOf('%');
  if (zone >= 0) throw bad(`zone ids (${s.slice(zone)}) are not accepted`);
  const odd = /[^0-9a-fA-F:.]/.exec(s);
  if (odd) throw bad(`'${odd[0]}' is not a hex digit, ':' or '.'`);
  const halves = s.split('::');
  if (halves.length > 2) throw bad("it has more than one '::'");
  const compressed = halves.length === 2;
  const groups = (h: string) => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0]!);
  const tail = compressed ? groups(halves[1]!) : [];
  const all = [...head, ...tail];
  const words: number[] = [];
  let headWords = 0;
  for (let i = 0; i < all.length; i++) {
    const g = all[i]!;
    if (g === '') throw bad("a group is empty (a single ':' at the start or the end, or ':::')");
    if (g.includes('.')) {
      const last = i === all.length - 1 && (!compressed || tail.length > 0);
      if (!last) throw bad(`the IPv4 part ${g} is not the last 32 bits`);
      const problem = ipv4Problem(g);
      if (problem !== undefined) throw bad(`its IPv4 part ${g} is wrong: ${problem}`);
      const v4 = parseIPv4(g);
      words.push(v4 >>> 16, v4 & 0xffff);
    } else {
      if (g.length > 4) throw bad(`group '${g}' has more than 4 hex digits`);
      words.push(parseInt(g, 16));
    }
    if (i < head.length) headWords = words.length;
  }
  if (!compressed && words.length !== 8) throw bad(`it has ${words.length} groups, an IPv6 address has 8 (fewer only with '::')`);
  if (compressed && words.length > 7) throw bad(`it has ${words.length} groups beside '::', which stands for at least one zero group (7 at most)`);
  const full = compressed ? [...words.slice(0, headWords), ...new Array<number>(8 - words.length).fill(0), ...words.slice(headWords)] : words;
  return full.reduce((acc, w) => (acc << 16n) | BigInt(w), 0n) as Ipv6;
}

/** An IPv4 or IPv6 address from its text; the error names the text and what is wrong. */
export function parseIp(text: string): IpAddr {
  const s = text.trim();
  if (s.includes(':')) return { family: 6, v6: parseV6Text(text, s) };
  if (s.includes('.')) return { family: 4, v4: parseV4Text(text, s) };
  throw new Error(`'${text}' is not an IP address (an IPv4 address like 10.0.0.1 or an IPv6 address like fd00::1)`);
}

/** The family of an address's text, or undefined when it is not an address. */
export function familyOf(text: string): IpFamily | undefined {
  try {
    return parseIp(text).family;
  } catch {
    return undefined;
  }
}

function formatIPv6(a: Ipv6): string {
  const words = Array.from({ length: 8 }, (_, i) => Number((a >> BigInt(112 - 16 * i)) & 0xffffn));
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    return `::ffff:${formatIPv4(ipv4FromUint32(Number(a & 0xffffffffn)))}`;
  }
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** An address's text: a dotted quad, or IPv6 in the RFC 5952 canonical form. */
export function formatIp(a: IpAddr): string {
  return a.family === 4 ? formatIPv4(a.v4) : formatIPv6(a.v6);
}

// ---------------------------------------------------------------------------
// CIDRs

/**
 * Parses "a.b.c.d/n" (as `parseCidr`) or "x:y::/n" (n 0..128); host bits must be zero unless
 * `loose` (then they are cleared), and the error names the network to write instead.
 */
export function parseCidrAny(text: string, loose = false): CidrAny {
  const s = text.trim();
  if (!s.includes(':')) return parseCidr(text, loose);
  const [addr, len, extra] = s.split('/');
  if (addr === undefined || len === undefined || extra !== undefined || !/^\d{1,3}$/.test(len) || !addr.includes(':')) {
    throw new Error(`'${text}' is not a CIDR like fd00::/64`);
  }
  const prefix = Number(len);
  if (prefix > 128) throw new Error(`'${text}': prefix length ${prefix} is above 128`);
  let ip: Ipv6;
  try {
    ip = parseV6Text(addr, addr);
  } catch (e) {
    throw new Error(`'${text}': ${(e as Error).message}`);
  }
  const base = ipv6Network(ip, prefix);
  if (base !== ip && !loose) {
    throw new Error(`'${text}' has host bits set: the network is ${formatIPv6(base)}/${prefix}`);
  }
  return { family: 6, base, prefix };
}

export function formatCidrAny(c: CidrAny): string {
  return c.family === 4 ? formatCidr(c) : `${formatIPv6(c.base)}/${c.prefix}`;
}

/** Whether `c` holds `a`; never across families (an IPv4 address is in no IPv6 CIDR, IPv4-mapped ones included). */
export function cidrContainsAny(c: CidrAny, a: IpAddr): boolean {
  if (c.family === 4) return a.family === 4 && cidrContains(c, a.v4);
  return a.family === 6 && ipv6Network(a.v6, c.prefix) === c.base;
}
