// A builtin database from before the service had a schema of its own (commit 921188b) migrates forward:
// every row is kept, the service's tables move into token_expiry, and a workflow already running sends on.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import { migrate } from '../src/db/migrate';
import { createPool } from '../src/db/pool';
import { startTokenExpiryWorkflow } from '../src/tokenExpiry/client';
import { adminQuery } from '../scripts/devtools/scratchDatabase';
import { adminDatabaseUrl } from './helpers/database';
import { TestSystem } from './helpers/system';

const system = TestSystem.use();
const OLD_SCHEMA = readFileSync(path.join(__dirname, 'fixtures/builtin-921188b.sql'), 'utf8');

let name: string;
let db: Pool;
beforeEach(async () => {
  name = `token_expiry_test_forward_${randomBytes(6).toString('hex')}`;
  await adminQuery(adminDatabaseUrl(), `CREATE DATABASE ${name}`);
  const url = new URL(adminDatabaseUrl());
  url.pathname = `/${name}`;
  db = createPool(url.toString(), 4);
  await db.query(OLD_SCHEMA);
});
afterEach(async () => {
  await db.end();
  await adminQuery(adminDatabaseUrl(), `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
});

/** Every row of a table, in id order, as JSON text: what "kept" is compared by. */
async function rowsOf(table: string, except: string[] = []): Promise<unknown[]> {
  const { rows } = await db.query<Record<string, unknown>>(`SELECT * FROM ${table} ORDER BY id`);
  return rows.map((row) => JSON.stringify(Object.fromEntries(Object.entries(row).filter(([key]) => !except.includes(key)))));
}

test('an existing builtin database keeps every row and its running workflow sends the reminders still due', async () => {
  const config = system.config();
  const email = 'old-owner@example.com';
  // The registry's rows as the old code wrote them, and a workflow it started.
  const { rows: users } = await db.query<{ id: string }>(
    "INSERT INTO users (login) VALUES ('old-owner'), ('other') RETURNING id::text",
  );
  const [owner, other] = users.map((u) => u.id) as [string, string];
  await db.query('INSERT INTO emails (user_id, email, verified) VALUES ($1, $2, true), ($3, $4, false)', [
    owner, email, other, 'other@example.com',
  ]);
  const { rows: tokenRows } = await db.query<{ id: string }>(
    `INSERT INTO api_tokens (user_id, token, name, created_at, expired_at, revoked, expiry_workflow_started_at)
     VALUES ($1, sha256('a'), 'running', now() - interval '60 days', now() + interval '30 days', false, now() - interval '60 days'),
            ($1, sha256('b'), 'revoked', now() - interval '10 days', now() + interval '20 days', true, now() - interval '10 days'),
            ($2, sha256('c'), 'no expiry', now(), NULL, false, NULL)
     RETURNING id::text`,
    [owner, other],
  );
  const [running, revoked] = tokenRows.map((t) => t.id) as [string, string];
  // An earlier reminder of the revoked token that went out before the move.
  await db.query(
    `INSERT INTO expiry_notifications (token_id, reminder, due_at, status, dedupe_key, provider_message_id, attempts, submitted_at)
     VALUES ($1, '7d', now() - interval '1 day', 'sent', 'token-expiry:x:7d:1', 'pm-1', 1, now() - interval '1 day')`,
    [revoked],
  );
  const workflowId = await startTokenExpiryWorkflow(
    system.env.client,
    (await db.query(`SELECT id::text, created_at AS "createdAt", expired_at AS "expiredAt" FROM api_tokens WHERE id = $1`, [running]))
      .rows[0],
    config,
  );
  const before = {
    users: await rowsOf('users'),
    emails: await rowsOf('emails'),
    tokens: await rowsOf('api_tokens', ['expiry_workflow_started_at']),
    notifications: await rowsOf('expiry_notifications'),
    started: (
      await db.query(
        `SELECT id::text, expiry_workflow_started_at AS at, user_id::text AS "userId", expired_at AS "expiresAt"
           FROM api_tokens WHERE expiry_workflow_started_at IS NOT NULL ORDER BY id`,
      )
    ).rows,
  };

  expect(await migrate(db)).toEqual({ applied: [4, 5, 6, 7, 8, 9, 10, 11], current: 11, instance: expect.stringMatching(/^[0-9a-f]{8}$/) });
  expect(await migrate(db)).toEqual({ applied: [], current: 11, instance: expect.stringMatching(/^[0-9a-f]{8}$/) });

  expect(await rowsOf('public.users')).toEqual(before.users);
  expect(await rowsOf('public.emails')).toEqual(before.emails);
  expect(await rowsOf('public.api_tokens')).toEqual(before.tokens);
  // The digest columns (migration 5) and the claim's (migration 9) are new: compared without them.
  expect(
    await rowsOf('token_expiry.expiry_notifications', ['sent_by_token_id', 'timing', 'claim_id', 'outcome_unknown_at']),
  ).toEqual(before.notifications);
  const { rows: bookkeeping } = await db.query(
    // With each token's owner and expiry, which digests find a user's tokens by.
    `SELECT token_id::text AS id, started_at AS at, user_id::text AS "userId", expires_at AS "expiresAt"
       FROM token_expiry.expiry_workflows ORDER BY token_id`,
  );
  expect(bookkeeping).toEqual(before.started);
  const { rows: left } = await db.query<{ what: string | null }>(
    `SELECT to_regclass('public.expiry_notifications')::text AS what UNION ALL SELECT to_regclass('public.schema_migrations')::text`,
  );
  expect(left).toEqual([{ what: null }, { what: null }]);
  const { rows: history } = await db.query('SELECT version FROM token_expiry.schema_migrations ORDER BY version');
  expect(history.map((h) => h.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  // No foreign key from our tables into the registry's.
  const { rows: keys } = await db.query(
    `SELECT conname FROM pg_constraint WHERE contype = 'f' AND connamespace = 'token_expiry'::regnamespace`,
  );
  expect(keys).toEqual([]);

  // The workflow started before the move runs on: its reminders go out, recorded in the moved log.
  await system.withWorker(config, () => system.env.client.workflow.getHandle(workflowId).result(), { db });
  expect(system.postmark.sent.filter((m) => m.To === email).map((m) => m.Subject)).toEqual([
    expect.stringContaining('expires in 7 days'),
    expect.stringContaining('expires tomorrow'),
    expect.stringContaining('has expired'),
  ]);
  const { rows: log } = await db.query(
    'SELECT token_id::text AS token, reminder, status FROM expiry_notifications ORDER BY id',
  );
  expect(log).toEqual([
    { token: revoked, reminder: '7d', status: 'sent' },
    { token: running, reminder: '7d', status: 'sent' },
    { token: running, reminder: '1d', status: 'sent' },
    { token: running, reminder: 'expired', status: 'sent' },
  ]);
});
