/**
 * What every map module (src/maps/<map>.ts) is built on: a MapDef names the pinned map, the C
 * types of its key and value and the fields TypeScript uses of them. Opening the pinned map
 * holds those names against the map's own BTF once per map instance (a renamed struct or a
 * member TypeScript uses that is gone fails there, saying which, instead of reading
 * undefined); the codec then encodes and decodes by BTF's layout, so a member the C side
 * adds needs no TypeScript change.
 *
 * The list of every map is registry.ts, made of the modules' MapDefs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { BpfMap, kernelBtf } from '../bpf/map.js';
import type { Config } from '../config/config.js';
import { nodePins } from '../datapath/pins.js';
import type { Btf } from '../bpf/btf.js';
import { typeProblems, type CType, type CTypeNames } from './btf-check.js';

export type { CType, CTypeNames, FieldNames } from './btf-check.js';

/**
 * A pinned map's state as far as the kernel tells it without reading its entries: one open
 * and one read whatever the map holds; the agent compares it with the state after its last
 * write to notice entries added or deleted behind its back (see src/agent/map-sync.ts).
 */
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

export interface MapSpec<K, V> {
  /** The pinned name: the map's variable in include/sluice/maps.h. */
  name: string;
  /** Key and value types (none for a ring buffer); a per-CPU value names one CPU's type. */
  key?: CType<K>;
  value?: CType<V>;
  /** Its fill is exported (sluice_map_entries, sluice_map_max_entries). */
  watchFill?: boolean;
}

export class MapDef<K = unknown, V = unknown> {
  readonly name: string;
  /** The C types of key and value, as held against BTF. */
  readonly key: CTypeNames | undefined;
  readonly value: CTypeNames | undefined;
  readonly watchFill: boolean;
  /** The BTF (id, key type, value type) last found to match. */
  private checked: string | undefined;

  constructor(spec: MapSpec<K, V>) {
    this.name = spec.name;
    // The field lists were checked against K and V where the spec was written.
    this.key = spec.key as CTypeNames | undefined;
    this.value = spec.value as CTypeNames | undefined;
    this.watchFill = spec.watchFill ?? false;
  }

  /** Where the map is pinned on the node. */
  path(cfg: Pick<Config, 'pinRoot'>): string {
    return nodePins(cfg).map(this.name);
  }

  /** Whether the map is pinned (the datapath was loaded). */
  pinned(cfg: Pick<Config, 'pinRoot'>): boolean {
    return existsSync(this.path(cfg));
  }

  /** Opens the pinned map, its types held against its BTF; the caller closes it. */
  open(cfg: Pick<Config, 'pinRoot'>): BpfMap<K, V> {
    const m = BpfMap.openPinned<K, V>(this.path(cfg));
    try {
      this.check(m);
    } catch (e) {
      m.close();
      throw e;
    }
    return m;
  }

  /** Runs `fn` on the open map and closes it. */
  with<T>(cfg: Pick<Config, 'pinRoot'>, fn: (m: BpfMap<K, V>) => T): T {
    const m = this.open(cfg);
    try {
      return fn(m);
    } finally {
      m.close();
    }
  }

  /** The map's state; undefined when it cannot be opened (the caller reads the map back then, and that reports why). */
  state(cfg: Pick<Config, 'pinRoot'>): MapState | undefined {
    let m: BpfMap<K, V>;
    try {
      m = this.open(cfg);
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

  /** What is wrong with the types of `btf`'s key and value ids for this map (nothing: []). */
  problems(btf: Btf, keyId: number | undefined, valueId: number | undefined): string[] {
    const out: string[] = [];
    if (this.key && keyId) out.push(...typeProblems(btf, keyId, this.key, 'its key'));
    if (this.value && valueId) out.push(...typeProblems(btf, valueId, this.value, 'its value'));
    return out;
  }

  private check(m: BpfMap<K, V>): void {
    const { btfId, btfKeyTypeId, btfValueTypeId } = m.info;
    if (!btfId) return; // no BTF: the codec takes raw bytes only, and says so
    const sig = `${btfId}/${btfKeyTypeId}/${btfValueTypeId}`;
    if (this.checked === sig) return;
    const problems = this.problems(kernelBtf(btfId), btfKeyTypeId, btfValueTypeId);
    if (problems.length) {
      throw new Error(`map ${this.name} is not what sluice reads and writes: ${problems.join('; ')} (it was made by another build of the datapath)`);
    }
    this.checked = sig;
  }
}
