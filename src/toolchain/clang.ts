/**
 * The one place that invokes clang. Every C file of the repository is compiled through
 * here: the datapath (bpf/*.c), the test fixtures, the benchmarks' host tools.
 *
 * BPF objects are compiled with `-nostdinc` and only two system include directories:
 * `/usr/include` (for the kernel's uapi `linux/` and `asm-generic/` headers and libbpf's
 * `bpf/`) and the multiarch directory (for the kernel's `asm/`). Those directories also
 * hold the C library's headers, which mean nothing in BPF (`-target bpf` defines no
 * `__x86_64__`, so glibc picks its 32-bit stubs, which a new machine does not have):
 * every compile reads clang's dependency list (`-MD`) and fails, naming the header and
 * the include chain that pulled it in, when a header outside the allowed set is used.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { arch } from 'node:os';
import { join, resolve, sep } from 'node:path';

/** Flags of every BPF compile (the include path is added by `bpfCompileArgv`). */
export const BPF_CFLAGS = ['-target', 'bpf', '-O2', '-g', '-Wall', '-Werror', '-nostdinc'] as const;
/** Flags of every host (userspace) compile: the benchmarks' helper tools. */
export const HOST_CFLAGS = ['-O2', '-Wall', '-Wextra', '-Werror'] as const;

export class ClangError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClangError';
  }
}

/** A header that BPF code must not use, the includes that led to it, and how many more it pulled in. */
export interface HeaderViolation {
  header: string;
  /** From the source file down to the header that included `header`. */
  chain: string[];
  /** Forbidden headers included (directly or not) by `header`. */
  more: number;
}

export class ForbiddenHeaderError extends ClangError {
  constructor(readonly source: string, readonly violations: HeaderViolation[]) {
    super(`${source} includes ${violations.length === 1 ? 'a header' : `${violations.length} headers`} that BPF code must not use `
      + '(only include/, the kernel\'s uapi linux/, asm/ and asm-generic/, and libbpf\'s bpf/ are allowed; the C library\'s headers mean nothing in BPF):\n'
      + violations.map((v) => `  ${v.header}${v.more ? ` (and ${v.more} more header${v.more === 1 ? '' : 's'} it includes)` : ''}\n    via ${v.chain.join(' → ')}`).join('\n')
      + '\ndefine what is needed in include/sluice/lib/, or use a uapi header that does not include the C library');
    this.name = 'ForbiddenHeaderError';
  }
}

let multiarchCache: string | undefined;
/** The multiarch triple (`x86_64-linux-gnu`): where Debian keeps the kernel's asm/ headers. */
export function multiarch(): string {
  if (multiarchCache === undefined) {
    const r = spawnSync('clang', ['-print-multiarch'], { encoding: 'utf8' });
    const printed = r.status === 0 ? r.stdout.trim() : '';
    multiarchCache = printed || (arch() === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu');
  }
  return multiarchCache;
}

/** The system include directories of a BPF compile, checked to hold the kernel's headers. */
export function bpfSystemIncludeDirs(): string[] {
  const dirs = ['/usr/include', join('/usr/include', multiarch())];
  for (const h of ['/usr/include/linux/bpf.h', join(dirs[1]!, 'asm', 'types.h'), '/usr/include/bpf/bpf_helpers.h']) {
    if (!existsSync(h)) {
      throw new ClangError(`${h} is missing: BPF programs need the kernel's uapi headers (linux-libc-dev) and libbpf's (libbpf-dev); run scripts/setup`);
    }
  }
  return dirs;
}

/** Where a BPF compile may take headers from, besides the project's include directories. */
export function allowedSystemPrefixes(): string[] {
  return ['/usr/include/linux/', '/usr/include/asm-generic/', `/usr/include/${multiarch()}/asm/`, '/usr/include/bpf/'];
}

export interface BpfCompile {
  source: string;
  output: string;
  /** The project's include directories (e.g. include/). */
  includeDirs: readonly string[];
  /** Where clang writes the dependency list (default: `<output>.d`, removed afterwards). */
  depFile?: string;
}

/** clang's argv (without "clang") for one BPF object. */
export function bpfCompileArgv(c: BpfCompile): string[] {
  return [
    ...BPF_CFLAGS,
    ...c.includeDirs.flatMap((d) => ['-I', d]),
    ...bpfSystemIncludeDirs().flatMap((d) => ['-isystem', d]),
    '-MD', '-MF', c.depFile ?? `${c.output}.d`,
    '-c', c.source, '-o', c.output,
  ];
}

/** clang's argv (without "clang") for one host program. */
export function hostCompileArgv(source: string, output: string): string[] {
  return [...HOST_CFLAGS, '-o', output, source];
}

/** The version line of the clang in use (part of the BPF object cache's key). */
let versionCache: string | undefined;
export function clangVersion(): string {
  if (versionCache === undefined) {
    const r = spawnSync('clang', ['--version'], { encoding: 'utf8' });
    if (r.error) throw new ClangError(`clang is not installed (${(r.error as NodeJS.ErrnoException).code}): run scripts/setup`);
    versionCache = r.stdout.split('\n')[0] ?? '';
  }
  return versionCache;
}

/** The files of a make-style dependency list (`target: a b \` …), the target excluded. */
export function parseDepFile(text: string): string[] {
  const joined = text.replace(/\\\r?\n/g, ' ');
  const colon = joined.search(/:(\s|$)/);
  const body = colon < 0 ? joined : joined.slice(colon + 1);
  const out: string[] = [];
  // Spaces inside a file name are escaped as "\ ".
  for (const m of body.matchAll(/(?:\\ |[^\s])+/g)) out.push(m[0].replace(/\\ /g, ' '));
  return out;
}

/** clang -H's include tree: one line per include, depth in leading dots. */
export function parseIncludeTree(stderr: string): { depth: number; path: string }[] {
  const out: { depth: number; path: string }[] = [];
  for (const line of stderr.split('\n')) {
    const m = /^(\.+) (.+)$/.exec(line);
    if (m) out.push({ depth: m[1]!.length, path: m[2]! });
  }
  return out;
}

/**
 * The forbidden headers of an include tree that were included by an allowed one (where
 * each mistake is), with the chain to each and the count of forbidden headers below it.
 * `bad` lists every forbidden dependency; one missing from the tree (a header clang could
 * not find) is reported on its own only when nothing above it explains it.
 */
export function violationsInTree(source: string, tree: readonly { depth: number; path: string }[], bad: readonly string[]): HeaderViolation[] {
  const forbidden = new Set(bad);
  const out: HeaderViolation[] = [];
  const seen = new Set<string>();
  const stack: string[] = [];
  let current: HeaderViolation | undefined;
  let currentDepth = 0;
  for (const node of tree) {
    stack.length = node.depth - 1;
    stack.push(node.path);
    if (current && node.depth > currentDepth) {
      if (forbidden.has(node.path) && !seen.has(node.path)) current.more++;
      seen.add(node.path);
      continue;
    }
    current = undefined;
    if (!forbidden.has(node.path) || seen.has(node.path)) continue;
    seen.add(node.path);
    current = { header: node.path, chain: [source, ...stack.slice(0, -1)], more: 0 };
    currentDepth = node.depth;
    out.push(current);
  }
  const unexplained = bad.filter((h) => !seen.has(h));
  if (out.length) out[0]!.more += unexplained.length;
  else out.push(...unexplained.map((header) => ({ header, chain: [source], more: 0 })));
  return out;
}

/** The dependencies that are neither under one of `projectDirs` nor an allowed system header. */
export function forbiddenDependencies(deps: readonly string[], projectDirs: readonly string[], allowed = allowedSystemPrefixes()): string[] {
  const mine = projectDirs.map((d) => resolve(d) + sep);
  return deps.filter((d) => {
    // A header clang could not find (-MG) stays relative: "gnu/stubs-32.h".
    if (!d.startsWith('/')) return true;
    const p = resolve(d);
    return !mine.some((m) => p.startsWith(m)) && !allowed.some((a) => p.startsWith(a));
  });
}

/**
 * The headers of `source` that BPF code must not use, each with its chain. Runs the
 * preprocessor alone with missing headers tolerated (-MG), so a forbidden header is named
 * even where it would not compile (gnu/stubs-32.h on a machine without 32-bit glibc).
 */
export function headerViolations(source: string, includeDirs: readonly string[]): HeaderViolation[] {
  const argv = [...BPF_CFLAGS, ...includeDirs.flatMap((d) => ['-I', d]), ...bpfSystemIncludeDirs().flatMap((d) => ['-isystem', d]), '-M', '-MG', '-H', source];
  const r = spawnSync('clang', argv, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) return [];
  const projectDirs = [...includeDirs, resolve(source, '..')];
  const bad = forbiddenDependencies(parseDepFile(r.stdout), projectDirs);
  return violationsInTree(source, parseIncludeTree(r.stderr), bad);
}

function runClang(argv: readonly string[]): { ok: boolean; message: string } {
  const r = spawnSync('clang', argv, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    return { ok: false, message: code === 'ENOENT' ? 'clang is not installed: run scripts/setup' : r.error.message };
  }
  return { ok: r.status === 0, message: `clang ${argv.join(' ')} failed (exit ${r.status}): ${r.stderr.trim() || 'no output'}` };
}

/**
 * Compiles one BPF object and checks its dependency list. Throws ForbiddenHeaderError
 * when a header outside the allowed set is used (the object is then removed), or
 * ClangError with clang's messages when the compile fails.
 */
export function compileBpf(c: BpfCompile): void {
  const depFile = c.depFile ?? `${c.output}.d`;
  try {
    const r = runClang(bpfCompileArgv({ ...c, depFile }));
    if (!r.ok) {
      // A forbidden header is the likelier cause, and says more than clang's "not found".
      const v = existsSync(c.source) ? headerViolations(c.source, c.includeDirs) : [];
      if (v.length) throw new ForbiddenHeaderError(c.source, v);
      throw new ClangError(r.message);
    }
    const deps = parseDepFile(readFileSync(depFile, 'utf8'));
    const bad = forbiddenDependencies(deps, [...c.includeDirs, resolve(c.source, '..')]);
    if (bad.length) {
      rmSync(c.output, { force: true });
      const v = headerViolations(c.source, c.includeDirs);
      throw new ForbiddenHeaderError(c.source, v.length ? v : bad.map((header) => ({ header, chain: [c.source], more: 0 })));
    }
  } finally {
    if (c.depFile === undefined) rmSync(depFile, { force: true });
  }
}
