// The lint rule that keeps workflow code replayable covers every file the workflow bundle imports.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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

/** Lints each file with `prepend` put before its own text; the no-restricted-imports messages of each. */
function lintWith(cases: { file: string; prepend: string }[]): string[][] {
  const input = cases.map(({ file, prepend }) => ({ file, text: `${prepend}\n${readFileSync(path.join(root, file), 'utf8')}` }));
  const output = execFileSync(process.execPath, [path.join(__dirname, 'helpers/lintTexts.mjs')], {
    cwd: root,
    input: JSON.stringify(input),
    encoding: 'utf8',
  });
  return (JSON.parse(output) as { ruleId: string | null; message: string }[][]).map((messages) =>
    messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message),
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
  { file: 'src/worker.ts', prepend: "import 'events';", expected: [] },
];
let linted: string[][];
beforeAll(() => {
  linted = lintWith(cases);
}, 120_000);

test.each(cases.map((c, i) => [c.file, c.prepend, i] as const))('%s with %s', (_file, _prepend, i) => {
  const { expected } = cases[i]!;
  expect(linted[i]).toEqual(expected.map((text) => expect.stringContaining(text)));
});
