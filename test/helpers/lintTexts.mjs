// Lints texts as if they were the given files, with the project's ESLint config; run in a process of its
// own because ESLint loads its config with import(), which jest's CommonJS sandbox cannot.
// stdin: [{ file, text }]; stdout: one list of { ruleId, message } per case.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ESLint } from 'eslint';

const root = path.resolve(import.meta.dirname, '../..');
const eslint = new ESLint({ cwd: root });
const cases = JSON.parse(readFileSync(0, 'utf8'));
const results = [];
for (const { file, text } of cases) {
  const [result] = await eslint.lintText(text, { filePath: path.join(root, file) });
  results.push((result?.messages ?? []).map(({ ruleId, message }) => ({ ruleId, message })));
}
process.stdout.write(JSON.stringify(results));
