/** File descriptors and object info shared by maps, programs and links. */
import { BpfError } from './errors.js';
import { lastErrno } from '../sys/ffi.js';
import { libc } from '../sys/libc.js';
import { libbpf } from './native.js';

export function closeFd(fd: number): void {
  if (fd >= 0) libc().close(fd);
}

/** Opens a pinned BPF object (map, program or link) by path. */
export function objGet(path: string, what: string): number {
  const fd = libbpf().bpf_obj_get(path) as number;
  if (fd < 0) throw new BpfError(`open pinned ${what} ${path}`, -fd || lastErrno());
  return fd;
}

export function objInfo(fd: number, size: number, what: string): Buffer {
  const buf = Buffer.alloc(size);
  const len = [size];
  const ret = libbpf().bpf_obj_get_info_by_fd(fd, buf, len) as number;
  if (ret < 0) throw new BpfError(`read info of ${what}`, -ret);
  return buf;
}
