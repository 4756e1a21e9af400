/**
 * libbpf's option structs and the kernel's info structs, as byte layouts. These are
 * libbpf/kernel ABI, not sluice's own types (those come from BTF); the offsets are
 * checked against the C headers by test/unit/libbpf-abi.test.ts.
 */
import { addressOf } from '../sys/ffi.js';

type FieldType = 'u32' | 'i32' | 'u64' | 'ptr' | 'bool';
type Layout = Record<string, readonly [offset: number, type: FieldType]>;

export interface Struct {
  readonly buf: Buffer;
  /** Buffers referenced by pointer fields: kept alive as long as the struct. */
  readonly refs: Buffer[];
  set(field: string, value: number | bigint | boolean | Buffer | null): Struct;
  get(field: string): number | bigint;
}

function make(layout: Layout, size: number, sized: boolean): () => Struct {
  return () => {
    const buf = Buffer.alloc(size);
    if (sized) buf.writeBigUInt64LE(BigInt(size), 0);
    const refs: Buffer[] = [];
    const s: Struct = {
      buf,
      refs,
      set(field, value) {
        const f = layout[field];
        if (!f) throw new Error(`no field ${field}`);
        const [off, type] = f;
        switch (type) {
          case 'u32': buf.writeUInt32LE(Number(value), off); break;
          case 'i32': buf.writeInt32LE(Number(value), off); break;
          case 'u64': buf.writeBigUInt64LE(BigInt(value as number | bigint), off); break;
          case 'bool': buf.writeUInt8(value ? 1 : 0, off); break;
          case 'ptr':
            if (value === null) buf.writeBigUInt64LE(0n, off);
            else if (Buffer.isBuffer(value)) { refs.push(value); buf.writeBigUInt64LE(addressOf(value), off); }
            else buf.writeBigUInt64LE(BigInt(value as number | bigint), off);
            break;
        }
        return s;
      },
      get(field) {
        const f = layout[field];
        if (!f) throw new Error(`no field ${field}`);
        const [off, type] = f;
        switch (type) {
          case 'u32': return buf.readUInt32LE(off);
          case 'i32': return buf.readInt32LE(off);
          case 'bool': return buf.readUInt8(off);
          default: return buf.readBigUInt64LE(off);
        }
      },
    };
    return s;
  };
}

export const LAYOUTS = {
  bpf_object_open_opts: { size: 80, fields: { object_name: [8, 'ptr'], relaxed_maps: [16, 'bool'], pin_root_path: [24, 'ptr'], kconfig: [40, 'ptr'], btf_custom_path: [48, 'ptr'], kernel_log_buf: [56, 'ptr'], kernel_log_size: [64, 'u64'], kernel_log_level: [72, 'u32'] } },
  bpf_test_run_opts: { size: 80, fields: { data_in: [8, 'ptr'], data_out: [16, 'ptr'], data_size_in: [24, 'u32'], data_size_out: [28, 'u32'], ctx_in: [32, 'ptr'], ctx_out: [40, 'ptr'], ctx_size_in: [48, 'u32'], ctx_size_out: [52, 'u32'], retval: [56, 'u32'], repeat: [60, 'i32'], duration: [64, 'u32'], flags: [68, 'u32'], cpu: [72, 'u32'], batch_size: [76, 'u32'] } },
  bpf_tc_hook: { size: 24, fields: { ifindex: [8, 'i32'], attach_point: [12, 'u32'], parent: [16, 'u32'] } },
  bpf_tc_opts: { size: 32, fields: { prog_fd: [8, 'i32'], flags: [12, 'u32'], prog_id: [16, 'u32'], handle: [20, 'u32'], priority: [24, 'u32'] } },
  bpf_map_batch_opts: { size: 24, fields: { elem_flags: [8, 'u64'], flags: [16, 'u64'] } },
} as const satisfies Record<string, { size: number; fields: Layout }>;

export type OptsName = keyof typeof LAYOUTS;

/** A zeroed libbpf opts struct with `sz` set, as libbpf's LIBBPF_OPTS() makes it. */
export function opts(name: OptsName): Struct {
  const l = LAYOUTS[name];
  return make(l.fields, l.size, true)();
}

/** Kernel info structs read with bpf_obj_get_info_by_fd (uapi, stable). */
export const MAP_INFO = { size: 88, type: 0, id: 4, keySize: 8, valueSize: 12, maxEntries: 16, mapFlags: 20, name: 24, btfId: 64, btfKeyTypeId: 68, btfValueTypeId: 72 } as const;
export const PROG_INFO = { size: 232, type: 0, id: 4, tag: 8, loadTime: 40, name: 64, btfId: 128, runTimeNs: 192, runCnt: 200 } as const;
/** `ifindex`: the first word of the per-type union, the device of xdp and tcx links (0 once the device is gone or the link was detached). */
export const LINK_INFO = { size: 48, type: 0, id: 4, progId: 8, ifindex: 16 } as const;

export function cString(buf: Buffer, off: number, len: number): string {
  const end = buf.indexOf(0, off);
  return buf.toString('utf8', off, end < 0 || end > off + len ? off + len : end);
}
