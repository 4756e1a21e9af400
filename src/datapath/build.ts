/**
 * Compiles the datapath's C programs with clang. An object is cached under a hash of
 * everything that can change it (its source, every header, the compiler's version and
 * the flags), so an unchanged program is never rebuilt and a changed header always is.
 * Node configuration is not compiled in: it is set as read-only globals at load time.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { BPF_CFLAGS, bpfSystemIncludeDirs, clangVersion, compileBpf } from '../toolchain/clang.js';
import { BPF_INCLUDE_DIR, BPF_SRC_DIR, bpfCacheDir } from './paths.js';

export interface BuildResult {
  program: string;
  object: string;
  hash: string;
  cached: boolean;
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.name.endsWith('.h')) out.push(p);
  }
  return out.sort();
}

/** The C programs of the datapath: one per attach point (bpf/*.c). */
export function datapathSources(srcDir = BPF_SRC_DIR): string[] {
  return readdirSync(srcDir).filter((f) => f.endsWith('.c')).map((f) => f.slice(0, -2)).sort();
}

export function sourceHash(program: string, o: { srcDir?: string; includeDir?: string } = {}): string {
  const srcDir = o.srcDir ?? BPF_SRC_DIR;
  const includeDir = o.includeDir ?? BPF_INCLUDE_DIR;
  const h = createHash('sha256');
  h.update(clangVersion()).update('\0').update([...BPF_CFLAGS, ...bpfSystemIncludeDirs()].join(' ')).update('\0');
  h.update(readFileSync(join(srcDir, `${program}.c`)));
  for (const f of filesUnder(includeDir)) h.update('\0').update(relative(includeDir, f)).update('\0').update(readFileSync(f));
  return h.digest('hex').slice(0, 16);
}

/** Compiles bpf/<program>.c unless an object with the same hash is cached. */
export function buildProgram(program: string, o: { srcDir?: string; includeDir?: string; cacheDir?: string } = {}): BuildResult {
  const srcDir = o.srcDir ?? BPF_SRC_DIR;
  const includeDir = o.includeDir ?? BPF_INCLUDE_DIR;
  const cacheDir = o.cacheDir ?? bpfCacheDir();
  const source = join(srcDir, `${program}.c`);
  if (!existsSync(source)) throw new Error(`no BPF program source ${source}`);
  const hash = sourceHash(program, { srcDir, includeDir });
  const object = join(cacheDir, `${program}-${hash}.o`);
  if (existsSync(object)) return { program, object, hash, cached: true };
  mkdirSync(cacheDir, { recursive: true });
  const tmp = `${object}.${process.pid}.tmp`;
  try {
    compileBpf({ source, output: tmp, includeDirs: [includeDir], depFile: `${tmp}.d` });
    renameSync(tmp, object);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new Error(`compiling ${source} failed:\n${(e as Error).message}`);
  } finally {
    rmSync(`${tmp}.d`, { force: true });
  }
  // Objects of older sources are of no further use.
  for (const f of readdirSync(cacheDir)) {
    if (f.startsWith(`${program}-`) && f.endsWith('.o') && f !== `${program}-${hash}.o`) rmSync(join(cacheDir, f), { force: true });
  }
  return { program, object, hash, cached: false };
}

export function buildAll(o: { cacheDir?: string } = {}): BuildResult[] {
  return datapathSources().map((p) => buildProgram(p, o));
}
