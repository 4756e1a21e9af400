/**
 * The CLI's global options (--config and one flag per config key) must not share a name
 * with a subcommand's option: commander gives the value to the global one, and the
 * subcommand then reports its own option as missing. The lab's --mode and --store mean
 * what the config keys mean and are read wherever commander put them (optionOf in
 * src/cli/commands/lab.ts): those are the only shared names.
 */
import t from 'tap';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/main.js';

function walk(cmd: Command, path: string[], out: { path: string; flag: string }[]): void {
  for (const sub of cmd.commands) {
    const p = [...path, sub.name()];
    for (const o of sub.options) if (o.long) out.push({ path: p.join(' '), flag: o.long });
    walk(sub, p, out);
  }
}

t.test('no subcommand option is shadowed by a global one', async (t) => {
  const program = buildProgram();
  const global = new Set(program.options.map((o) => o.long).filter((l): l is string => !!l));
  t.ok(global.has('--node-netns') && global.has('--config'), 'the global options are seen');
  const all: { path: string; flag: string }[] = [];
  walk(program, [], all);
  t.ok(all.some((o) => o.path === 'endpoint add' && o.flag === '--netns'), 'subcommand options are seen');
  const shared = ['lab up: --mode', 'lab up: --store', 'lab restart: --mode'];
  t.same(all.filter((o) => global.has(o.flag)).map((o) => `${o.path}: ${o.flag}`), shared);
});
