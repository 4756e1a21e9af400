// eslint's flat config: typescript-eslint's recommended (type-unaware) rules over src/, test/,
// scripts/ and bin/, and the layering of src/ (docs/architecture.md, Layering). `npm run lint`
// runs it; so does test/unit/lint.test.ts.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { layerConfigs } from './scripts/eslint/layers.js';

/**
 * The layers of src/, bottom → top. A folder may import a folder of its own layer or of one
 * below, never one above. Derived from the import graph (farm-studio look, and the folders'
 * imports).
 */
const LAYERS = [
  { name: 'base', folders: ['sys', 'util'] },
  // store and config sit here, not among the features: the datapath and the map modules read
  // the config (pin root, names), and the config parses its store spec (store/spec.ts).
  { name: 'platform', folders: ['bpf', 'net', 'toolchain', 'store', 'config'] },
  // Programs: build, load, pin layout, attach. Below the map modules, which open their maps at
  // the pins datapath/pins.ts lays out (ts-maps: maps/map.ts).
  { name: 'datapath', folders: ['datapath'] },
  { name: 'maps', folders: ['maps'] },
  { name: 'features', folders: ['identity', 'ipam', 'routing', 'prefilter', 'endpoint', 'policy', 'service', 'node'] },
  { name: 'inspect', folders: ['inspect'] },
  // The agent's wire types and client: below the agent, so the CNI plugin loads no agent code.
  { name: 'api', folders: ['api'] },
  { name: 'agent', folders: ['agent'] },
  { name: 'entry points', folders: ['cni', 'cli', 'lab', 'bench', 'demo'] },
];

/** Folders that only some others may import, whatever their layers. */
const PRIVATE = {
  bpf: { users: ['datapath', 'maps'], instead: 'go through src/maps or src/datapath' },
};

/** Imports that break the rules today, each with why and what would end it. Keep it short. */
const EXCEPTIONS = [
  {
    files: ['src/bench/policy.ts'],
    may: ['bpf/object.js', 'bpf/map.js', 'bpf/testrun.js'],
    why: 'the policy benchmark loads the compiled object and times it with BPF_PROG_TEST_RUN, as test/bpf does',
  },
];

export default tseslint.config(
  { ignores: ['dist/', '.build/', '.tap/', 'node_modules/'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2022, sourceType: 'module' },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // A leading _ names what is left unused on purpose (`for (const _ of …)`, `{ a: _a, ...rest }`).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      // Off: its 11 findings rethrow a message that already carries the caught error's text; none loses a cause that matters.
      'preserve-caught-error': 'off',
    },
  },
  {
    // bin/ and scripts/lib/ are plain JavaScript run by node (tsc does not see them).
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly', Buffer: 'readonly' } },
  },
  {
    // Tests dig into parsed JSON; `any` at a test's edge is no module boundary.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  ...layerConfigs(LAYERS, PRIVATE, EXCEPTIONS),
);
