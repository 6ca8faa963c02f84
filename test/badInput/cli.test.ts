/**
 * Bad input through the built command line: every generated case ends with exit code 2, a one-line-ish
 * message on stderr (no stack trace), nothing on stdout, and the database exactly as it was.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CLI_PATH, childEnv, requireBuiltCli } from '../helpers/cliProcess';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { describeChanges, snapshotDatabase } from '../helpers/dbSnapshot';
import { cliCases, type CliCase } from './cliCases';

const execFileAsync = promisify(execFile);
// Each call starts node (about half a second here); two at a time keeps the machine usable for others.
const CONCURRENCY = 2;

let database: TestDatabase;
const OWNER = 'owner-of-things';
let tokenId: string;

async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [CLI_PATH, ...args], {
      // Temporal is never reached by bad input: an address nobody answers on proves it.
      env: childEnv({ DATABASE_URL: database.url, TEMPORAL_ADDRESS: '127.0.0.1:9', ...env }),
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const { code, stdout, stderr } = err as { code: number; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}

beforeAll(async () => {
  requireBuiltCli();
  database = await createTestDatabase();
  expect((await cli(['users', 'add', '--login', OWNER, '--email', 'owner@example.com'])).code).toBe(0);
  const created = await cli(['tokens', 'create', '--user', OWNER, '--name', 'laptop']);
  expect(created.code).toBe(0);
  tokenId = String((JSON.parse(created.stdout) as { id: string }).id);
}, 60_000);

afterAll(async () => {
  await database?.drop();
});

test('100+ generated bad command lines: exit 2, a message on stderr, nothing on stdout, nothing written', async () => {
  const cases = cliCases({ login: OWNER, tokenId, now: new Date() });
  expect(cases.length).toBeGreaterThanOrEqual(100);
  const before = await snapshotDatabase(database.pool);

  const problems: string[] = [];
  let next = 0;
  const run = async (): Promise<void> => {
    for (let c: CliCase | undefined = cases[next++]; c; c = cases[next++]) {
      const { code, stdout, stderr } = await cli(c.args, c.env);
      const what = `${c.category}: ${JSON.stringify(c.args)}${c.env ? ` with ${JSON.stringify(c.env)}` : ''}`;
      if (code !== 2) problems.push(`${what}: exit ${code}\n${stdout}${stderr}`);
      else if (stdout !== '') problems.push(`${what}: printed on stdout: ${stdout}`);
      else if (!stderr.startsWith('token-expiry: ')) problems.push(`${what}: stderr is ${JSON.stringify(stderr)}`);
      else if (/\n\s+at /.test(stderr)) problems.push(`${what}: a stack trace on stderr`);
      else if (c.mentions && !stderr.includes(c.mentions)) problems.push(`${what}: stderr does not mention ${c.mentions}: ${stderr}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, run));

  expect(problems).toEqual([]);
  expect(describeChanges(before, await snapshotDatabase(database.pool))).toEqual([]);
}, 300_000);

test('a login that is taken: exit 2 and no row written; the failed insert burns one users id, as PostgreSQL does', async () => {
  const before = await snapshotDatabase(database.pool);

  const taken = await cli(['users', 'add', '--login', OWNER, '--email', 'again@example.com']);

  expect(taken).toEqual({ code: 2, stdout: '', stderr: `token-expiry: --login: "${OWNER}" is taken\n` });
  const changes = describeChanges(before, await snapshotDatabase(database.pool));
  expect(changes).toEqual([expect.stringMatching(/^sequence users_id_seq: \d+ -> \d+$/)]);
}, 60_000);
