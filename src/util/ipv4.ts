/** IPv4 addresses and CIDR blocks as plain numbers. Pure: no I/O. */

export interface Cidr {
  /** Network address (host bits zero), as an unsigned 32-bit number. */
  readonly base: number;
  readonly prefix: number;
}

const QUAD = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function parseIPv4(s: string): number {
  const m = QUAD.exec(s.trim());
  if (!m) throw new Error(`'${s}' is not an IPv4 address`);
  const parts = m.slice(1).map(Number);
  if (parts.some((p, i) => p > 255 || (m[i + 1]!.length > 1 && m[i + 1]!.startsWith('0')))) {
    throw new Error(`'${s}' is not an IPv4 address`);
  }
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function isIPv4(s: string): boolean {
  try {
    parseIPv4(s);
    return true;
  } catch {
    return false;
  }
}

export function formatIPv4(n: number): string {
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
  const base = (ip & maskOf(prefix)) >>> 0;
  if (base !== ip && !loose) {
    throw new Error(`'${s}' has host bits set: the network is ${formatIPv4(base)}/${prefix}`);
  }
  return { base, prefix };
}

export function formatCidr(c: Cidr): string {
  return `${formatIPv4(c.base)}/${c.prefix}`;
}

export function cidrSize(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

export function cidrContains(c: Cidr, ip: number): boolean {
  return ((ip & maskOf(c.prefix)) >>> 0) === c.base;
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
  return { base: (pool.base + index * 2 ** (32 - blockPrefix)) >>> 0, prefix: blockPrefix };
}

export function blockCount(pool: Cidr, blockPrefix: number): number {
  return 2 ** (blockPrefix - pool.prefix);
}

/**
 * Usable pod addresses of a block, in order: the network and broadcast addresses are
 * skipped for blocks of /30 and larger, as hosts on a routed subnet would expect.
 */
export function* blockHosts(block: Cidr): Generator<number> {
  const size = cidrSize(block);
  const skipEnds = block.prefix <= 30;
  for (let i = skipEnds ? 1 : 0; i < (skipEnds ? size - 1 : size); i++) yield (block.base + i) >>> 0;
}

export function isUsableHost(block: Cidr, ip: number): boolean {
  if (!cidrContains(block, ip)) return false;
  if (block.prefix > 30) return true;
  return ip !== block.base && ip !== ((block.base + cidrSize(block) - 1) >>> 0);
}

const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i;
export function isMac(s: string): boolean {
  return MAC.test(s);
}
