/**
 * The few libc.so.6 calls sluice makes that Node has no API for: setns(2) (network
 * namespaces), flock(2) (locks), if_nametoindex(3), close(2) of descriptors libbpf hands
 * out, and vsnprintf/memcpy to format libbpf's messages. Bound through koffi on first use;
 * the errno of a failed call is ffi.ts lastErrno(). Nothing here interprets results.
 */
import { bind, koffi, type Ptr } from './ffi.js';

export interface LibC {
  close(fd: number): number;
  open(path: string, flags: number): number;
  setns(fd: number, nstype: number): number;
  flock(fd: number, op: number): number;
  /** `ap` is a va_list: its address, or (x86-64) a copy of its 24 bytes. */
  vsnprintf(buf: Buffer | null, size: number, fmt: Ptr, ap: Ptr | Buffer): number;
  memcpy(dst: Buffer | Ptr, src: Buffer | Ptr, n: number): Ptr;
  if_nametoindex(name: string): number;
}

let lib: LibC | undefined;

export function libc(): LibC {
  if (lib) return lib;
  lib = bind<LibC>(koffi.load('libc.so.6'), [
    'int close(int fd)',
    'int open(const char *path, int flags)',
    'int setns(int fd, int nstype)',
    'int flock(int fd, int op)',
    'int vsnprintf(void *buf, size_t size, void *fmt, void *ap)',
    'void *memcpy(void *dst, void *src, size_t n)',
    'unsigned int if_nametoindex(const char *name)',
  ]);
  return lib;
}
