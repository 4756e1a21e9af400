/**
 * Cluster IPAM on the store. The pool (clusterCIDR) is cut into node blocks; a node
 * claims a block the first time it needs one and keeps it; a pod gets an address from
 * its node's blocks. Every claim is one compare-and-swap transaction, so no block or
 * address is ever handed out twice: not under concurrent adds on one node, not across
 * nodes sharing etcd, and not after a crash (an allocation is a single atomic write).
 *
 * Keys (under the store's prefix):
 *   ipam/blocks/<a.b.c.d>-<len>        {node}            block ownership
 *   ipam/addrs/<block>/<ip>            {handle, node}    one allocated address
 *   ipam/handles/<handle>              {ip}              idempotency: (container, interface) -> address
 */
import type { Store } from '../store/types.js';
import {
  blockCount, blockHosts, cidrContains, formatCidr, formatIPv4, isUsableHost, nthBlock, parseCidr, parseIPv4, type Cidr,
} from '../util/ipv4.js';
import { IpamError } from './block.js';

export interface PoolConfig {
  clusterCIDR: string;
  blockSize: number;
}

export interface Allocation {
  ip: string;
  block: string;
  handle: string;
}

const BLOCKS = 'ipam/blocks/';
const ADDRS = 'ipam/addrs/';
const HANDLES = 'ipam/handles/';
/** Retries of a lost CAS race before giving up (each retry re-reads the state). */
const MAX_RACES = 64;

export const blockKey = (b: string) => `${BLOCKS}${b.replace('/', '-')}`;
const blockOfKey = (k: string) => k.slice(BLOCKS.length).replace('-', '/');
const addrPrefix = (b: string) => `${ADDRS}${b.replace('/', '-')}/`;
const addrKey = (b: string, ip: string) => `${addrPrefix(b)}${ip}`;
const handleKey = (h: string) => `${HANDLES}${encodeURIComponent(h)}`;

export class Pool {
  private readonly pool: Cidr;

  constructor(private readonly store: Store, private readonly cfg: PoolConfig, readonly node: string) {
    this.pool = parseCidr(cfg.clusterCIDR);
    if (cfg.blockSize < this.pool.prefix || cfg.blockSize > 30) {
      throw new IpamError(`block size /${cfg.blockSize} does not fit the pool ${cfg.clusterCIDR}`);
    }
  }

  /** Blocks owned by this node, in address order. */
  async nodeBlocks(): Promise<string[]> {
    const all = await this.store.list(BLOCKS);
    return all.filter((kv) => (JSON.parse(kv.value) as { node: string }).node === this.node)
      .map((kv) => blockOfKey(kv.key))
      .sort((a, b) => parseCidr(a).base - parseCidr(b).base);
  }

  /** Every block and its owner. */
  async blocks(): Promise<{ block: string; node: string }[]> {
    return (await this.store.list(BLOCKS)).map((kv) => ({ block: blockOfKey(kv.key), node: (JSON.parse(kv.value) as { node: string }).node }));
  }

  /** Claims the lowest free block of the pool for this node. */
  async claimBlock(): Promise<string> {
    for (let race = 0; race < MAX_RACES; race++) {
      const taken = new Set((await this.store.list(BLOCKS)).map((kv) => blockOfKey(kv.key)));
      const n = blockCount(this.pool, this.cfg.blockSize);
      let free: string | undefined;
      for (let i = 0; i < n && !free; i++) {
        const b = formatCidr(nthBlock(this.pool, this.cfg.blockSize, i));
        if (!taken.has(b)) free = b;
      }
      if (!free) throw new IpamError(`the pool ${this.cfg.clusterCIDR} is exhausted: all ${n} blocks of /${this.cfg.blockSize} are claimed`);
      const r = await this.store.txn([{ key: blockKey(free), modRevision: 0 }],
        [{ op: 'put', key: blockKey(free), value: JSON.stringify({ node: this.node }) }]);
      if (r.succeeded) return free;
    }
    throw new IpamError('could not claim a block: too much contention, try again');
  }

  /**
   * This node's first block, claiming one if it has none (a node keeps its blocks across
   * restarts). With `wanted` (the config's podCIDR) that block is claimed, or confirmed
   * as already this node's; another node holding it is an error.
   */
  async ensureBlock(wanted?: string): Promise<string> {
    if (wanted) {
      const b = parseCidr(wanted);
      if (b.prefix !== this.cfg.blockSize || !cidrContains(this.pool, b.base)) {
        throw new IpamError(`${wanted} is not a /${this.cfg.blockSize} block of the pool ${this.cfg.clusterCIDR}`);
      }
      const block = formatCidr(b);
      for (let race = 0; race < MAX_RACES; race++) {
        const kv = await this.store.get(blockKey(block));
        if (kv) {
          const owner = (JSON.parse(kv.value) as { node: string }).node;
          if (owner === this.node) return block;
          throw new IpamError(`the pod block ${block} belongs to node ${owner}, not ${this.node}`);
        }
        const r = await this.store.txn([{ key: blockKey(block), modRevision: 0 }],
          [{ op: 'put', key: blockKey(block), value: JSON.stringify({ node: this.node }) }]);
        if (r.succeeded) return block;
      }
      throw new IpamError(`could not claim ${block}: too much contention, try again`);
    }
    const mine = await this.nodeBlocks();
    return mine[0] ?? this.claimBlock();
  }

  /** The address held by `handle`, if any. */
  async lookup(handle: string): Promise<Allocation | undefined> {
    const kv = await this.store.get(handleKey(handle));
    if (!kv) return undefined;
    const { ip, block } = JSON.parse(kv.value) as { ip: string; block: string };
    return { ip, block, handle };
  }

  /**
   * An address for `handle` (e.g. "containerId/eth0"): the one it already holds, the
   * requested one (it must be free and in one of this node's blocks), or the lowest free
   * one of this node's blocks, claiming a new block when they are full.
   */
  async allocate(handle: string, requested?: string): Promise<Allocation> {
    for (let race = 0; race < MAX_RACES; race++) {
      const existing = await this.lookup(handle);
      if (existing) {
        if (requested && requested !== existing.ip) {
          throw new IpamError(`${handle} already holds ${existing.ip}, not ${requested}`);
        }
        return existing;
      }
      const blocks = await this.nodeBlocks();
      if (blocks.length === 0) blocks.push(await this.claimBlock());
      const pick = requested ? await this.checkRequested(blocks, requested) : await this.lowestFree(blocks);
      const target = pick ?? { block: await this.claimBlock(), ip: undefined };
      const ip = target.ip ?? formatIPv4(parseCidr(target.block).base + 1);
      const r = await this.store.txn(
        [{ key: addrKey(target.block, ip), modRevision: 0 }, { key: handleKey(handle), modRevision: 0 }],
        [
          { op: 'put', key: addrKey(target.block, ip), value: JSON.stringify({ handle, node: this.node }) },
          { op: 'put', key: handleKey(handle), value: JSON.stringify({ ip, block: target.block }) },
        ]);
      if (r.succeeded) return { ip, block: target.block, handle };
      if (requested) {
        const holder = await this.store.get(addrKey(target.block, ip));
        if (holder) throw new IpamError(`${requested} is already allocated (to ${(JSON.parse(holder.value) as { handle: string }).handle})`);
      }
    }
    throw new IpamError(`could not allocate an address for ${handle}: too much contention, try again`);
  }

  private async checkRequested(blocks: string[], requested: string): Promise<{ block: string; ip: string }> {
    let ip: number;
    try {
      ip = parseIPv4(requested);
    } catch (e) {
      throw new IpamError((e as Error).message);
    }
    const block = blocks.find((b) => cidrContains(parseCidr(b), ip));
    if (!block) throw new IpamError(`${requested} is outside this node's pod block${blocks.length > 1 ? 's' : ''} ${blocks.join(', ')}`);
    if (!isUsableHost(parseCidr(block), ip)) throw new IpamError(`${requested} is the network or broadcast address of ${block}`);
    const holder = await this.store.get(addrKey(block, formatIPv4(ip)));
    if (holder) throw new IpamError(`${requested} is already allocated (to ${(JSON.parse(holder.value) as { handle: string }).handle})`);
    return { block, ip: formatIPv4(ip) };
  }

  private async lowestFree(blocks: string[]): Promise<{ block: string; ip: string } | undefined> {
    for (const block of blocks) {
      const used = new Set((await this.store.list(addrPrefix(block))).map((kv) => kv.key.slice(addrPrefix(block).length)));
      for (const n of blockHosts(parseCidr(block))) {
        const ip = formatIPv4(n);
        if (!used.has(ip)) return { block, ip };
      }
    }
    return undefined;
  }

  /** Releases the address of `handle`; false when it held none. Idempotent. */
  async release(handle: string): Promise<boolean> {
    for (let race = 0; race < MAX_RACES; race++) {
      const h = await this.store.get(handleKey(handle));
      if (!h) return false;
      const { ip, block } = JSON.parse(h.value) as { ip: string; block: string };
      const a = await this.store.get(addrKey(block, ip));
      const compares = [{ key: handleKey(handle), modRevision: h.modRevision }];
      const ops: { op: 'delete'; key: string }[] = [{ op: 'delete', key: handleKey(handle) }];
      if (a && (JSON.parse(a.value) as { handle: string }).handle === handle) {
        compares.push({ key: addrKey(block, ip), modRevision: a.modRevision });
        ops.push({ op: 'delete', key: addrKey(block, ip) });
      }
      if ((await this.store.txn(compares, ops)).succeeded) return true;
    }
    throw new IpamError(`could not release ${handle}: too much contention, try again`);
  }

  /** Every allocation in this node's blocks. */
  async allocations(): Promise<Allocation[]> {
    const out: Allocation[] = [];
    for (const block of await this.nodeBlocks()) {
      for (const kv of await this.store.list(addrPrefix(block))) {
        out.push({ ip: kv.key.slice(addrPrefix(block).length), block, handle: (JSON.parse(kv.value) as { handle: string }).handle });
      }
    }
    return out;
  }
}
