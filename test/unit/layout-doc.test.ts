/**
 * The README's Layout section and docs/architecture.md's module map name every folder of src/:
 * a new folder without a line in both fails here.
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../helpers/env.js';

const folders = readdirSync(join(REPO, 'src'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();

/** The first code block after `heading`. */
function block(file: string, heading: string): string {
  const text = readFileSync(join(REPO, file), 'utf8');
  const at = text.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`${file} has no '${heading}' section`);
  const open = text.indexOf('```', at);
  return text.slice(open + 3, text.indexOf('```', open + 3));
}

t.test('the README lists every folder of src/', async (tt) => {
  const layout = block('README.md', '## Layout');
  tt.ok(folders.length >= 20, `${folders.length} folders`);
  for (const f of folders) tt.match(layout, new RegExp(`(^|\\s)src/${f}/`, 'm'), `README Layout names src/${f}/`);
});

t.test("the architecture's module map lists every folder of src/", async (tt) => {
  const map = block('docs/architecture.md', '## Layout');
  for (const f of folders) tt.match(map, new RegExp(`^  ${f}/ `, 'm'), `docs/architecture.md names ${f}/`);
});
