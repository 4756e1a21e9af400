/** bpffs pins: create atomically, on a directory that is on bpffs (removing one: sys/bpffs.ts). */
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { isBpffs } from '../sys/bpffs.js';
import { BpfError } from './errors.js';
import { libbpf } from './native.js';

/** Makes `dir` (and parents) on bpffs; refuses a directory that is not on bpffs. */
export function ensurePinDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!isBpffs(dir)) {
    throw new Error(`${dir} is not on a BPF filesystem: mount one with \`mount -t bpf bpf /sys/fs/bpf\` (sluice node init does this)`);
  }
}

/** Pins `fd` at `path`; an existing pin is replaced by rename so no reader sees it missing. */
export function pinAtomically(fd: number, path: string, what: string): void {
  ensurePinDir(dirname(path));
  const tmp = `${path}__new`; // bpffs refuses names with a dot
  rmSync(tmp, { force: true });
  const ret = libbpf().bpf_obj_pin(fd, tmp) as number;
  if (ret < 0) throw new BpfError(`pin ${what} at ${path}`, -ret);
  renameSync(tmp, path);
}
