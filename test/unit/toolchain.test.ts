/**
 * The one place that runs clang (src/toolchain/clang.ts): BPF code may use only the
 * project's headers, the kernel's uapi ones and libbpf's. The pure parts (dependency
 * lists, include trees, the allowed set) are checked on literal input; the compile on
 * fixtures that make the mistake, on every datapath program, and on the repository's
 * sources, which must not call clang with flags of their own.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildProgram, datapathSources } from '../../src/datapath/build.js';
import {
  allowedSystemPrefixes, bpfCompileArgv, compileBpf, forbiddenDependencies, ForbiddenHeaderError, headerViolations, multiarch,
  parseDepFile, parseIncludeTree, violationsInTree,
} from '../../src/toolchain/clang.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const INCLUDE = join(ROOT, 'include');
const FIXTURES = join(ROOT, 'test/fixtures/toolchain');
const work = mkdtempSync(join(tmpdir(), 'sluice-toolchain-test-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

t.test('dependency lists and include trees parse', async (t) => {
  t.same(parseDepFile('x.o: a.c /usr/include/linux/bpf.h \\\n  include/sluice/lib/../types.h\\\n gnu/stubs-32.h\n'),
    ['a.c', '/usr/include/linux/bpf.h', 'include/sluice/lib/../types.h', 'gnu/stubs-32.h']);
  t.same(parseDepFile('x.o: my\\ dir/a.c b.h'), ['my dir/a.c', 'b.h'], 'escaped spaces stay in the name');
  t.same(parseDepFile(''), []);
  t.same(parseIncludeTree('. /a.h\n.. /b.h\nwarning: something\n... /c.h\n. /d.h\n'),
    [{ depth: 1, path: '/a.h' }, { depth: 2, path: '/b.h' }, { depth: 3, path: '/c.h' }, { depth: 1, path: '/d.h' }]);
});

t.test('the allowed set: the project, uapi linux/ asm/ asm-generic/, libbpf bpf/; nothing else', async (t) => {
  const ma = multiarch();
  const deps = [
    '/repo/bpf/x.c', '/repo/include/sluice/lib/../types.h', '/usr/include/linux/bpf.h', `/usr/include/${ma}/asm/types.h`,
    '/usr/include/asm-generic/int-ll64.h', '/usr/include/bpf/bpf_helpers.h',
    `/usr/include/${ma}/sys/socket.h`, '/usr/include/features.h', `/usr/include/${ma}/bits/wordsize.h`, `/usr/include/${ma}/gnu/stubs.h`,
    'gnu/stubs-32.h', '/usr/lib/llvm-14/lib/clang/14.0.6/include/stddef.h', '/usr/include/linuxish/x.h', '/repo2/include/y.h',
  ];
  t.same(forbiddenDependencies(deps, ['/repo/include', '/repo/bpf']), deps.slice(6), 'libc, missing, compiler builtins and look-alike paths are refused');
  t.ok(allowedSystemPrefixes().every((p) => p.endsWith('/')), 'prefixes are directories (linux/ does not admit linuxish/)');
});

t.test('a violation is reported where it starts, with its chain and what it pulled in', async (t) => {
  const tree = parseIncludeTree([
    '. /usr/include/linux/bpf.h', '.. /usr/include/linux/types.h',
    '. /usr/include/linux/if_arp.h', '.. /usr/include/linux/netdevice.h', '... /usr/include/linux/if.h',
    '.... /usr/include/sys/socket.h', '..... /usr/include/features.h', '...... /usr/include/gnu/stubs.h', '..... /usr/include/bits/socket.h',
    '. /repo/include/own.h', '.. /usr/include/features.h', '.. /usr/include/stdint.h',
  ].join('\n'));
  const bad = ['/usr/include/sys/socket.h', '/usr/include/features.h', '/usr/include/gnu/stubs.h', '/usr/include/bits/socket.h', 'gnu/stubs-32.h', '/usr/include/stdint.h'];
  t.same(violationsInTree('x.c', tree, bad), [
    { header: '/usr/include/sys/socket.h', chain: ['x.c', '/usr/include/linux/if_arp.h', '/usr/include/linux/netdevice.h', '/usr/include/linux/if.h'], more: 4 },
    { header: '/usr/include/stdint.h', chain: ['x.c', '/repo/include/own.h'], more: 0 },
  ], 'features.h again under own.h is not a second report; the missing stubs-32.h counts with the first');
  t.same(violationsInTree('x.c', [], ['gnu/stubs-32.h']), [{ header: 'gnu/stubs-32.h', chain: ['x.c'], more: 0 }], 'without a tree, each header alone');
});

t.test('a BPF compile has no standard include path and reads its dependencies', async (t) => {
  const argv = bpfCompileArgv({ source: 'a.c', output: 'a.o', includeDirs: ['/repo/include'] });
  t.ok(argv.includes('-nostdinc'), '-nostdinc: nothing but the listed directories');
  t.same(argv.slice(argv.indexOf('-MD'), argv.indexOf('-MD') + 3), ['-MD', '-MF', 'a.o.d']);
  t.same(argv.filter((a, i) => argv[i - 1] === '-isystem'), ['/usr/include', `/usr/include/${multiarch()}`]);
  t.equal(argv[argv.indexOf('-target') + 1], 'bpf');
});

t.test('the mistake of issue 17 fails the build, naming the C-library header and the chain', async (t) => {
  const out = join(work, 'via-uapi.o');
  const source = join(FIXTURES, 'libc_via_uapi.c');
  const err = t.throws(() => compileBpf({ source, output: out, includeDirs: [INCLUDE] })) as unknown as ForbiddenHeaderError;
  t.type(err, ForbiddenHeaderError);
  t.match(err.message, new RegExp(`/usr/include/${multiarch()}/sys/socket\\.h \\(and \\d+ more headers it includes\\)\\n    via ${source.replace(/[.]/g, '\\.')} → /usr/include/linux/if_arp\\.h → /usr/include/linux/netdevice\\.h → /usr/include/linux/if\\.h`));
  t.equal(err.violations.length, 1, 'one mistake, one report');
  t.notOk(existsSync(out), 'no object is left');
  t.notOk(existsSync(`${out}.d`), 'no dependency file is left');
});

t.test('a C-library header that compiles is refused all the same', async (t) => {
  const out = join(work, 'compiles.o');
  const source = join(FIXTURES, 'libc_compiles.c');
  // clang alone, as the build used to call it, accepts it: the check is what refuses it.
  execFileSync('clang', ['-target', 'bpf', '-O2', '-c', '-I', `/usr/include/${multiarch()}`, source, '-o', join(work, 'plain.o')]);
  t.throws(() => compileBpf({ source, output: out, includeDirs: [INCLUDE] }), {
    name: 'ForbiddenHeaderError', message: new RegExp(`bits/wordsize\\.h\\n    via ${source.replace(/[.]/g, '\\.')}\\n`),
  });
  t.notOk(existsSync(out), 'the object clang made is removed');
});

t.test('buildProgram refuses such a program and caches nothing', async (t) => {
  const src = join(work, 'src');
  const cache = join(work, 'cache');
  mkdirSync(src);
  writeFileSync(join(src, 'bad.c'), readFileSync(join(FIXTURES, 'libc_via_uapi.c')));
  t.throws(() => buildProgram('bad', { srcDir: src, includeDir: INCLUDE, cacheDir: cache }), { message: /compiling .*bad\.c failed:\n.*includes a header that BPF code must not use[^]*sys\/socket\.h/ });
  t.same(existsSync(cache) ? execFileSync('ls', ['-A', cache]).toString() : '', '', 'no object, no temp file, no dependency list');
});

t.test('every datapath program uses only allowed headers', async (t) => {
  for (const p of datapathSources()) {
    t.same(headerViolations(join(ROOT, 'bpf', `${p}.c`), [INCLUDE]), [], p);
  }
});

t.test('no file of the repository runs clang with flags of its own', async (t) => {
  const files = execFileSync('git', ['ls-files'], { cwd: ROOT }).toString().split('\n')
    .filter((f) => /\.(ts|mjs|js|sh)$|^scripts\/|^\.ci\/|^Vagrantfile$/.test(f) && !f.startsWith('test/fixtures/'));
  const offenders: string[] = [];
  for (const f of files) {
    if (f === 'src/toolchain/clang.ts' || f === 'test/unit/toolchain.test.ts') continue;
    const text = readFileSync(join(ROOT, f), 'utf8');
    text.split('\n').forEach((line, i) => {
      const code = line.replace(/^\s*(\/\/|\*|#).*$/, '');
      // An argv literal given to clang, a BPF flag, or a shell command line starting with clang.
      const shell = !/\.(ts|mjs|js)$/.test(f);
      if (/['"`](clang|cc|gcc)['"`]\s*,\s*\[|['"]-target['"]|['"]-nostdinc['"]/.test(code) || (shell && /(^|[;&|]|\$\()\s*clang\s/.test(code))) {
        offenders.push(`${f}:${i + 1}: ${line.trim()}`);
      }
    });
  }
  t.same(offenders, [], 'clang flags belong in src/toolchain/clang.ts');
});
