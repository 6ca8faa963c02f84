import { builtinModules } from 'node:module';
import tseslint from 'typescript-eslint';

/**
 * Every file the workflow bundle imports (workflows/index.ts and what it reaches): replayed code, so no
 * Node built-ins, no I/O packages and no clients. test/lint.test.ts checks that this list covers the bundle.
 */
export const WORKFLOW_BUNDLE_FILES = [
  'workflows/**/*.ts',
  'src/tokenExpiry/contract.ts',
  'src/tokenExpiry/summaries.ts',
  'src/tokenExpiry/spread.ts',
  'src/tokenExpiry/lease.ts',
  'src/tokenExpiry/plan.ts',
  'src/sweep/contract.ts',
];

/** The programs (src/programs/): each builds the config, the pool, the registry adapter and the clients once. */
const PROGRAM_IMPORT = {
  group: ['**/programs/*', '**/programs'],
  message: 'a program: library code takes its dependencies as arguments',
};

const NODE_BUILTINS = [...builtinModules, ...builtinModules.map((name) => `node:${name}`)];

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.tools/', '.data/', 'bench/results/', 'reports/', '.stryker-tmp/'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommended],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // Type-aware, where it pays: a forgotten await on an activity, a query or a send is a bug, not a style choice.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      // `const { secret, ...rest } = created` drops a field on purpose: an underscore says so.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // Tests read JSON replies and fixtures whose shape the assertion itself checks.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: WORKFLOW_BUNDLE_FILES,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...NODE_BUILTINS.map((name) => ({ name, message: 'no Node built-ins in workflow code: it is replayed in a sandbox' })),
            ...['pg', 'postmark', '@temporalio/client', '@temporalio/worker', '@temporalio/activity', '@temporalio/testing'].map((name) => ({
              name,
              message: 'no I/O in workflow code: call an activity',
            })),
          ],
          patterns: [
            { group: ['**/activities/*', '**/activities'], message: 'import type only', allowTypeImports: true },
          ],
        },
      ],
    },
  },
  {
    // The programs (src/programs/) build what the library needs and hand it down: nothing below them imports
    // one. test/lint.test.ts shows the rule fires.
    files: ['src/**/*.ts', 'activities/**/*.ts', 'workflows/**/*.ts'],
    ignores: ['src/programs/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: [PROGRAM_IMPORT] }],
      'no-restricted-syntax': [
        'error',
        { selector: "CallExpression[callee.name='registryAdapter']", message: 'the programs make the registry adapter once: take it as a dependency' },
      ],
    },
  },
);
