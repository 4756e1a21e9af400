/**
 * The node's local state in stateDir: endpoint records and the address table, written
 * atomically, changed only under the node lock.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/config.js';
import type { BlockAllocations } from '../ipam/block.js';
import { nthBlock, parseCidr, formatCidr } from '../util/ipv4.js';
import { writeJsonAtomic } from '../util/fsatomic.js';
import { withLock } from '../util/lock.js';
import type { Endpoint } from './types.js';

export class NodeState {
  constructor(readonly cfg: Config) {}

  get dir(): string {
    return this.cfg.stateDir;
  }

  private get endpointsDir(): string {
    return join(this.dir, 'endpoints');
  }

  /** Runs `fn` holding the node lock (one writer at a time on this node). */
  locked<T>(fn: () => T): T {
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    return withLock(join(this.dir, '.lock'), fn);
  }

  endpoints(): Endpoint[] {
    if (!existsSync(this.endpointsDir)) return [];
    return readdirSync(this.endpointsDir)
      .filter((f) => /^\d+\.json$/.test(f))
      .map((f) => JSON.parse(readFileSync(join(this.endpointsDir, f), 'utf8')) as Endpoint)
      .sort((a, b) => a.id - b.id);
  }

  saveEndpoint(ep: Endpoint): void {
    writeJsonAtomic(join(this.endpointsDir, `${ep.id}.json`), ep);
  }

  removeEndpoint(id: number): void {
    rmSync(join(this.endpointsDir, `${id}.json`), { force: true });
  }

  /** The lowest endpoint id not in use (1-65535). */
  nextEndpointId(): number {
    const used = new Set(this.endpoints().map((e) => e.id));
    for (let id = 1; id < 65536; id++) if (!used.has(id)) return id;
    throw new Error('no free endpoint id (65535 endpoints on this node)');
  }

  /** This node's pod block: from the config, or the first block of the pool. */
  podBlock(): string {
    if (this.cfg.podCIDR) return this.cfg.podCIDR;
    return formatCidr(nthBlock(parseCidr(this.cfg.clusterCIDR), this.cfg.blockSize, 0));
  }

  ipam(): BlockAllocations {
    const p = join(this.dir, 'ipam.json');
    const block = this.podBlock();
    if (!existsSync(p)) return { block, allocations: {} };
    const s = JSON.parse(readFileSync(p, 'utf8')) as BlockAllocations;
    if (s.block !== block) {
      throw new Error(`this node's addresses come from ${s.block} but the config now says ${block}: run \`sluice node reset\` to change the block`);
    }
    return s;
  }

  saveIpam(s: BlockAllocations): void {
    writeJsonAtomic(join(this.dir, 'ipam.json'), s);
  }
}
