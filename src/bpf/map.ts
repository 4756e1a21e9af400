/**
 * A BPF map with keys and values encoded from its BTF. The map's key and value types
 * come from the kernel (the BTF the map was created with), so user space holds no copy
 * of a C struct: `lookup({ ip: '10.0.0.1' })` works for any map whose key struct has
 * an `ip` member.
 */
import { MAP_INFO, cString, opts } from './abi.js';
import { Btf } from './btf.js';
import { codecFor, percpuCodec, type Codec } from './codec.js';
import { BpfError } from './errors.js';
import { closeFd, objGet, objInfo } from './fd.js';
import { copyOut, isNull, lastErrno } from '../sys/ffi.js';
import { libbpf } from './native.js';
import { pinAtomically } from './pin.js';

export const MAP_TYPES = [
  'unspec', 'hash', 'array', 'prog_array', 'perf_event_array', 'percpu_hash', 'percpu_array',
  'stack_trace', 'cgroup_array', 'lru_hash', 'lru_percpu_hash', 'lpm_trie', 'array_of_maps',
  'hash_of_maps', 'devmap', 'sockmap', 'cpumap', 'xskmap', 'sockhash', 'cgroup_storage',
  'reuseport_sockarray', 'percpu_cgroup_storage', 'queue', 'stack', 'sk_storage', 'devmap_hash',
  'struct_ops', 'ringbuf', 'inode_storage', 'task_storage', 'bloom_filter', 'user_ringbuf',
  'cgrp_storage',
] as const;
const PERCPU = new Set(['percpu_hash', 'percpu_array', 'lru_percpu_hash', 'percpu_cgroup_storage']);

export enum UpdateFlag { Any = 0, NoExist = 1, Exist = 2 }

export interface MapInfo {
  id: number;
  type: string;
  name: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  btfId: number;
  btfKeyTypeId: number;
  btfValueTypeId: number;
}

const btfCache = new Map<number, Btf>();

/** The BTF a kernel object was created with, parsed once per process. */
export function kernelBtf(btfId: number): Btf {
  const hit = btfCache.get(btfId);
  if (hit) return hit;
  const lib = libbpf();
  const btf = lib.btf__load_from_kernel_by_id(btfId);
  if (isNull(btf)) throw new BpfError(`load BTF id ${btfId} from the kernel`, lastErrno());
  try {
    const size = [0];
    const raw = lib.btf__raw_data(btf, size);
    const parsed = Btf.parse(copyOut(raw, size[0]!));
    btfCache.set(btfId, parsed);
    return parsed;
  } finally {
    lib.btf__free(btf);
  }
}

export function mapInfo(fd: number): MapInfo {
  const b = objInfo(fd, MAP_INFO.size, `map fd ${fd}`);
  const type = b.readUInt32LE(MAP_INFO.type);
  return {
    id: b.readUInt32LE(MAP_INFO.id),
    type: MAP_TYPES[type] ?? `type_${type}`,
    name: cString(b, MAP_INFO.name, 16),
    keySize: b.readUInt32LE(MAP_INFO.keySize),
    valueSize: b.readUInt32LE(MAP_INFO.valueSize),
    maxEntries: b.readUInt32LE(MAP_INFO.maxEntries),
    flags: b.readUInt32LE(MAP_INFO.mapFlags),
    btfId: b.readUInt32LE(MAP_INFO.btfId),
    btfKeyTypeId: b.readUInt32LE(MAP_INFO.btfKeyTypeId),
    btfValueTypeId: b.readUInt32LE(MAP_INFO.btfValueTypeId),
  };
}

let ncpus: number | undefined;
export function possibleCpus(): number {
  if (ncpus === undefined) {
    const n = libbpf().libbpf_num_possible_cpus() as number;
    if (n < 0) throw new BpfError('count possible CPUs', -n);
    ncpus = n;
  }
  return ncpus;
}

function rawCodec(size: number, what: string): Codec {
  return {
    size,
    encode(v: unknown) {
      if (!Buffer.isBuffer(v) || v.length !== size) throw new Error(`${what}: expected a ${size}-byte Buffer (the map has no BTF)`);
      return v;
    },
    encodeInto(v: unknown, buf: Buffer, off: number) { (this.encode(v) as Buffer).copy(buf, off); },
    decode(buf: Uint8Array, off = 0) { return Buffer.from(buf.subarray(off, off + size)); },
    describe() { return `u8[${size}]`; },
  };
}

export class BpfMap<K = unknown, V = unknown> {
  readonly key: Codec;
  readonly value: Codec;
  /** Bytes of one value buffer as the syscall sees it (per-CPU maps: one slot per CPU). */
  readonly valueBufSize: number;
  readonly perCpu: boolean;

  constructor(readonly fd: number, readonly info: MapInfo, btf: Btf | undefined, private readonly owned: boolean) {
    this.perCpu = PERCPU.has(info.type);
    const hasBtf = btf && info.btfValueTypeId !== 0;
    this.key = hasBtf && info.btfKeyTypeId ? codecFor(btf, info.btfKeyTypeId) : rawCodec(info.keySize, `${info.name} key`);
    const v = hasBtf ? codecFor(btf, info.btfValueTypeId) : rawCodec(info.valueSize, `${info.name} value`);
    this.value = this.perCpu ? percpuCodec(v, possibleCpus()) : v;
    this.valueBufSize = this.perCpu ? Math.ceil(info.valueSize / 8) * 8 * possibleCpus() : info.valueSize;
  }

  /** Opens a pinned map; its key and value codecs come from the map's kernel BTF. */
  static openPinned<K = unknown, V = unknown>(path: string): BpfMap<K, V> {
    return BpfMap.fromFd<K, V>(objGet(path, 'map'), true);
  }

  static fromFd<K = unknown, V = unknown>(fd: number, owned: boolean): BpfMap<K, V> {
    try {
      const info = mapInfo(fd);
      const btf = info.btfId ? kernelBtf(info.btfId) : undefined;
      return new BpfMap<K, V>(fd, info, btf, owned);
    } catch (e) {
      if (owned) closeFd(fd);
      throw e;
    }
  }

  get name(): string {
    return this.info.name;
  }

  encodeKey(key: K): Buffer {
    return this.key.encode(key);
  }

  lookupRaw(key: Buffer): Buffer | undefined {
    const out = Buffer.alloc(this.valueBufSize);
    const ret = libbpf().bpf_map_lookup_elem(this.fd, key, out) as number;
    if (ret === 0) return out;
    if (-ret === 2 /* ENOENT */) return undefined;
    throw new BpfError(`lookup in map ${this.name}`, -ret);
  }

  lookup(key: K): V | undefined {
    const raw = this.lookupRaw(this.encodeKey(key));
    return raw === undefined ? undefined : (this.value.decode(raw) as V);
  }

  update(key: K, value: V, flag: UpdateFlag = UpdateFlag.Any): void {
    this.updateRaw(this.encodeKey(key), this.encodeValue(value), flag);
  }

  encodeValue(value: V): Buffer {
    const v = this.value.encode(value);
    if (v.length === this.valueBufSize) return v;
    const out = Buffer.alloc(this.valueBufSize);
    v.copy(out);
    return out;
  }

  updateRaw(key: Buffer, value: Buffer, flag: UpdateFlag = UpdateFlag.Any): void {
    const ret = libbpf().bpf_map_update_elem(this.fd, key, value, flag) as number;
    if (ret < 0) throw new BpfError(`update map ${this.name}`, -ret);
  }

  /** Deletes `key`; false when it was not there. */
  delete(key: K): boolean {
    return this.deleteRaw(this.encodeKey(key));
  }

  deleteRaw(key: Buffer): boolean {
    const ret = libbpf().bpf_map_delete_elem(this.fd, key) as number;
    if (ret === 0) return true;
    if (-ret === 2) return false;
    throw new BpfError(`delete from map ${this.name}`, -ret);
  }

  /**
   * Raw keys, by bpf_map_get_next_key. Keys deleted while iterating are tolerated, but in
   * a hash map, deleting the key just yielded makes the walk start over at the first key:
   * collect what to delete, then delete (see clear()).
   */
  *rawKeys(): Generator<Buffer> {
    const lib = libbpf();
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.info.keySize);
      const ret = lib.bpf_map_get_next_key(this.fd, prev, next) as number;
      if (-ret === 2) return;
      if (ret < 0) throw new BpfError(`iterate map ${this.name}`, -ret);
      yield next;
      prev = next;
    }
  }

  *keys(): Generator<K> {
    for (const k of this.rawKeys()) yield this.key.decode(k) as K;
  }

  *entries(): Generator<[K, V]> {
    for (const k of this.rawKeys()) {
      const v = this.lookupRaw(k);
      if (v !== undefined) yield [this.key.decode(k) as K, this.value.decode(v) as V];
    }
  }

  /** Updates many entries in one syscall per chunk; falls back to single updates where batch ops are unsupported. */
  updateBatch(entries: Iterable<readonly [K, V]>, flag: UpdateFlag = UpdateFlag.Any): number {
    const list = [...entries];
    if (list.length === 0) return 0;
    const keys = Buffer.alloc(list.length * this.info.keySize);
    const values = Buffer.alloc(list.length * this.valueBufSize);
    list.forEach(([k, v], i) => {
      this.key.encodeInto(k, keys, i * this.info.keySize);
      this.encodeValue(v).copy(values, i * this.valueBufSize);
    });
    const o = opts('bpf_map_batch_opts').set('elem_flags', flag);
    const count = [list.length];
    const ret = libbpf().bpf_map_update_batch(this.fd, keys, values, count, o.buf) as number;
    if (ret === 0) return list.length;
    if (-ret === 22 || -ret === 95 /* EINVAL/EOPNOTSUPP: no batch ops for this map type */) {
      for (let i = 0; i < list.length; i++) {
        this.updateRaw(keys.subarray(i * this.info.keySize, (i + 1) * this.info.keySize),
          values.subarray(i * this.valueBufSize, (i + 1) * this.valueBufSize), flag);
      }
      return list.length;
    }
    throw new BpfError(`batch update of map ${this.name} (${count[0]} of ${list.length} applied)`, -ret);
  }

  /** How many entries the map holds (a walk over its keys; nothing is decoded). */
  count(): number {
    let n = 0;
    for (const _ of this.rawKeys()) n++;
    return n;
  }

  /** Removes every entry. */
  clear(): number {
    let n = 0;
    for (const k of [...this.rawKeys()]) if (this.deleteRaw(k)) n++;
    return n;
  }

  pin(path: string): void {
    pinAtomically(this.fd, path, `map ${this.name}`);
  }

  close(): void {
    if (this.owned) closeFd(this.fd);
  }
}
