/**
 * The recipes of a Markdown document: every ```sh block preceded by a line
 * `<!-- recipe: ID -->`. A test runs each recipe's commands as a user would type them and
 * checks what they print, so the documentation cannot drift from the behaviour.
 */
import { readFileSync } from 'node:fs';

export interface Recipe {
  id: string;
  /** 1-based line of the block's first command, for failure messages. */
  line: number;
  /** The block's commands, one per line, trailing `  # comment`s removed. */
  commands: string[];
}

/** Every recipe of `path`; a marker without a ```sh block right after it, or a duplicate ID, is an error. */
export function readRecipes(path: string): Recipe[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const out: Recipe[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^<!-- recipe: ([a-z0-9-]+) -->$/.exec(lines[i]!);
    if (!m) continue;
    if (lines[i + 1] !== '```sh') throw new Error(`${path}:${i + 1}: recipe ${m[1]} is not followed by a \`\`\`sh block`);
    const end = lines.indexOf('```', i + 2);
    if (end < 0) throw new Error(`${path}:${i + 2}: recipe ${m[1]}: unterminated block`);
    const commands = lines.slice(i + 2, end).map((l) => l.replace(/\s{2,}#.*$/, '').trim()).filter((l) => l && !l.startsWith('#'));
    if (out.some((r) => r.id === m[1])) throw new Error(`${path}:${i + 1}: recipe ${m[1]} appears twice`);
    out.push({ id: m[1]!, line: i + 3, commands });
    i = end;
  }
  return out;
}
