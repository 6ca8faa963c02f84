// `token-expiry forecast`: reminders due per UTC day from the database, as the workflows would send them.
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import type { Client } from '@temporalio/client';
import { createApiServer } from '../src/api/server';
import { loadConfig } from '../src/config';
import { JsonLogger } from '../src/log';
import { createPreferenceService } from '../src/preferences/service';
import { createWebhookService } from '../src/webhooks/service';
import { createCalendarService } from '../src/calendar/service';
import { createTokenService } from '../src/tokens/service';
import { markUnsent } from '../src/db/notifications';
import { claimRows, recordSent } from '../src/db/claims';
import { savePreferences } from '../src/db/preferences';
import type { TokenRow } from '../src/registry/adapter';
import { builtinWriter, insertUser } from '../src/registry/builtin';
import { forecast, forecastChart } from '../src/tokenExpiry/forecast';
import { CLI_PATH, requireBuiltCli } from './helpers/cliProcess';
import { createTestDatabase, type TestDatabase } from './helpers/database';
import { registryAdapter } from '../src/registry';

const execFileAsync = promisify(execFile);
let database: TestDatabase;
let userId: string;
let tokens = 0;

beforeAll(async () => {
  database = await createTestDatabase();
  userId = (await insertUser(database.pool, { login: 'forecaster', email: 'f@example.com', verified: true })).id;
});

afterAll(async () => {
  await database?.drop();
});

async function token(
  expiresAt: string | null,
  { createdAt, revoked, owner = userId }: { createdAt?: string; revoked?: boolean; owner?: string } = {},
): Promise<TokenRow> {
  const row = await builtinWriter.insertToken(database.pool, {
    userId: owner,
    hash: Buffer.from(`forecast-${++tokens}`),
    name: 'ci',
    expiredAt: expiresAt ? new Date(expiresAt) : null,
    crateScopes: null,
    endpointScopes: null,
  });
  if (createdAt) await database.pool.query('UPDATE api_tokens SET created_at = $2 WHERE id = $1', [row.id, createdAt]);
  if (revoked) await database.pool.query('UPDATE api_tokens SET revoked = true WHERE id = $1', [row.id]);
  return row;
}

const NOW = new Date('2030-06-10T12:00:00Z');
const settings = (env: Record<string, string> = {}) => loadConfig({ EXPIRY_REMINDERS: '7d,1d', EXPIRED_NOTICE: 'true', ...env });

test('counts each day the warnings and expired notices still to go out, by the rules the workflow sends by', async () => {
  await token('2030-06-12T08:00:00Z'); // 1d on 06-11, expired on 06-12 (its 7d was due before the range)
  await token('2030-06-18T10:00:00Z'); // 7d on 06-11
  await token('2030-06-12T08:00:00Z', { revoked: true }); // nothing: revoked
  const sentOne = await token('2030-06-12T09:00:00Z'); // its 1d is already sent: only the expired notice, 06-12
  const sentRef = { tokenId: sentOne.id, reminder: '1d', dueAt: '2030-06-11T09:00:00.000Z' };
  const sentClaim = await claimRows(database.pool, { lockKey: null, leader: sentRef, leaseMs: 45_000, members: [] });
  if (sentClaim.kind !== 'claimed') throw new Error('the row was not free');
  await recordSent(database.pool, sentClaim.fence, sentClaim.rows[0]!.dedupeKey, { messageId: 'm-1', submittedAt: new Date() }, { now: new Date(), waited: false });
  const inFlight = await token('2030-06-17T23:30:00Z'); // 7d on 06-10, being sent: still counted
  await claimRows(database.pool, { lockKey: null, leader: { tokenId: inFlight.id, reminder: '7d', dueAt: '2030-06-10T23:30:00.000Z' }, leaseMs: 45_000, members: [] });
  await token('2030-06-12T06:00:00Z', { createdAt: '2030-06-11T12:00:00Z' }); // its 1d was due before it existed: only expired
  await token('2030-06-15T00:00:00Z'); // 1d on 06-14; expired at the range's end, outside it
  await token(null); // no expiry, no reminders
  const skipped = await token('2030-06-13T15:00:00Z'); // both reminders already final (skipped, suppressed)
  await markUnsent(database.pool, { tokenId: skipped.id, reminder: '1d', dueAt: '2030-06-12T15:00:00.000Z' }, { status: 'skipped', reason: 'token-revoked' });
  await markUnsent(database.pool, { tokenId: skipped.id, reminder: 'expired', dueAt: '2030-06-13T15:00:00.000Z' }, { status: 'suppressed', reason: 'dry-run' });

  expect(await forecast(database.pool, settings(), { now: NOW, days: 5 })).toEqual([
    { date: '2030-06-10', warnings: 1, expired: 0, emails: 1 },
    { date: '2030-06-11', warnings: 2, expired: 0, emails: 2 },
    // One user's notices at 06:00, 08:00 and 09:00: the 08:00 one waits for 09:00 (EXPIRY_DIGEST_WINDOW 1h).
    { date: '2030-06-12', warnings: 0, expired: 3, emails: 2 },
    { date: '2030-06-13', warnings: 0, expired: 0, emails: 0 },
    { date: '2030-06-14', warnings: 1, expired: 0, emails: 1 },
  ]);

  // Another plan counts other reminders: no expired notices, a 3-day warning.
  const other = await forecast(database.pool, settings({ EXPIRY_REMINDERS: '3d', EXPIRED_NOTICE: 'false' }), { now: NOW, days: 5 });
  expect(other.map((d) => [d.date, d.warnings, d.expired])).toEqual([
    ['2030-06-10', 1, 0], // 06-13T15:00 (its 3d has no row)
    ['2030-06-11', 0, 0],
    ['2030-06-12', 1, 0], // 06-15T00:00
    ['2030-06-13', 0, 0],
    ['2030-06-14', 1, 0], // 06-17T23:30
  ]);
});

test('emails count what digests send: one per user for the same reminder falling due together, in parts of 100', async () => {
  const [alice, bob, carol] = await Promise.all(
    ['alice', 'bob', 'carol'].map(async (login) => (await insertUser(database.pool, { login: `forecast-${login}`, email: `${login}@example.com`, verified: true })).id),
  );
  // Alice: three tokens 20 minutes apart (one email per reminder), and one 2h20m after the last (its own emails).
  for (const at of ['10:00', '10:20', '10:40', '13:00']) await token(`2030-07-03T${at}:00Z`, { owner: alice });
  // Bob: one token at the same second as Alice's first: users never share an email.
  await token('2030-07-03T10:00:00Z', { owner: bob });
  // Carol: 150 tokens expiring together: a digest lists at most 100, so two emails per reminder.
  for (let i = 0; i < 150; i++) await token('2030-07-03T12:00:00Z', { owner: carol });

  const days = (window: string) => forecast(database.pool, settings({ EXPIRY_DIGEST_WINDOW: window }), { now: new Date('2030-07-01T00:00:00Z'), days: 3 });
  expect(await days('1h')).toEqual([
    { date: '2030-07-01', warnings: 0, expired: 0, emails: 0 },
    { date: '2030-07-02', warnings: 155, expired: 0, emails: 2 + 1 + 2 },
    { date: '2030-07-03', warnings: 0, expired: 155, emails: 2 + 1 + 2 },
  ]);
  // Digests off: one email per reminder.
  expect((await days('0')).map((d) => d.emails)).toEqual([0, 155, 155]);
  // A window of 10 minutes no longer joins Alice's tokens 20 minutes apart.
  expect((await days('10m')).map((d) => d.emails)).toEqual([0, 4 + 1 + 2, 4 + 1 + 2]);
});

test('a user with preferences is counted by their own plan: their lead times, waking hours and digests', async () => {
  const [berlin, other] = await Promise.all(
    ['berlin', 'other'].map(async (login) => (await insertUser(database.pool, { login: `forecast-${login}`, email: `${login}@example.com`, verified: true })).id),
  );
  // Sunday 2031-06-15, 22:00 and 22:30 in Berlin: two tokens of one user, and one of a user who never chose.
  await token('2031-06-15T20:00:00Z', { owner: berlin });
  await token('2031-06-15T20:30:00Z', { owner: berlin });
  await token('2031-06-15T20:00:00Z', { owner: other });
  const week = async () =>
    (await forecast(database.pool, settings(), { now: new Date('2031-06-09T12:00:00Z'), days: 8 })).filter((d) => d.warnings + d.expired > 0);
  // The operator's 7d,1d: the 7d warnings fell due before the range.
  expect(await week()).toEqual([
    { date: '2031-06-14', warnings: 3, expired: 0, emails: 2 },
    { date: '2031-06-15', warnings: 0, expired: 3, emails: 2 },
  ]);
  await savePreferences(database.pool, berlin as string, {
    reminders: ['3d', '12h'], expiredNotice: null, timeZone: 'Europe/Berlin',
    wakingHours: { startMinute: 9 * 60, endMinute: 18 * 60 }, workingDays: ['mon', 'tue', 'wed', 'thu', 'fri'],
  });
  // 3d on Thursday and 12h on Friday, each at 17:59 in Berlin, one email for both tokens; the notices on Monday 09:00.
  expect(await week()).toEqual([
    { date: '2031-06-12', warnings: 2, expired: 0, emails: 1 },
    { date: '2031-06-13', warnings: 2, expired: 0, emails: 1 },
    { date: '2031-06-14', warnings: 1, expired: 0, emails: 1 },
    { date: '2031-06-15', warnings: 0, expired: 1, emails: 1 },
    { date: '2031-06-16', warnings: 0, expired: 2, emails: 1 },
  ]);
});

test('draws a bar per day, scaled to the busiest', () => {
  const chart = forecastChart(
    [
      { date: '2030-06-10', warnings: 1, expired: 0, emails: 1 },
      { date: '2030-06-11', warnings: 8, expired: 2, emails: 10 },
      { date: '2030-06-12', warnings: 0, expired: 0, emails: 0 },
    ],
    10,
  );
  expect(chart).toBe(`2030-06-10  1 █\n2030-06-11 10 ██████████\n2030-06-12  0 \n`);
});

test('the command prints one entry per day from today, and refuses a range it cannot give', async () => {
  requireBuiltCli();
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', DATABASE_URL: database.url };
  const { stdout } = await execFileAsync(process.execPath, [CLI_PATH, 'forecast', '--days', '3'], { env });
  const days = JSON.parse(stdout) as { date: string; warnings: number; expired: number; emails: number }[];
  const today = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate());
  expect(days.map((d) => d.date)).toEqual([0, 1, 2].map((i) => new Date(today + i * 86_400_000).toISOString().slice(0, 10)));
  expect(Object.keys(days[0]!)).toEqual(['date', 'warnings', 'expired', 'emails']);

  const refused = await execFileAsync(process.execPath, [CLI_PATH, 'forecast', '--days', '0'], { env }).catch((err: unknown) => err);
  expect(refused).toMatchObject({ code: 2, stdout: '' });
  expect((refused as { stderr: string }).stderr).toContain('--days');
});


test('the API answers the same forecast to the service token alone, and refuses a bad range or no token', async () => {
  const config = settings({ API_AUTH_TOKEN: 'forecast-service-token-0123456789' });
  const noTemporal = async (): Promise<Client> => {
    throw new Error('the forecast needs no Temporal');
  };
  const server = createApiServer({
    db: database.pool,
    temporal: noTemporal,
    tokens: createTokenService({ registry: registryAdapter(config), db: database.pool, temporal: noTemporal, config }),
    preferences: createPreferenceService({ registry: registryAdapter(config), db: database.pool, temporal: noTemporal, config }),
    calendar: createCalendarService({ registry: registryAdapter(config), db: database.pool, config }),
    webhooks: createWebhookService({ db: database.pool, config }),
    config,
    logger: new JsonLogger('WARN', () => undefined),
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/expiry/forecast`;
  const auth = { Authorization: `Bearer ${config.API_AUTH_TOKEN}` };
  try {
    const answer = await fetch(`${base}?days=4`, { headers: auth });
    expect(answer.status).toBe(200);
    const days = (await answer.json()) as { date: string }[];
    expect(days).toEqual(await forecast(database.pool, config, { now: new Date(), days: 4 }));
    expect((await fetch(base, { headers: auth }).then((r) => r.json())) as unknown[]).toHaveLength(30);

    expect((await fetch(`${base}?days=0`, { headers: auth })).status).toBe(400);
    expect((await fetch(`${base}?days=400`, { headers: auth })).status).toBe(400);
    expect((await fetch(base)).status).toBe(401);
  } finally {
    server.close();
  }
});
