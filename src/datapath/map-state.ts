/**
 * A pinned map's state as far as the kernel tells it without reading its entries: its id
 * and the memory it accounts to it (`memlock` in /proc/self/fdinfo/FD). One open and one
 * read whatever the map holds; the agent compares it with the state after its last write
 * to notice entries added or deleted behind its back (see src/agent/map-sync.ts).
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../config/config.js';
import { openMap } from './loader.js';

export interface MapState {
  /** Kernel id of the map: another id means the map was replaced. */
  id: number;
  /**
   * What the kernel accounts to the map. Since Linux 6.4 it follows the number of entries of
   * LPM tries and of hashes that are not preallocated (entries × element size); on older
   * kernels it does not change with the entries.
   */
  memlock: number;
}

/** `memlock` of a BPF map's file descriptor (-1 when the kernel does not say). */
export function memlockOf(fd: number): number {
  const m = /^memlock:\s*(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  return m ? Number(m[1]) : -1;
}

/**
 * The state of the pinned map `name`; undefined when it cannot be opened (the caller reads
 * the map back then, and that reports why).
 */
export function pinnedMapState(cfg: Pick<Config, 'pinRoot'>, name: string): MapState | undefined {
  let m;
  try {
    m = openMap(cfg, name);
  } catch {
    return undefined;
  }
  try {
    return { id: m.info.id, memlock: memlockOf(m.fd) };
  } catch {
    return undefined;
  } finally {
    m.close();
  }
}
