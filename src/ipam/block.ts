/**
 * Address allocation inside one pod block. Pure: the caller loads and stores the
 * allocation table (under a lock) and this module decides.
 */
import { blockHosts, cidrContains, formatCidr, formatIPv4, isUsableHost, parseCidr, parseIPv4 } from '../util/ipv4.js';

export interface BlockAllocations {
  /** The block, e.g. "10.244.3.0/24". */
  block: string;
  /** Allocated address -> owner (an endpoint id or container id + interface). */
  allocations: Record<string, string>;
}

export class IpamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IpamError';
  }
}

/**
 * Allocates an address for `owner`: `requested` if given (it must be a free, usable
 * address of the block), else the lowest free one. Idempotent: an owner that already
 * has an address gets the same one back.
 */
export function allocate(state: BlockAllocations, owner: string, requested?: string): string {
  const block = parseCidr(state.block);
  const existing = Object.entries(state.allocations).find(([, o]) => o === owner)?.[0];
  if (existing && (!requested || requested === existing)) return existing;
  if (requested !== undefined) {
    let ip: number;
    try {
      ip = parseIPv4(requested);
    } catch (e) {
      throw new IpamError((e as Error).message);
    }
    const canonical = formatIPv4(ip);
    if (!cidrContains(block, ip)) throw new IpamError(`${requested} is outside this node's pod block ${formatCidr(block)}`);
    if (!isUsableHost(block, ip)) throw new IpamError(`${requested} is the network or broadcast address of ${formatCidr(block)}`);
    const holder = state.allocations[canonical];
    if (holder !== undefined) throw new IpamError(`${requested} is already allocated (to ${holder})`);
    state.allocations[canonical] = owner;
    return canonical;
  }
  for (const ip of blockHosts(block)) {
    const s = formatIPv4(ip);
    if (state.allocations[s] === undefined) {
      state.allocations[s] = owner;
      return s;
    }
  }
  throw new IpamError(`the pod block ${formatCidr(block)} is full (${Object.keys(state.allocations).length} addresses in use)`);
}

/** Releases `ip` if `owner` holds it (or unconditionally without owner). True when released. */
export function release(state: BlockAllocations, ip: string, owner?: string): boolean {
  const holder = state.allocations[ip];
  if (holder === undefined || (owner !== undefined && holder !== owner)) return false;
  delete state.allocations[ip];
  return true;
}
