/**
 * Bad input through the HTTP API, as the registry's backend (or anyone who reaches the port) could send
 * it: the running `token-expiry api` process gets each generated request over a bare socket. Every
 * malformed one gets a 4xx (never a 5xx) with the API's error body, and leaves the database exactly as
 * it was; the valid-but-odd ones succeed and store what was asked. The API's log names no address and
 * no secret.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Pool } from 'pg';
import { createPool } from '../../src/db/pool';
import { insertUser } from '../../src/registry/builtin';
import { childEnv, CliProcess } from '../helpers/cliProcess';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { describeChanges, snapshotDatabase } from '../helpers/dbSnapshot';
import { freePort, startDevServer, type DevServer } from '../../scripts/devtools/devServer';
import { findNeedles, needlesFor } from '../helpers/privacyScan';
import { rawRequest } from '../helpers/rawHttp';
import { httpCases, type HttpCase, type HttpCaseContext } from './httpCases';

let server: DevServer;
let database: TestDatabase;
let db: Pool;
let api: CliProcess;
let baseUrl: string;
let ctx: HttpCaseContext;
const secrets: string[] = [];
const emails = [`alice.inbox-${randomBytes(3).toString('hex')}@mail.example`, `bob.inbox-${randomBytes(3).toString('hex')}@mail.example`];
const serviceToken = `svc-${randomBytes(16).toString('hex')}`;
/** Status counts per category, written to .data/bad-input/api.json for the record. */
const statuses: Record<string, Record<number, number>> = {};

/** A malformed case as sent: what was wrong with the answer, and what it changed in the database. */
interface MalformedResult {
  c: HttpCase;
  problems: string[];
}
let malformed: MalformedResult[] = [];
/** A valid case as sent: what went wrong, if anything. */
let valid: { c: HttpCase; problems: string[] }[] = [];

// The categories are the same for any context; the cases themselves need the live ids and token.
const CATEGORIES = [
  ...new Set(httpCases({ serviceToken: 'x'.repeat(20), login: 'x', ownTokenId: '1', otherTokenId: '2', now: new Date() }).map((c) => c.category)),
];

async function createThroughApi(login: string): Promise<string> {
  const reply = await rawRequest(baseUrl, {
    method: 'PUT',
    path: '/api/v1/me/tokens',
    headers: [['Authorization', `Bearer ${serviceToken}`], ['X-Registry-User', login], ['Content-Type', 'application/json']],
    body: JSON.stringify({ api_token: { name: 'laptop', expired_at: new Date(Date.now() + 30 * 86_400_000).toISOString() } }),
  });
  expect(reply.status).toBe(200);
  const { api_token: token } = reply.json as { api_token: { id: number; token: string } };
  secrets.push(token.token);
  return String(token.id);
}

beforeAll(async () => {
  [server, database] = await Promise.all([startDevServer({ ui: false }), createTestDatabase()]);
  db = createPool(database.url, 2);
  const port = await freePort();
  api = CliProcess.start('api', ['api'], childEnv({
    DATABASE_URL: database.url,
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_TASK_QUEUE: `bad-input-${randomBytes(4).toString('hex')}`,
    API_PORT: String(port),
    API_AUTH_TOKEN: serviceToken,
    LOG_LEVEL: 'INFO',
  }));
  await api.waitForLog('listening', (line) => line.message === 'api listening');
  baseUrl = `http://127.0.0.1:${port}`;
  await insertUser(db, { login: 'alice', email: emails[0]!, verified: true });
  await insertUser(db, { login: 'bob', email: emails[1]!, verified: true });
  ctx = { serviceToken, login: 'alice', ownTokenId: await createThroughApi('alice'), otherTokenId: await createThroughApi('bob'), now: new Date() };
  // Every request is sent here, once, so that each test below judges them on its own, in any order or alone.
  malformed = [];
  for (const c of httpCases(ctx).filter((x) => x.kind === 'malformed')) malformed.push(await sendMalformed(c));
  valid = [];
  for (const c of httpCases(ctx).filter((x) => x.kind === 'valid')) valid.push(await sendValid(c));
}, 600_000);

afterAll(async () => {
  const reports = path.resolve(__dirname, '../../.data/bad-input');
  await mkdir(reports, { recursive: true });
  await writeFile(path.join(reports, 'api.json'), JSON.stringify({ statusesByCategory: statuses }, null, 2));
  await api?.stop(15_000);
  await Promise.allSettled([server?.stop(), db?.end()]);
  await database?.drop();
});

/** What is wrong with a reply to a malformed request; null when it is a proper refusal. */
function judge(c: HttpCase, reply: { status: number; json: unknown; headers: Record<string, string> }): string | null {
  if (reply.status < 400 || reply.status > 499) return `status ${reply.status}`;
  if (c.status !== undefined && reply.status !== c.status) return `status ${reply.status}, expected ${c.status}`;
  if (c.bare) return null;
  const errors = (reply.json as { errors?: unknown } | undefined)?.errors;
  if (!Array.isArray(errors) || errors.length === 0 || !errors.every((e) => typeof (e as { detail?: unknown }).detail === 'string' && (e as { detail: string }).detail !== '')) {
    return `no {"errors":[{"detail":...}]} body: ${JSON.stringify(reply.json)?.slice(0, 200)}`;
  }
  if (reply.status === 405 && !reply.headers.allow) return '405 without an Allow header';
  if (reply.status === 401 && !reply.headers['www-authenticate']) return '401 without WWW-Authenticate';
  return null;
}

/** Sends one malformed request and compares the database before and after it. */
async function sendMalformed(c: HttpCase): Promise<MalformedResult> {
  const where = `${c.name} (${c.request.method} ${c.request.path.slice(0, 80)})`;
  const problems: string[] = [];
  const before = await snapshotDatabase(db);
  try {
    const reply = await rawRequest(baseUrl, c.request);
    const seen = (statuses[c.category] ??= {});
    seen[reply.status] = (seen[reply.status] ?? 0) + 1;
    const problem = judge(c, reply);
    if (problem) problems.push(`${where}: ${problem}`);
  } catch (err) {
    problems.push(`${where}: no answer (${(err as Error).message})`);
  }
  const changes = describeChanges(before, await snapshotDatabase(db));
  if (changes.length > 0) problems.push(`${where}: changed the database: ${changes.join('; ').slice(0, 300)}`);
  return { c, problems };
}

/** Sends one valid-but-odd request: it must succeed, and a create must store the name as sent. */
async function sendValid(c: HttpCase): Promise<{ c: HttpCase; problems: string[] }> {
  const what = `${c.category}: ${c.name}`;
  const reply = await rawRequest(baseUrl, c.request);
  if (reply.status < 200 || reply.status > 299) return { c, problems: [`${what}: ${reply.status} ${reply.body.slice(0, 200)}`] };
  if (c.request.method !== 'PUT') return { c, problems: [] };
  const token = (reply.json as { api_token?: { id: number; name: string; token?: string } } | undefined)?.api_token;
  if (!token) return { c, problems: [`${what}: ${reply.status} without api_token: ${reply.body.slice(0, 200)}`] };
  if (token.token) secrets.push(token.token);
  const { rows } = await db.query<{ name: string }>('SELECT name FROM api_tokens WHERE id = $1', [token.id]);
  if (token.name !== c.storedName || rows[0]?.name !== c.storedName) {
    return { c, problems: [`${what}: stored ${JSON.stringify(rows[0]?.name)}, answered ${JSON.stringify(token.name)}`] };
  }
  return { c, problems: [] };
}

describe('malformed requests: a 4xx naming the problem, and the database byte-for-byte unchanged', () => {
  test('at least 500 of them, generated', () => {
    expect(malformed.length).toBeGreaterThanOrEqual(500);
    expect(new Set(malformed.map(({ c }) => `${c.category}: ${c.name}`)).size).toBe(malformed.length);
  });

  test.each(CATEGORIES)('%s', (category) => {
    const results = malformed.filter(({ c }) => c.category === category);
    // A category that generates nothing for the live ids would otherwise pass without a single request.
    expect(results.length).toBeGreaterThanOrEqual(1);
    expect(results.flatMap((r) => r.problems)).toEqual([]);
  });
});

test('valid but odd input (unicode and SQL-looking names, boundary sizes, lax content types) succeeds and is stored as sent', () => {
  expect(valid.length).toBeGreaterThanOrEqual(1);
  expect(valid.filter(({ c }) => c.request.method === 'PUT').length).toBeGreaterThanOrEqual(1);
  expect(valid.flatMap((r) => r.problems)).toEqual([]);
});

test('the API stayed up, logged no 5xx and no error, and its log names no address, secret or service token', () => {
  expect(api.running).toBe(true);
  const lines = api.jsonLines();
  const requests = lines.filter((l) => l.message === 'request');
  expect(requests.length).toBeGreaterThanOrEqual(500);
  expect(requests.filter((l) => typeof l.status !== 'number' || l.status >= 500)).toEqual([]);
  expect(lines.filter((l) => l.level === 'ERROR')).toEqual([]);
  const output = [{ label: 'api output', text: api.lines.map((l) => l.text).join('\n') }];
  const needles = needlesFor({ emails, secrets });
  expect(findNeedles(output, needles)).toEqual([]);
  expect(output[0]!.text).not.toContain(serviceToken);
  // The scan is not vacuous: secrets from the valid creates are among the needles, and a planted one is found.
  expect(secrets.length).toBeGreaterThan(2);
  expect(findNeedles([{ label: 'planted', text: `x ${secrets[secrets.length - 1]} y` }], needles)).not.toEqual([]);
});
