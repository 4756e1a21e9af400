/**
 * The node's local state in stateDir: endpoint records, written atomically, changed only
 * under the node lock (a flock on <stateDir>/.lock, so the agent and a CLI running without
 * it never write at the same time). Addresses live in the store (src/ipam/pool.ts).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/config.js';
import { writeJsonAtomic } from '../util/fsatomic.js';
import { withLock, withLockAsync } from '../util/lock.js';
import type { Endpoint } from './types.js';

/** Per lock file: the tail of this process's queue of lockedAsync callers. */
const queues = new Map<string, Promise<void>>();

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

  /**
   * Like `locked`, for async work; waits for the lock without blocking the event loop.
   * Callers in this process queue behind each other first, so only one of them at a time
   * waits on the file lock (which other processes, e.g. the CLI, may hold).
   */
  async lockedAsync<T>(fn: () => Promise<T>): Promise<T> {
    const path = join(this.dir, '.lock');
    const before = queues.get(path) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = before.then(() => mine);
    queues.set(path, tail);
    await before;
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o755 });
      return await withLockAsync(path, fn);
    } finally {
      release();
      if (queues.get(path) === tail) queues.delete(path);
    }
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
}
