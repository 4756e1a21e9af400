/**
 * The libbpf option structs the loader fills by hand (src/bpf/abi.ts) must match the
 * C headers of the installed libbpf-dev: compile a probe that prints sizeof/offsetof.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostCompileArgv } from '../../src/toolchain/clang.js';
import { LAYOUTS, LINK_INFO, MAP_INFO, PROG_INFO } from '../../src/bpf/abi.js';
import { tempDir, uniquePrefix } from '../helpers/env.js';

const structs = Object.entries(LAYOUTS);
const dir = tempDir(t, uniquePrefix('abi'));
const lines: string[] = [];
for (const [name, l] of structs) {
  lines.push(`printf("${name} size %zu\\n", sizeof(struct ${name}));`);
  for (const f of Object.keys(l.fields)) lines.push(`printf("${name} ${f} %zu\\n", offsetof(struct ${name}, ${f}));`);
}
const info: [string, Record<string, number>, Record<string, string>][] = [
  ['bpf_map_info', MAP_INFO, { id: 'id', keySize: 'key_size', valueSize: 'value_size', maxEntries: 'max_entries', name: 'name', btfId: 'btf_id', btfKeyTypeId: 'btf_key_type_id', btfValueTypeId: 'btf_value_type_id' }],
  ['bpf_prog_info', PROG_INFO, { id: 'id', tag: 'tag', name: 'name', loadTime: 'load_time', runTimeNs: 'run_time_ns', runCnt: 'run_cnt' }],
  ['bpf_link_info', LINK_INFO, { type: 'type', id: 'id', progId: 'prog_id', ifindex: 'xdp.ifindex' }],
];
for (const [name, , fields] of info) {
  for (const [ts, cf] of Object.entries(fields)) lines.push(`printf("${name} ${ts} %zu\\n", offsetof(struct ${name}, ${cf}));`);
}
const src = `#include <stddef.h>\n#include <stdio.h>\n#include <bpf/libbpf.h>\n#include <bpf/bpf.h>\nint main(void) {\n${lines.join('\n')}\nreturn 0;\n}\n`;
writeFileSync(join(dir, 'abi.c'), src);
const cc = spawnSync('clang', hostCompileArgv(join(dir, 'abi.c'), join(dir, 'abi')), { encoding: 'utf8' });

if (cc.status !== 0) {
  t.fail(`cannot compile the ABI probe (libbpf-dev installed?): ${cc.stderr}`);
} else {
  const out = spawnSync(join(dir, 'abi'), { encoding: 'utf8' }).stdout;
  const c = new Map(out.trim().split('\n').map((l) => {
    const [s, f, v] = l.split(' ');
    return [`${s} ${f}`, Number(v)];
  }));
  for (const [name, l] of structs) {
    t.equal(l.size, c.get(`${name} size`), `sizeof(struct ${name})`);
    for (const [f, [off]] of Object.entries(l.fields)) t.equal(off, c.get(`${name} ${f}`), `offsetof(${name}, ${f})`);
  }
  for (const [name, layout, fields] of info) {
    for (const ts of Object.keys(fields)) t.equal(layout[ts], c.get(`${name} ${ts}`), `${name}.${ts}`);
  }
}
