/** Where the package's C sources live, and where compiled objects are cached. */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The package root (works from src/ under a TS loader and from dist/). */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BPF_SRC_DIR = join(PACKAGE_ROOT, 'bpf');
export const BPF_INCLUDE_DIR = join(PACKAGE_ROOT, 'include');

/** Compiled objects, by content hash. SLUICE_BPF_CACHE overrides it. */
export function bpfCacheDir(): string {
  return process.env.SLUICE_BPF_CACHE ?? join(PACKAGE_ROOT, '.build', 'bpf');
}
