/** bpffs pins: create atomically, remove, and check the filesystem. */
import { existsSync, mkdirSync, renameSync, rmSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { BpfError } from './errors.js';
import { libbpf } from './native.js';

export const BPF_FS_MAGIC = 0xcafe4a11;

export function isBpffs(path: string): boolean {
  try {
    return statfsSync(path).type === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}

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

export function unpin(path: string): boolean {
  if (!existsSync(path)) return false;
  rmSync(path, { recursive: true, force: true });
  return true;
}
