/**
 * Cluster IPAM on the store. The pool (clusterCIDR) is cut into node blocks; a node
 * claims a block the first time it needs one and keeps it; a pod gets an address from
 * its node's blocks. Every claim is one compare-and-swap transaction, so no block or
 * address is ever handed out twice: not under concurrent adds on one node, not across
 * nodes sharing etcd, and not after a crash (an allocation is a single atomic write).
 *
 * In the store (keys in store/keys.ts): which node owns each block, who holds each allocated
 * address, and each handle's address (idempotency: (container, interface) -> address).
 */
import { addrKey, blockAddrsPrefix, blockKey, blockOfKey, handleKey, IPAM_BLOCKS, ipOfAddrKey } from '../store/keys.js';
import type { Store } from '../store/types.js';
import {
  blockCount, blockHosts, cidrContains, formatCidr, formatIPv4, isUsableHost, nthBlock, parseCidr, parseIPv4, type Cidr,
} from '../util/ipv4.js';
import { Serial } from '../util/serial.js';
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

/**
 * Lost compare-and-swap races (each followed by a fresh read) before giving up. Every
 * lost race is another writer's success, so this only bounds pathological contention.
 */
const MAX_RACES = 64;

const ownerOf = (value: string) => (JSON.parse(value) as { node: string }).node;
const holderOf = (value: string) => (JSON.parse(value) as { handle: string }).handle;
const byAddress = (a: string, b: string) => parseCidr(a).base - parseCidr(b).base;

/** Runs `fn`, turning a plain parse error (bad CIDR or address) into an IpamError. */
function parsed<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw e instanceof IpamError ? e : new IpamError((e as Error).message);
  }
}

export class Pool {
  private readonly pool: Cidr;
  /** This object's allocations, one at a time (see allocate). */
  private readonly queue = new Serial();

  constructor(private readonly store: Store, private readonly cfg: PoolConfig, readonly node: string) {
    this.pool = parsed(() => parseCidr(cfg.clusterCIDR));
    if (!Number.isInteger(cfg.blockSize) || cfg.blockSize < this.pool.prefix || cfg.blockSize > 30) {
      throw new IpamError(`block size /${cfg.blockSize} does not fit the pool ${cfg.clusterCIDR}`);
    }
  }

  /** Blocks owned by this node, in address order. */
  async nodeBlocks(): Promise<string[]> {
    const all = await this.store.list(IPAM_BLOCKS);
    return all.filter((kv) => ownerOf(kv.value) === this.node).map((kv) => blockOfKey(kv.key)).sort(byAddress);
  }

  /** Every block and its owner, in address order. */
  async blocks(): Promise<{ block: string; node: string }[]> {
    return (await this.store.list(IPAM_BLOCKS)).map((kv) => ({ block: blockOfKey(kv.key), node: ownerOf(kv.value) }))
      .sort((a, b) => byAddress(a.block, b.block));
  }

  /** The lowest block of the pool not in `taken`; an exhausted pool is an error. */
  private lowestFreeBlock(taken: ReadonlySet<string>): string {
    const n = blockCount(this.pool, this.cfg.blockSize);
    for (let i = 0; i < n; i++) {
      const b = formatCidr(nthBlock(this.pool, this.cfg.blockSize, i));
      if (!taken.has(b)) return b;
    }
    throw new IpamError(`the pool ${this.cfg.clusterCIDR} is exhausted: all ${n} blocks of /${this.cfg.blockSize} are claimed`);
  }

  /** One compare-and-swap claim of `block` for this node; false when it exists already. */
  private async tryClaim(block: string): Promise<boolean> {
    const r = await this.store.txn([{ key: blockKey(block), modRevision: 0 }],
      [{ op: 'put', key: blockKey(block), value: JSON.stringify({ node: this.node }) }]);
    return r.succeeded;
  }

  /** Claims the lowest free block of the pool for this node (always a new one). */
  async claimBlock(): Promise<string> {
    for (let race = 0; race < MAX_RACES; race++) {
      const free = this.lowestFreeBlock(new Set((await this.store.list(IPAM_BLOCKS)).map((kv) => blockOfKey(kv.key))));
      if (await this.tryClaim(free)) return free;
    }
    throw new IpamError('could not claim a block: too much contention, try again');
  }

  /**
   * One attempt to give this node one more block because the blocks in `known` (all it
   * had at the caller's last read) are full. Other callers of this node (other Pool
   * objects, other processes) find them full at the same time: when one of them has
   * claimed a block since, that one is used instead of claiming another, so a node never
   * claims blocks it does not need. False when the claim lost a race (read again, retry).
   */
  private async grow(known: readonly string[]): Promise<boolean> {
    const had = new Set(known);
    const taken = new Set<string>();
    for (const kv of await this.store.list(IPAM_BLOCKS)) {
      const b = blockOfKey(kv.key);
      if (ownerOf(kv.value) === this.node && !had.has(b)) return true;
      taken.add(b);
    }
    return this.tryClaim(this.lowestFreeBlock(taken));
  }

  /**
   * This node's first block, claiming one if it has none (a node keeps its blocks across
   * restarts). With `wanted` (the config's podCIDR) that block is claimed, or confirmed
   * as already this node's; another node holding it is an error.
   */
  async ensureBlock(wanted?: string): Promise<string> {
    if (wanted) {
      const b = parsed(() => parseCidr(wanted));
      if (b.prefix !== this.cfg.blockSize || !cidrContains(this.pool, b.base)) {
        throw new IpamError(`${wanted} is not a /${this.cfg.blockSize} block of the pool ${this.cfg.clusterCIDR}`);
      }
      const block = formatCidr(b);
      for (let race = 0; race < MAX_RACES; race++) {
        const kv = await this.store.get(blockKey(block));
        if (kv) {
          const owner = ownerOf(kv.value);
          if (owner === this.node) return block;
          throw new IpamError(`the pod block ${block} belongs to node ${owner}, not ${this.node}`);
        }
        if (await this.tryClaim(block)) return block;
      }
      throw new IpamError(`could not claim ${block}: too much contention, try again`);
    }
    for (let race = 0; race < MAX_RACES; race++) {
      const mine = await this.nodeBlocks();
      if (mine[0]) return mine[0];
      await this.grow(mine); // then read back the block we (or another caller of this node) claimed
    }
    throw new IpamError('could not claim a block: too much contention, try again');
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
   * one of this node's blocks, claiming a new block when they are full. Concurrent callers
   * that lost a race for an address spread over the next free ones (at random among the
   * first 2^n after n lost races), so many concurrent allocations settle in a few rounds.
   *
   * Calls on one Pool object run one at a time: a burst of pod starts on one node is a
   * queue, not a herd of transactions racing each other for the same lowest address (300
   * concurrent calls on two nodes cost 62 store operations each, and single operations
   * waited over 15 s in a loaded etcd). Races remain between nodes and between processes
   * of one node, and the compare-and-swap settles those.
   */
  allocate(handle: string, requested?: string): Promise<Allocation> {
    return this.queue.run(() => this.allocateNow(handle, requested));
  }

  private async allocateNow(handle: string, requested?: string): Promise<Allocation> {
    const want = requested === undefined ? undefined : formatIPv4(parsed(() => parseIPv4(requested)));
    let lost = 0;
    const lose = () => {
      if (++lost >= MAX_RACES) throw new IpamError(`could not allocate an address for ${handle}: too much contention, try again`);
    };
    for (;;) {
      const existing = await this.lookup(handle);
      if (existing) {
        if (want !== undefined && want !== existing.ip) {
          throw new IpamError(`${handle} already holds ${existing.ip}, not ${requested}`);
        }
        return existing;
      }
      const blocks = await this.nodeBlocks();
      // A node's first allocation claims its first block (a requested address is then checked against it).
      const target = blocks.length === 0 ? undefined
        : want !== undefined ? await this.checkRequested(blocks, want, requested!, handle) : await this.pickFree(blocks, lost);
      if (!target) {
        // No block, every block full, or the requested address taken by this very handle
        // meanwhile: (grow and) read again: the handle, the blocks, the addresses.
        if (blocks.length > 0 && want !== undefined) lose();
        else if (!(await this.grow(blocks))) lose();
        continue;
      }
      const r = await this.store.txn(
        [{ key: addrKey(target.block, target.ip), modRevision: 0 }, { key: handleKey(handle), modRevision: 0 }],
        [
          { op: 'put', key: addrKey(target.block, target.ip), value: JSON.stringify({ handle, node: this.node }) },
          { op: 'put', key: handleKey(handle), value: JSON.stringify({ ip: target.ip, block: target.block }) },
        ]);
      if (r.succeeded) return { ip: target.ip, block: target.block, handle };
      lose(); // the address or the handle was taken meanwhile; the next round tells which
    }
  }

  /**
   * The block of a requested address, checked: in one of `blocks`, usable, free.
   * Undefined when `handle` itself holds it (a concurrent call for the same handle won).
   */
  private async checkRequested(blocks: string[], ip: string, requested: string, handle: string): Promise<{ block: string; ip: string } | undefined> {
    const n = parseIPv4(ip);
    const block = blocks.find((b) => cidrContains(parseCidr(b), n));
    if (!block) throw new IpamError(`${requested} is outside this node's pod block${blocks.length > 1 ? 's' : ''} ${blocks.join(', ')}`);
    if (!isUsableHost(parseCidr(block), n)) throw new IpamError(`${requested} is the network or broadcast address of ${block}`);
    const holder = await this.store.get(addrKey(block, ip));
    if (holder) {
      const h = holderOf(holder.value);
      if (h === handle) return undefined;
      throw new IpamError(`${requested} is already allocated (to ${h})`);
    }
    return { block, ip };
  }

  /**
   * A free address of `blocks`: the lowest, or after `lost` lost races one at random
   * among the lowest 2^lost free ones. Undefined when every block is full.
   */
  private async pickFree(blocks: string[], lost: number): Promise<{ block: string; ip: string } | undefined> {
    const spread = 2 ** Math.min(lost, 16);
    const free: { block: string; ip: string }[] = [];
    for (const block of blocks) {
      const used = new Set((await this.store.list(blockAddrsPrefix(block))).map((kv) => ipOfAddrKey(block, kv.key)));
      for (const n of blockHosts(parseCidr(block))) {
        const ip = formatIPv4(n);
        if (!used.has(ip)) free.push({ block, ip });
        if (free.length >= spread) break;
      }
      if (free.length >= spread) break;
    }
    return free.length === 0 ? undefined : free[Math.floor(Math.random() * free.length)];
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
      if (a && holderOf(a.value) === handle) {
        compares.push({ key: addrKey(block, ip), modRevision: a.modRevision });
        ops.push({ op: 'delete', key: addrKey(block, ip) });
      }
      if ((await this.store.txn(compares, ops)).succeeded) return true;
    }
    throw new IpamError(`could not release ${handle}: too much contention, try again`);
  }

  /**
   * Gives up everything this node holds: its addresses, their handles and its blocks (the
   * node is leaving: `sluice node reset`). Returns how many blocks were released.
   */
  async releaseNode(): Promise<number> {
    let n = 0;
    for (const block of await this.nodeBlocks()) {
      for (const kv of await this.store.list(blockAddrsPrefix(block))) {
        const { handle } = JSON.parse(kv.value) as { handle: string };
        const h = await this.store.get(handleKey(handle));
        await this.store.txn([], [{ op: 'delete', key: kv.key }, ...(h ? [{ op: 'delete' as const, key: handleKey(handle) }] : [])]);
      }
      const b = await this.store.get(blockKey(block));
      if (b && (JSON.parse(b.value) as { node: string }).node === this.node) {
        if ((await this.store.txn([{ key: blockKey(block), modRevision: b.modRevision }], [{ op: 'delete', key: blockKey(block) }])).succeeded) n++;
      }
    }
    return n;
  }

  /** Every allocation in this node's blocks. */
  async allocations(): Promise<Allocation[]> {
    const out: Allocation[] = [];
    for (const block of await this.nodeBlocks()) {
      for (const kv of await this.store.list(blockAddrsPrefix(block))) {
        out.push({ ip: ipOfAddrKey(block, kv.key), block, handle: holderOf(kv.value) });
      }
    }
    return out;
  }
}
