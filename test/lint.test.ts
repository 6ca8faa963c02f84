// The lint rule that keeps workflow code replayable covers every file the workflow bundle imports.
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const root = path.resolve(__dirname, '..');

/** workflows/index.ts and every project file it reaches by value or by type: what webpack may bundle. */
function bundleFiles(): string[] {
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    for (const [, spec] of source.matchAll(/from '(\.[^']+)'/g)) {
      const target = path.resolve(path.dirname(file), spec as string);
      const candidates = [`${target}.ts`, path.join(target, 'index.ts')];
      const found = candidates.find((candidate) => {
        try {
          readFileSync(candidate);
          return true;
        } catch {
          return false;
        }
      });
      // Type-only imports of activities are erased; the rule allows exactly those.
      if (found && !found.includes(`${path.sep}activities${path.sep}`)) visit(found);
    }
  };
  visit(path.join(root, 'workflows/index.ts'));
  return [...seen].map((file) => path.relative(root, file)).sort();
}

/** Lints each file with `prepend` put before its own text; the no-restricted-imports and -syntax messages of each. */
function lintWith(cases: { file: string; prepend: string }[]): string[][] {
  const input = cases.map(({ file, prepend }) => ({ file, text: `${prepend}\n${readFileSync(path.join(root, file), 'utf8')}` }));
  const output = execFileSync(process.execPath, [path.join(__dirname, 'helpers/lintTexts.mjs')], {
    cwd: root,
    input: JSON.stringify(input),
    encoding: 'utf8',
  });
  return (JSON.parse(output) as { ruleId: string | null; message: string }[][]).map((messages) =>
    messages
      .filter((m) => ['no-restricted-imports', '@typescript-eslint/no-restricted-imports', 'no-restricted-syntax'].includes(m.ruleId ?? ''))
      .map((m) => m.message),
  );
}

const files = bundleFiles();

test('the bundle reaches the two workflows and their contracts', () => {
  expect(files).toEqual(
    expect.arrayContaining(['workflows/index.ts', 'workflows/tokenExpiry.ts', 'workflows/sweep.ts', 'src/tokenExpiry/contract.ts', 'src/sweep/contract.ts']),
  );
});

const FORBIDDEN = [
  ["import 'events';", 'no Node built-ins'],
  ["import 'node:fs';", 'no Node built-ins'],
  ["import { Pool } from 'pg';", 'no I/O'],
  ["import { ServerClient } from 'postmark';", 'no I/O'],
] as const;

// One ESLint process for every case: type-aware linting takes seconds to start.
const cases = [
  ...files.flatMap((file) => FORBIDDEN.map(([prepend, expected]) => ({ file, prepend, expected: [expected] }))),
  { file: 'workflows/tokenExpiry.ts', prepend: "import { createActivities as real } from '../activities/tokenExpiry';", expected: ['import type only'] },
  { file: 'workflows/tokenExpiry.ts', prepend: "import type { createActivities as real } from '../activities/tokenExpiry';", expected: [] },
  { file: 'src/programs/worker.ts', prepend: "import 'events';", expected: [] },
  // Nothing below the programs (src/programs/) imports one; the programs import each other.
  { file: 'src/tokens/service.ts', prepend: "import { runWorker } from '../programs/worker';", expected: ['a program'] },
  { file: 'activities/sweep.ts', prepend: "import '../src/programs/cli';", expected: ['a program'] },
  { file: 'src/api/server.ts', prepend: "import { runApi } from '../programs/api';", expected: ['a program'] },
  { file: 'workflows/sweep.ts', prepend: "import type { WorkerDeps } from '../src/programs/worker';", expected: ['a program'] },
  { file: 'src/discovery/pass.ts', prepend: "import { runTokenDiscovery } from './run';", expected: [] },
  { file: 'src/programs/cli.ts', prepend: "import { runWorker } from './worker';", expected: [] },
  // The programs make the registry adapter; below them it is handed down.
  { file: 'src/sweep/pages.ts', prepend: "import { registryAdapter } from '../registry';\nregistryAdapter({ REGISTRY_SCHEMA: 'builtin' });", expected: ['the programs make the registry adapter once'] },
  { file: 'src/programs/api.ts', prepend: "registryAdapter({ REGISTRY_SCHEMA: 'builtin' });", expected: [] },
];
let linted: string[][];
beforeAll(() => {
  linted = lintWith(cases);
}, 120_000);

test.each(cases.map((c, i) => [c.file, c.prepend, i] as const))('%s with %s', (_file, _prepend, i) => {
  const { expected } = cases[i]!;
  expect(linted[i]).toEqual(expected.map((text) => expect.stringContaining(text)));
});

// The unused-export check (knip, the second half of `npm run lint`) on a copy of the project: the copy as it is
// passes; the same copy with one export that nothing imports fails, naming it.
describe('unused exports', () => {
  const knip = path.join(root, 'node_modules/.bin/knip');
  let copy: string;
  const check = () => spawnSync(knip, ['--no-progress'], { cwd: copy, encoding: 'utf8' });

  beforeAll(() => {
    copy = mkdtempSync(path.join(tmpdir(), 'te-knip-'));
    for (const entry of ['src', 'workflows', 'activities', 'test', 'bench', 'scripts', 'knip.json', 'package.json', 'tsconfig.json', 'jest.config.js', 'eslint.config.mjs', 'stryker.config.mjs']) {
      cpSync(path.join(root, entry), path.join(copy, entry), { recursive: true, filter: (from) => !from.includes(`${path.sep}results${path.sep}`) });
    }
    symlinkSync(path.join(root, 'node_modules'), path.join(copy, 'node_modules'));
  });
  afterAll(() => rmSync(copy, { recursive: true, force: true }));

  test('npm run lint runs ESLint and then the unused-export check', () => {
    const scripts = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.lint).toBe('eslint . && knip');
  });

  test('the project as it is has no unused export', () => {
    const result = check();
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  }, 60_000);

  test('an export nothing imports fails the check', () => {
    appendFileSync(path.join(copy, 'src/duration.ts'), '\nexport const nothingImportsThis = 1;\n');
    const result = check();
    expect(result.status).not.toBe(0);
    expect(result.stdout).toMatch(/nothingImportsThis\s+src\/duration\.ts/);
  }, 60_000);
});
