import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.tools/', '.data/', 'bench/results/', '.stryker-tmp/', 'reports/'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // A forgotten await on an activity, a query or a send is a bug, not a style choice.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  {
    // Workflow code is replayed: no Node built-ins, no I/O, no clients.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*', 'fs', 'path', 'crypto', 'http', 'https', 'net', 'child_process', 'os'], message: 'no Node built-ins in workflow code' },
            { group: ['pg', 'postmark', '@temporalio/client', '@temporalio/worker', '@temporalio/activity'], message: 'no I/O in workflow code: call an activity' },
          ],
          paths: [{ name: '../activities', message: 'import type only', allowTypeImports: true }],
        },
      ],
    },
  },
);
