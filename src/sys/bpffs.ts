/**
 * The BPF file system as files: whether a path is on bpffs, and removing a pin (a file or a
 * directory of them). No bpf(2) call: removing the last pin of an object is what releases it,
 * and these are plain file operations, usable by every layer (node reset, the lab, the demo).
 */
import { existsSync, rmSync, statfsSync } from 'node:fs';

export const BPF_FS_MAGIC = 0xcafe4a11;

export function isBpffs(path: string): boolean {
  try {
    return statfsSync(path).type === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}

/** Removes the pin (or pin directory) at `path`; false when there was none. */
export function unpin(path: string): boolean {
  if (!existsSync(path)) return false;
  rmSync(path, { recursive: true, force: true });
  return true;
}
