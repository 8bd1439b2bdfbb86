// Flat config: typescript-eslint's recommended rules over all TypeScript sources, plus the house's
// walls: no import cycle, and imports only in the allowed direction between top-level folders
// (CONTRIBUTING.md, "The map of the house", says the same in words).
import js from '@eslint/js';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';
import noTypeImportCycle from './lint-rules/no-type-import-cycle.js';

/** Every top-level folder with TypeScript in it. */
const FOLDERS = ['bin', 'lib', 'runtime', 'lambdas', 'containers', 'local', 'bench', 'test'];
/** What each folder may import of ours besides itself; a folder not listed here may import anything. */
const MAY_IMPORT = {
  // Contracts shared by every runtime: they depend on nothing else of ours, so anything may use them.
  runtime: [],
  // What is deployed: each piece knows the contracts, never another piece or the tools around it.
  lambdas: ['runtime'],
  containers: ['runtime'],
  lib: ['runtime'],
  // Wires stacks from configuration.
  bin: ['lib', 'runtime'],
  // The tools on this machine drive the deployed code; nothing we ship or run may depend on tests.
  local: ['bin', 'lib', 'runtime', 'lambdas', 'containers', 'bench'],
  bench: ['bin', 'lib', 'runtime', 'lambdas', 'containers', 'local'],
};

const zones = Object.entries(MAY_IMPORT)
  .map(([folder, allowed]) => ({
    target: `./${folder}`,
    from: FOLDERS.filter((f) => f !== folder && !allowed.includes(f)).map((f) => `./${f}`),
    message: `${folder}/ may import only ${allowed.length ? `${allowed.join('/, ')}/ and ` : ''}itself (CONTRIBUTING.md, "The map of the house").`,
  }))
  // A folder allowed everything has no zone (the rule refuses an empty `from`).
  .filter((zone) => zone.from.length > 0);

export default tseslint.config(
  { ignores: ['node_modules/', 'cdk.out/', '.local-data/', '**/*.js', '**/*.d.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: ['**/*.ts'],
    plugins: { 'import-x': importX, house: { rules: { 'no-type-import-cycle': noTypeImportCycle } } },
    settings: {
      // Imports name .ts files without an extension (tsconfig moduleResolution "bundler").
      'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.js', '.json'] })],
      // Without it, import-x does not read a .ts module's own imports, and no-cycle sees no cycle.
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
    },
    rules: {
      // Cycles through value imports (import-x skips type-only imports: house/no-type-import-cycle has those).
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'house/no-type-import-cycle': 'error',
      'import-x/no-restricted-paths': ['error', { zones }],
    },
  },
);
