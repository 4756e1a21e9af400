/**
 * IPv4 addresses and CIDR blocks. Pure: no I/O.
 *
 * An address is an `Ipv4`: at run time a plain unsigned 32-bit number (the policy compiler and
 * IPAM loop over tens of thousands of them), at compile time branded so that a port, an ifindex
 * or an id is not accepted where an address is. Only this module makes an `Ipv4` out of a
 * number: by parsing (`parseIPv4`), by a checked conversion (`ipv4FromUint32`), or by the
 * arithmetic helpers (`ipv4Add`, `ipv4Network`, `cidrLast`). Reading one as a number (compare,
 * subtract, shift) needs no cast. The family level (IPv4 or IPv6) is `ip.ts`.
 */

declare const ipv4Brand: unique symbol;
/** An IPv4 address as an unsigned 32-bit number (10.0.0.1 is 0x0a000001), branded. */
export type Ipv4 = number & { readonly [ipv4Brand]: true };

/** An IPv4 CIDR block. */
export interface Cidr4 {
  readonly family: 4;
  /** Network address (host bits zero). */
  readonly base: Ipv4;
  readonly prefix: number;
}
/** The IPv4 CIDR block used throughout (CIDRs of either family are `CidrAny` in ip.ts). */
export type Cidr = Cidr4;

const UINT32_MAX = 0xffffffff;

/** `n` as an address; throws unless it is an integer in 0..2^32-1. */
export function ipv4FromUint32(n: number): Ipv4 {
  if (!Number.isInteger(n) || n < 0 || n > UINT32_MAX) throw new RangeError(`${n} is not an IPv4 address (an integer in 0..${UINT32_MAX})`);
  return n as Ipv4;
}

/** The address `n` after `a` (or before, for negative `n`); throws past either end of the address space, never wraps. */
export function ipv4Add(a: Ipv4, n: number): Ipv4 {
  const r = a + n;
  if (!Number.isInteger(r) || r < 0 || r > UINT32_MAX) {
    throw new RangeError(`${formatIPv4(a)} ${n < 0 ? '-' : '+'} ${Math.abs(n)} is outside the IPv4 address space`);
  }
  return r as Ipv4;
}

/** The network address of `a` under a /`prefix` mask (its host bits cleared). */
export function ipv4Network(a: Ipv4, prefix: number): Ipv4 {
  return ((a & maskOf(prefix)) >>> 0) as Ipv4;
}

const QUAD = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function parseIPv4(s: string): Ipv4 {
  const m = QUAD.exec(s.trim());
  if (!m) throw new Error(`'${s}' is not an IPv4 address`);
  const parts = m.slice(1).map(Number);
  if (parts.some((p, i) => p > 255 || (m[i + 1]!.length > 1 && m[i + 1]!.startsWith('0')))) {
    throw new Error(`'${s}' is not an IPv4 address`);
  }
  return (((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0) as Ipv4;
}

export function isIPv4(s: string): boolean {
  try {
    parseIPv4(s);
    return true;
  } catch {
    return false;
  }
}

export function formatIPv4(n: Ipv4): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parses "a.b.c.d/n"; host bits must be zero unless `loose` (then they are cleared). */
export function parseCidr(s: string, loose = false): Cidr {
  const [addr, len, extra] = s.trim().split('/');
  if (addr === undefined || len === undefined || extra !== undefined || !/^\d{1,2}$/.test(len)) {
    throw new Error(`'${s}' is not a CIDR like 10.244.0.0/16`);
  }
  const prefix = Number(len);
  if (prefix > 32) throw new Error(`'${s}': prefix length ${prefix} is above 32`);
  const ip = parseIPv4(addr);
  const base = ipv4Network(ip, prefix);
  if (base !== ip && !loose) {
    throw new Error(`'${s}' has host bits set: the network is ${formatIPv4(base)}/${prefix}`);
  }
  return { family: 4, base, prefix };
}

export function formatCidr(c: Cidr): string {
  return `${formatIPv4(c.base)}/${c.prefix}`;
}

export function cidrSize(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

/** The last address of `c` (its broadcast address, for blocks of /30 and larger). */
export function cidrLast(c: Cidr): Ipv4 {
  return ipv4Add(c.base, cidrSize(c) - 1);
}

export function cidrContains(c: Cidr, ip: Ipv4): boolean {
  return ipv4Network(ip, c.prefix) === c.base;
}

/** Whether `inner` lies entirely inside `outer`. */
export function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  return inner.prefix >= outer.prefix && cidrContains(outer, inner.base);
}

export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  return cidrContains(a, b.base) || cidrContains(b, a.base);
}

/** The `index`-th block of size /`blockPrefix` inside `pool`. */
export function nthBlock(pool: Cidr, blockPrefix: number, index: number): Cidr {
  if (blockPrefix < pool.prefix) throw new Error(`block size /${blockPrefix} is larger than the pool ${formatCidr(pool)}`);
  const count = blockCount(pool, blockPrefix);
  if (!Number.isInteger(index) || index < 0 || index >= count) {
    throw new Error(`block ${index} is outside ${formatCidr(pool)} (it has ${count} blocks of /${blockPrefix})`);
  }
  return { family: 4, base: ipv4Add(pool.base, index * 2 ** (32 - blockPrefix)), prefix: blockPrefix };
}

export function blockCount(pool: Cidr, blockPrefix: number): number {
  return 2 ** (blockPrefix - pool.prefix);
}

/**
 * Usable pod addresses of a block, in order: the network and broadcast addresses are
 * skipped for blocks of /30 and larger, as hosts on a routed subnet would expect.
 */
export function* blockHosts(block: Cidr): Generator<Ipv4> {
  const size = cidrSize(block);
  const skipEnds = block.prefix <= 30;
  for (let i = skipEnds ? 1 : 0; i < (skipEnds ? size - 1 : size); i++) yield ipv4Add(block.base, i);
}

export function isUsableHost(block: Cidr, ip: Ipv4): boolean {
  if (!cidrContains(block, ip)) return false;
  if (block.prefix > 30) return true;
  return ip !== block.base && ip !== cidrLast(block);
}

const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i;
export function isMac(s: string): boolean {
  return MAC.test(s);
}
