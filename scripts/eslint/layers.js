/**
 * Turns the layering of src/ (eslint.config.js: LAYERS, PRIVATE, EXCEPTIONS) into
 * eslint's own rule, @typescript-eslint/no-restricted-imports: one config block per folder of
 * src/ that forbids, by pattern, every folder it may not import, each pattern with a message
 * that names the layer rule and what to do instead; one more block per file that has an
 * exception (a rule's options are replaced, not merged, by a later block, so that block
 * carries the folder's whole list, less what the exception allows).
 *
 * Specifiers are matched as written: `../bpf/x.js` from src/agent/ and `../../bpf/x.js` from
 * src/cli/commands/ both name src/bpf. (A subfolder named like a folder of src/ would be
 * mistaken for it; there is none, keep it so.)
 */

const RULE = '@typescript-eslint/no-restricted-imports';
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * @param {{ name: string, folders: string[] }[]} layers bottom → top
 * @param {Record<string, { users: string[], instead: string }>} privates folder → who may import it
 * @param {{ files: string[], may: string[], typesOnly?: boolean, why: string }[]} exceptions
 *   `may`: a folder ('agent') or one module of it ('bpf/pin.js')
 * @returns {import('eslint').Linter.Config[]}
 */
export function layerConfigs(layers, privates, exceptions) {
  const layerOf = new Map();
  layers.forEach((l, i) => l.folders.forEach((f) => layerOf.set(f, i)));
  for (const f of Object.keys(privates)) if (!layerOf.has(f)) throw new Error(`layers: private folder ${f} is in no layer`);

  /** What `from` may not import, each with its message: [target, message]. */
  function forbidden(from) {
    const mine = layerOf.get(from);
    const out = [];
    for (const [to, at] of layerOf) {
      if (to === from) continue;
      if (at > mine) {
        out.push([to, `layering: src/${from} may not import src/${to} (layer '${layers[mine].name}' is below '${layers[at].name}'; imports run downwards only): `
          + `move what src/${from} needs down to its own layer or below, or have src/${to} pass it in (docs/architecture.md, Layering)`]);
      } else if (privates[to] && !privates[to].users.includes(from)) {
        out.push([to, `layering: src/${from} may not import src/${to}: ${privates[to].instead} (only ${[to, ...privates[to].users].map((u) => `src/${u}`).join(', ')} touch src/${to})`]);
      }
    }
    return out;
  }

  /** The rule's options for `from`, with `allowed` (target → modules, or '*' for all, 'types' for type imports). */
  function options(from, allowed = new Map()) {
    const patterns = [];
    for (const [to, message] of forbidden(from)) {
      const a = allowed.get(to);
      if (a === '*') continue;
      const except = Array.isArray(a) && a.length ? `(?!(${a.map(escape).join('|')})$)` : '';
      patterns.push({ regex: `^(\\.\\./)+${escape(to)}(/${except}|$)`, message, ...(a === 'types' ? { allowTypeImports: true } : {}) });
    }
    return ['error', { patterns }];
  }

  const blocks = [...layerOf.keys()].map((folder) => ({
    name: `sluice/layers/${folder}`,
    files: [`src/${folder}/**/*.ts`],
    rules: { [RULE]: options(folder) },
  }));

  const byFile = new Map();
  for (const e of exceptions) {
    if (!e.why) throw new Error(`layers: an exception for ${e.files.join(', ')} says no why`);
    for (const file of e.files) {
      const m = /^src\/([^/]+)\//.exec(file);
      if (!m || !layerOf.has(m[1])) throw new Error(`layers: exception file ${file} is in no layer`);
      const allowed = byFile.get(file) ?? new Map();
      for (const may of e.may) {
        const [to, module] = may.split(/\/(.*)/s);
        if (!layerOf.has(to)) throw new Error(`layers: exception target ${may} is in no layer`);
        if (e.typesOnly) allowed.set(to, 'types');
        else if (module === undefined) allowed.set(to, '*');
        else if (allowed.get(to) !== '*') allowed.set(to, [...(Array.isArray(allowed.get(to)) ? allowed.get(to) : []), module]);
      }
      byFile.set(file, allowed);
    }
  }
  for (const [file, allowed] of byFile) {
    blocks.push({ name: `sluice/layers/exception ${file}`, files: [file], rules: { [RULE]: options(/^src\/([^/]+)\//.exec(file)[1], allowed) } });
  }
  return blocks;
}
