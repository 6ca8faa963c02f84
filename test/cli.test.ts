import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { createTestDatabase, type TestDatabase } from './helpers/database';

// The built command, as an operator runs it; scripts/test builds before it runs jest.
const CLI = path.resolve(__dirname, '../dist/src/programs/cli.js');
const execFileAsync = promisify(execFile);

let database: TestDatabase;

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build (scripts/test does)`);
  database = await createTestDatabase();
});

afterAll(async () => {
  await database?.drop();
});

async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync('node', [CLI, ...args], {
      // Temporal is never reached by these commands: an address nobody answers on proves it.
      env: { ...process.env, DATABASE_URL: database.url, TEMPORAL_ADDRESS: '127.0.0.1:9', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const { code, stdout, stderr } = err as { code: number; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}

/** Every row of every table, so that "nothing was written" can be checked exactly. */
async function snapshot(): Promise<string> {
  const tables = ['users', 'emails', 'api_tokens', 'expiry_notifications', 'user_preferences'];
  const dump: Record<string, unknown[]> = {};
  for (const table of tables) {
    dump[table] = (await database.pool.query(`SELECT * FROM ${table} ORDER BY 1`)).rows;
  }
  return JSON.stringify(dump);
}

test('users add, then a token without expiry: JSON out, the secret shown once and stored only as its hash', async () => {
  const added = await cli(['users', 'add', '--login', 'carol', '--email', 'carol@example.com']);
  expect(added.code).toBe(0);
  expect(JSON.parse(added.stdout)).toMatchObject({ login: 'carol', verified: true });

  const created = await cli(['tokens', 'create', '--user', 'carol', '--name', 'laptop', '--crate-scope', 'serde*', '--endpoint-scope', 'publish-update']);
  expect(created.code).toBe(0);
  const token = JSON.parse(created.stdout);
  expect(token).toMatchObject({ name: 'laptop', expiredAt: null, workflowId: null, crateScopes: ['serde*'], endpointScopes: ['publish-update'] });
  expect(token.token).toMatch(/^cio[A-Za-z0-9]{32}$/);
  const { rows } = await database.pool.query(`SELECT encode(token, 'hex') AS hash FROM api_tokens WHERE id = $1`, [token.id]);
  expect(rows[0].hash).toBe(createHash('sha256').update(token.token).digest('hex'));
  expect(await snapshot()).not.toContain(token.token);
});

describe('bad input gets a clear error, a non-zero exit, and writes nothing', () => {
  beforeAll(async () => {
    await cli(['users', 'add', '--login', 'dave', '--email', 'dave@example.com']);
  });

  test.each([
    [['tokens', 'create', '--user', 'dave', '--name', 'ci', '--expires-in', '7x'], '--expires-in: "7x" is not a duration'],
    [['tokens', 'create', '--user', 'dave', '--name', 'ci', '--expires-in=-3d'], '--expires-in: "-3d" is not a duration'],
    [['tokens', 'create', '--user', 'nobody', '--name', 'ci', '--expires-in', '30d'], 'no user with login "nobody"'],
    [['tokens', 'create', '--user', 'dave', '--name', 'ci', '--expires-at', '2020-01-01T00:00:00Z'], 'is in the past'],
    [['tokens', 'create', '--user', 'dave', '--name', 'ci', '--expires-at', 'next tuesday'], 'is not an ISO 8601 time'],
    [['tokens', 'create', '--user', 'dave', '--name', 'ci', '--expires-in', '30d', '--expires-at', '2099-01-01T00:00:00Z'], 'not both'],
    [['tokens', 'create', '--user', 'dave', '--name', 'a\r\nBcc: x@example.com'], 'control characters'],
    [['tokens', 'create', '--user', 'dave', '--name', 'ci', '--endpoint-scope', 'admin'], 'must be one of publish-new'],
    [['tokens', 'create', '--user', 'dave', '--name', 'ci', '--crate-scope', 'bad scope'], 'crate name'],
    [['tokens', 'create', '--user', 'dave'], '--name'],
    [['tokens', 'revoke', '424242'], 'no token with id "424242"'],
    [['tokens', 'rotate', '--', '-1'], 'no token with id "-1"'],
    [['tokens', 'rotate', '-1'], "Unknown option '-1'"],
    [['tokens', 'duplicate', 'abc'], 'no token with id "abc"'],
    [['tokens', 'status', '99999999999999999999999'], 'no token with id'],
    [['users', 'add', '--login', 'eve', '--email', 'not-an-address'], '--email'],
    [['users', 'add', '--login', 'dave', '--email', 'dave2@example.com'], '"dave" is taken'],
    [['tokens', 'frobnicate'], 'usage:'],
    [['preferences', 'set', '--user', 'dave', '--reminders', '3d,2d'], 'reminders: 2d is not on the menu (choose from 30d, 14d, 7d, 3d, 1d, 12h)'],
    [['preferences', 'set', '--user', 'dave', '--time-zone', 'Mars/Olympus'], 'timeZone: "Mars/Olympus" is not an IANA time zone'],
    [['preferences', 'set', '--user', 'dave', '--time-zone', 'UTC', '--waking-hours', '18:00-09:00'], 'is an empty window'],
    [['preferences', 'set', '--user', 'dave', '--waking-hours', '09:00-18:00'], 'need a time zone'],
    [['preferences', 'set', '--user', 'dave', '--time-zone', 'UTC', '--working-days', 'mon,funday'], '"funday": not a weekday'],
    [['preferences', 'set', '--user', 'dave', '--expired-notice', 'maybe'], '--expired-notice: "maybe" is not true, false or default'],
    [['preferences', 'set', '--user', 'dave'], 'name at least one preference'],
  ])('%j', async (args, message) => {
    const before = await snapshot();
    const result = await cli(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stdout).toBe('');
    expect(await snapshot()).toBe(before);
  });

  test('preferences: set, shown with the operator\'s settings filling the rest, and reset; stored in the service\'s schema', async () => {
    const set = await cli([
      'preferences', 'set', '--user', 'dave', '--reminders', '12h,3d', '--time-zone', 'europe/berlin',
      '--waking-hours', '09:00-18:00', '--working-days', 'mon-fri',
    ]);
    expect(set).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(set.stdout)).toMatchObject({
      preferences: { reminders: ['3d', '12h'], expired_notice: null, time_zone: 'Europe/Berlin', waking_hours: '09:00-18:00' },
      effective: { reminders: ['3d', '12h'], expired_notice: true, working_days: ['mon', 'tue', 'wed', 'thu', 'fri'] },
    });
    const shown = JSON.parse((await cli(['preferences', 'show', '--user', 'dave'])).stdout);
    expect(shown.preferences.time_zone).toBe('Europe/Berlin');
    const { rows } = await database.pool.query('SELECT time_zone FROM token_expiry.user_preferences');
    expect(rows).toEqual([{ time_zone: 'Europe/Berlin' }]);
    const reset = JSON.parse((await cli(['preferences', 'reset', '--user', 'dave'])).stdout);
    expect(reset.effective).toEqual({ reminders: ['7d', '1d'], expired_notice: true, time_zone: null, waking_hours: null, working_days: null });
    expect((await database.pool.query('SELECT * FROM token_expiry.user_preferences')).rows).toEqual([]);
  });

  test('calendar link prints a secret feed link under API_PUBLIC_URL, stored only as its hash; off removes it', async () => {
    const link = await cli(['calendar', 'link', '--user', 'dave'], { API_PUBLIC_URL: 'https://expiry.example/' });
    expect(link.code).toBe(0);
    const { url } = JSON.parse(link.stdout);
    expect(url).toMatch(/^https:\/\/expiry\.example\/calendar\/[A-Za-z0-9_-]{43}\.ics$/);
    const { rows } = await database.pool.query("SELECT encode(secret_sha256, 'hex') AS hash FROM token_expiry.calendar_feeds");
    expect(rows).toHaveLength(1);
    expect(JSON.parse((await cli(['calendar', 'off', '--user', 'dave'])).stdout)).toEqual({ removed: true });
  });

  test('webhook set prints the secret once; show never does; rotate prints a new one; a URL pointing inside is refused and nothing stored', async () => {
    const refused = await cli(['webhook', 'set', '--user', 'dave', '--url', 'https://127.0.0.1/hook']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('url: 127.0.0.1 points inside (127.0.0.1)');
    expect((await database.pool.query('SELECT * FROM token_expiry.user_webhooks')).rows).toEqual([]);

    const set = await cli(['webhook', 'set', '--user', 'dave', '--url', 'https://127.0.0.1:9/hook', '--channels', 'webhook'], {
      WEBHOOK_ALLOW_PRIVATE: 'true',
    });
    expect(set).toMatchObject({ code: 0, stderr: '' });
    const made = JSON.parse(set.stdout).webhook;
    expect(made).toMatchObject({ url: 'https://127.0.0.1:9/hook', channels: ['webhook'], secret: expect.stringMatching(/^whsec_/) });
    expect(JSON.parse((await cli(['webhook', 'show', '--user', 'dave'])).stdout).webhook.secret).toBeUndefined();
    const rotated = JSON.parse((await cli(['webhook', 'rotate', '--user', 'dave'])).stdout).webhook;
    expect(rotated.secret).toMatch(/^whsec_/);
    expect(rotated.secret).not.toBe(made.secret);
    expect(JSON.parse((await cli(['webhook', 'off', '--user', 'dave'])).stdout)).toEqual({ removed: true });
  });

  test('a bad EXPIRY_REMINDERS names the variable', async () => {
    const before = await snapshot();
    const { code, stderr } = await cli(['tokens', 'create', '--user', 'dave', '--name', 'ci'], { EXPIRY_REMINDERS: '7d,soon' });
    expect(code).toBe(2);
    expect(stderr).toContain('EXPIRY_REMINDERS: "soon" is not a duration (use e.g. 7d, 12h, 30m, 45s)');
    expect(await snapshot()).toBe(before);
  });
});
