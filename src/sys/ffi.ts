/**
 * What every native binding stands on: koffi, declaring C functions from their prototypes,
 * the errno of the last native call, and copying native memory. Interprets nothing.
 * Pointers are koffi 3 bigints; Buffers are passed for `void *` arguments and stay owned
 * by the caller.
 */
import koffi from 'koffi';

export type Ptr = bigint;
/* eslint-disable @typescript-eslint/no-explicit-any */
/** A bound C function as koffi gives it; bindings narrow it where they can. */
export type Fn = (...args: any[]) => any;

/** Binds each C declaration ("int close(int fd)") of `lib` by its function name. */
export function bind<T>(lib: ReturnType<typeof koffi.load>, decls: string[]): T {
  const out: Record<string, Fn> = {};
  for (const d of decls) {
    const m = /([A-Za-z_0-9]+)\s*\(/.exec(d);
    if (!m) throw new Error(`bad declaration ${d}`);
    out[m[1]!] = lib.func(d) as Fn;
  }
  return out as T;
}

/** The errno left by the last native call on this thread. */
export function lastErrno(): number {
  return koffi.errno();
}

export function isNull(p: unknown): boolean {
  return p === null || p === undefined || p === 0n || p === 0;
}

/** Copies `len` bytes at a native address into a new Buffer. */
export function copyOut(ptr: Ptr, len: number): Buffer {
  if (len === 0) return Buffer.alloc(0);
  return Buffer.from(koffi.view(ptr, len).slice(0));
}

export function addressOf(buf: Buffer): Ptr {
  return koffi.address(buf);
}

export { koffi };
