/**
 * eslint over the repository (eslint.config.js: typescript-eslint's recommended rules and the
 * layering of src/, docs/architecture.md), through eslint's Node API: every message fails
 * the test, listed file:line rule message. Then the layer rule itself, on fixture texts
 * linted as if they stood at a path of src/: it bites, names the rule and what to do
 * instead, and its exceptions stay as narrow as eslint.config.js says.
 */
import t from 'tap';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RULE = '@typescript-eslint/no-restricted-imports';
const eslint = new ESLint({ cwd: ROOT });

const listed = (results: ESLint.LintResult[]) => results.flatMap((r) =>
  r.messages.map((m) => `${relative(ROOT, r.filePath)}:${m.line} ${m.ruleId ?? '(parse)'} ${m.message}`));

/** The layer rule's messages for `code` linted as the file `path` (relative to the root). */
async function layerMessages(path: string, code: string): Promise<string[]> {
  const results = await eslint.lintText(code, { filePath: `${ROOT}/${path}` });
  return results.flatMap((r) => r.messages.filter((m) => m.ruleId === RULE).map((m) => m.message));
}

t.test('the repository lints clean (npm run lint)', async (t) => {
  const started = performance.now();
  const results = await eslint.lintFiles(['.']);
  const problems = listed(results);
  t.comment(`eslint: ${results.length} files in ${Math.round(performance.now() - started)} ms`);
  t.ok(results.some((r) => relative(ROOT, r.filePath) === 'src/agent/agent.ts'), 'src/ is linted');
  t.ok(results.some((r) => relative(ROOT, r.filePath) === 'test/unit/lint.test.ts'), 'test/ is linted');
  t.ok(results.some((r) => relative(ROOT, r.filePath) === 'bin/sluice.js'), 'bin/ is linted');
  for (const p of problems) t.fail(p); // one failure a message, each on a line of its own
  if (!problems.length) t.pass('no message');
});

t.test('a feature or the agent may not reach into src/bpf', async (t) => {
  const m = await layerMessages('src/agent/x.ts', "export { BpfMap } from '../bpf/map.js';\n");
  t.equal(m.length, 1, 'one message');
  t.match(m[0], 'layering: src/agent may not import src/bpf: go through src/maps or src/datapath', 'it names the rule and the way round');
  t.match(m[0], "'../bpf/map.js'", 'and the import');
  t.equal((await layerMessages('src/cli/commands/x.ts', "export { unpin } from '../../bpf/pin.js';\n")).length, 1, 'from a subfolder too');
  t.equal((await layerMessages('src/policy/x.ts', "import type { BpfMap } from '../bpf/map.js';\nexport type M = BpfMap;\n")).length, 1,
    'a type import too');
  t.same(await layerMessages('src/datapath/x.ts', "export { BpfMap } from '../bpf/map.js';\n"), [], 'src/datapath may');
  t.same(await layerMessages('src/maps/x.ts', "export { BpfMap } from '../bpf/map.js';\n"), [], 'src/maps may');
});

t.test('no folder imports a higher layer', async (t) => {
  const [m] = await layerMessages('src/util/x.ts', "export { Agent } from '../agent/agent.js';\n");
  t.match(m, "layering: src/util may not import src/agent (layer 'base' is below 'agent'", 'it names both layers');
  t.match(m, 'move what src/util needs down', 'and what to do instead');
  t.equal((await layerMessages('src/policy/x.ts', "export { listings } from '../inspect/listings.js';\n")).length, 1, 'features are below inspect');
  t.equal((await layerMessages('src/api/x.ts', "export { Agent } from '../agent/agent.js';\n")).length, 1, 'api is below the agent');
  t.equal((await layerMessages('src/datapath/x.ts', "export { x } from '../maps/policy.js';\n")).length, 1, 'datapath is below maps');
  t.same(await layerMessages('src/policy/x.ts', "export { parsePorts } from '../endpoint/ports.js';\nexport { isIPv4 } from '../util/ipv4.js';\n"), [],
    'its own layer and those below are fine');
  t.same(await layerMessages('src/cli/x.ts', "export { up } from '../lab/up.js';\nexport { Agent } from '../agent/agent.js';\n"), [], 'so is an entry point');
});

t.test('the exceptions are narrow', async (t) => {
  t.same(await layerMessages('src/bench/policy.ts', "export { testRun } from '../bpf/testrun.js';\n"), [], 'src/bench/policy.ts may use bpf/testrun.js');
  t.equal((await layerMessages('src/bench/policy.ts', "export { pinAtomically } from '../bpf/pin.js';\n")).length, 1, 'but no other module of src/bpf');
  t.equal((await layerMessages('src/bench/other.ts', "export { testRun } from '../bpf/testrun.js';\n")).length, 1, 'nor does another file of src/bench');
  t.equal((await layerMessages('src/api/types.ts', "import type { Agent } from '../agent/agent.js';\nexport type A = Agent;\n")).length, 1,
    'src/api/types.ts names no agent type (the reconcile report is a wire type)');
});
