/**
 * The attach and link type numbers of src/bpf/link.ts must be the kernel's (uapi enum
 * bpf_attach_type, enum bpf_link_type): a probe compiled against the installed
 * linux/bpf.h prints them. Names the installed header predates (tcx came with 6.6; Debian
 * bookworm's linux-libc-dev is 6.1) are left to the kernel: test/bpf/loader.test.ts
 * attaches a tcx link and reads its type back.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ATTACH_TYPE, LINK_TYPE } from '../../src/bpf/link.js';
import { bpfSystemIncludeDirs, hostCompileArgv } from '../../src/toolchain/clang.js';
import { tempDir, uniquePrefix } from '../helpers/env.js';

const names: [string, number][] = [
  ...Object.entries(ATTACH_TYPE).map(([k, v]): [string, number] => [`BPF_${k.toUpperCase()}`, v]),
  ...Object.entries(LINK_TYPE).map(([k, v]): [string, number] => [`BPF_LINK_TYPE_${k.toUpperCase()}`, v]),
];
const header = readFileSync(join(bpfSystemIncludeDirs()[0]!, 'linux', 'bpf.h'), 'utf8');
const known = names.filter(([n]) => new RegExp(`\\b${n}\\b`).test(header));
const unknown = names.filter(([n]) => !known.some(([k]) => k === n));

const dir = tempDir(t, uniquePrefix('at'));
const src = `#include <stdio.h>\n#include <linux/bpf.h>\nint main(void) {\n${known.map(([n]) => `printf("${n} %d\\n", (int)${n});`).join('\n')}\nreturn 0;\n}\n`;
writeFileSync(join(dir, 'types.c'), src);
const cc = spawnSync('clang', hostCompileArgv(join(dir, 'types.c'), join(dir, 'types')), { encoding: 'utf8' });

if (cc.status !== 0) {
  t.fail(`cannot compile the attach type probe (linux-libc-dev installed?): ${cc.stderr}`);
} else {
  const out = new Map(spawnSync(join(dir, 'types'), { encoding: 'utf8' }).stdout.trim().split('\n').map((l) => {
    const [n, v] = l.split(' ');
    return [n!, Number(v)];
  }));
  for (const [n, v] of known) t.equal(v, out.get(n), `${n} = ${v}`);
  if (unknown.length) t.comment(`not in the installed linux/bpf.h (checked by the kernel instead): ${unknown.map(([n]) => n).join(', ')}`);
  t.ok(known.some(([n]) => n === 'BPF_CGROUP_INET4_CONNECT'), 'the cgroup hooks are checked');
}

