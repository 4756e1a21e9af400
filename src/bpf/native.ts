/**
 * The raw FFI surface of libbpf.so.1, bound through koffi (src/sys/ffi.ts; libc is
 * src/sys/libc.ts). Nothing here interprets results; callers turn negative returns into
 * errors (see errors.ts).
 */
import { bind, koffi, type Fn } from '../sys/ffi.js';

export interface LibBpf {
  bpf_object__open_file: Fn;
  bpf_object__load: Fn;
  bpf_object__close: Fn;
  bpf_object__btf: Fn;
  bpf_object__next_program: Fn;
  bpf_object__next_map: Fn;
  bpf_object__find_map_by_name: Fn;
  bpf_program__name: Fn;
  bpf_program__section_name: Fn;
  bpf_program__fd: Fn;
  bpf_program__type: Fn;
  bpf_map__name: Fn;
  bpf_map__fd: Fn;
  bpf_map__type: Fn;
  bpf_map__key_size: Fn;
  bpf_map__value_size: Fn;
  bpf_map__max_entries: Fn;
  bpf_map__btf_key_type_id: Fn;
  bpf_map__btf_value_type_id: Fn;
  bpf_map__pin_path: Fn;
  bpf_map__is_pinned: Fn;
  bpf_map__initial_value: Fn;
  bpf_map__set_initial_value: Fn;
  btf__raw_data: Fn;
  btf__load_from_kernel_by_id: Fn;
  btf__free: Fn;
  bpf_obj_get: Fn;
  bpf_obj_pin: Fn;
  bpf_obj_get_info_by_fd: Fn;
  bpf_prog_get_fd_by_id: Fn;
  bpf_map_get_fd_by_id: Fn;
  bpf_link_get_fd_by_id: Fn;
  bpf_map_lookup_elem: Fn;
  bpf_map_update_elem: Fn;
  bpf_map_delete_elem: Fn;
  bpf_map_get_next_key: Fn;
  bpf_map_update_batch: Fn;
  bpf_prog_test_run_opts: Fn;
  bpf_tc_hook_create: Fn;
  bpf_tc_hook_destroy: Fn;
  bpf_tc_attach: Fn;
  bpf_tc_detach: Fn;
  bpf_tc_query: Fn;
  bpf_link_create: Fn;
  bpf_link_update: Fn;
  bpf_link_detach: Fn;
  bpf_xdp_attach: Fn;
  bpf_xdp_detach: Fn;
  bpf_xdp_query_id: Fn;
  libbpf_num_possible_cpus: Fn;
  libbpf_probe_bpf_helper: Fn;
  libbpf_probe_bpf_prog_type: Fn;
  libbpf_set_print: Fn;
  ring_buffer__new: Fn;
  ring_buffer__consume: Fn;
  ring_buffer__free: Fn;
}

let bpf: LibBpf | undefined;
/** Keeps the registered print callback alive for the life of the process. */
export let printProto: ReturnType<typeof koffi.proto> | undefined;
/** int (*ring_buffer_sample_fn)(void *ctx, void *data, size_t size) */
export let ringSampleProto: ReturnType<typeof koffi.proto> | undefined;

export function libbpf(): LibBpf {
  if (bpf) return bpf;
  let lib;
  try {
    lib = koffi.load('libbpf.so.1');
  } catch (e) {
    throw new Error(`cannot load libbpf.so.1 (install Debian's libbpf1 package): ${(e as Error).message}`);
  }
  printProto = koffi.proto('int libbpf_print_fn(int level, void *fmt, void *args)');
  ringSampleProto = koffi.proto('int ring_buffer_sample_fn(void *ctx, void *data, size_t size)');
  bpf = bind<LibBpf>(lib, [
    'void *bpf_object__open_file(const char *path, const void *opts)',
    'int bpf_object__load(void *obj)',
    'void bpf_object__close(void *obj)',
    'void *bpf_object__btf(void *obj)',
    'void *bpf_object__next_program(void *obj, void *prev)',
    'void *bpf_object__next_map(void *obj, void *prev)',
    'void *bpf_object__find_map_by_name(void *obj, const char *name)',
    'const char *bpf_program__name(void *prog)',
    'const char *bpf_program__section_name(void *prog)',
    'int bpf_program__fd(void *prog)',
    'int bpf_program__type(void *prog)',
    'const char *bpf_map__name(void *map)',
    'int bpf_map__fd(void *map)',
    'int bpf_map__type(void *map)',
    'uint32_t bpf_map__key_size(void *map)',
    'uint32_t bpf_map__value_size(void *map)',
    'uint32_t bpf_map__max_entries(void *map)',
    'uint32_t bpf_map__btf_key_type_id(void *map)',
    'uint32_t bpf_map__btf_value_type_id(void *map)',
    'const char *bpf_map__pin_path(void *map)',
    'bool bpf_map__is_pinned(void *map)',
    'void *bpf_map__initial_value(void *map, _Out_ size_t *psize)',
    'int bpf_map__set_initial_value(void *map, const void *data, size_t size)',
    'void *btf__raw_data(void *btf, _Out_ uint32_t *size)',
    'void *btf__load_from_kernel_by_id(uint32_t id)',
    'void btf__free(void *btf)',
    'int bpf_obj_get(const char *path)',
    'int bpf_obj_pin(int fd, const char *path)',
    'int bpf_obj_get_info_by_fd(int fd, void *info, _Inout_ uint32_t *len)',
    'int bpf_prog_get_fd_by_id(uint32_t id)',
    'int bpf_map_get_fd_by_id(uint32_t id)',
    'int bpf_link_get_fd_by_id(uint32_t id)',
    'int bpf_map_lookup_elem(int fd, const void *key, void *value)',
    'int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)',
    'int bpf_map_delete_elem(int fd, const void *key)',
    'int bpf_map_get_next_key(int fd, const void *key, void *next_key)',
    'int bpf_map_update_batch(int fd, const void *keys, const void *values, _Inout_ uint32_t *count, const void *opts)',
    'int bpf_prog_test_run_opts(int fd, void *opts)',
    'int bpf_tc_hook_create(void *hook)',
    'int bpf_tc_hook_destroy(void *hook)',
    'int bpf_tc_attach(const void *hook, void *opts)',
    'int bpf_tc_detach(const void *hook, const void *opts)',
    'int bpf_tc_query(const void *hook, void *opts)',
    'int bpf_link_create(int prog_fd, int target_fd, int attach_type, const void *opts)',
    'int bpf_link_update(int link_fd, int new_prog_fd, const void *opts)',
    'int bpf_link_detach(int link_fd)',
    'int bpf_xdp_attach(int ifindex, int prog_fd, uint32_t flags, const void *opts)',
    'int bpf_xdp_detach(int ifindex, uint32_t flags, const void *opts)',
    'int bpf_xdp_query_id(int ifindex, int flags, _Out_ uint32_t *prog_id)',
    'int libbpf_num_possible_cpus(void)',
    'int libbpf_probe_bpf_helper(int prog_type, int helper_id, const void *opts)',
    'int libbpf_probe_bpf_prog_type(int prog_type, const void *opts)',
    'void *libbpf_set_print(libbpf_print_fn *fn)',
    'void *ring_buffer__new(int map_fd, ring_buffer_sample_fn *cb, void *ctx, const void *opts)',
    'int ring_buffer__consume(void *rb)',
    'void ring_buffer__free(void *rb)',
  ]);
  // Silence libbpf's default printer (stderr); log.ts installs a capturing one when used.
  bpf.libbpf_set_print(null);
  return bpf;
}
