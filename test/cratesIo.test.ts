// Attached to crates.io's own schema (test/fixtures/crates-io.sql) as the restricted role from
// `registry-sql`: tokens the registry writes by plain SQL get their reminders, revoked ones none, and the
// registry's tables are left exactly as the registry wrote them.
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import type { Pool } from 'pg';
import { createApiServer } from '../src/api/server';
import { migrate } from '../src/db/migrate';
import { createPool } from '../src/db/pool';
import { DISCOVERY_ID_MARGIN, discoverNewTokens } from '../src/discovery/pass';
import { runTokenDiscovery } from '../src/discovery/run';
import { TOKEN_CHANGE_CHANNEL } from '../src/registry/tokenChanges';
import { cratesIoRegistry } from '../src/registry/cratesIo';
import { checkRegistryAccess } from '../src/registry/grants';
import type { SweepResult } from '../src/sweep/contract';
import { tokenExpiryWorkflowId } from '../src/tokenExpiry/contract';
import { createPreferenceService } from '../src/preferences/service';
import { createWebhookService } from '../src/webhooks/service';
import { createCalendarService } from '../src/calendar/service';
import { createTokenService } from '../src/tokens/service';
import { adminQuery } from '../scripts/devtools/scratchDatabase';
import { adminDatabaseUrl, TEST_INSTANCE } from './helpers/database';
import { taskQueueOf } from '../src/config';
import { describeChanges, snapshotDatabase } from './helpers/dbSnapshot';
import { eventually } from './helpers/poll';
import { TestSystem } from './helpers/system';
import { registryAdapter } from '../src/registry';

const system = TestSystem.use();
// The built command, as docs/operations.md's steps run it (scripts/test builds before jest).
const CLI = path.resolve(__dirname, '../dist/src/programs/cli.js');
const FIXTURE = readFileSync(path.join(__dirname, 'fixtures/crates-io.sql'), 'utf8');
const tag = randomBytes(4).toString('hex');
const database = `token_expiry_test_crates_${tag}`;
const role = `token_expiry_test_role_${tag}`;
const bareRole = `token_expiry_test_bare_${tag}`;
/** The registry's application: writes its tokens as a role of its own, not as the tables' owner. */
const appRole = `token_expiry_test_app_${tag}`;

/** Each role's password, set as a DBA would (the server asks for passwords, as a registry's does). */
const passwords = new Map<string, string>();

async function givePassword(name: string): Promise<void> {
  const password = randomBytes(12).toString('hex');
  await adminQuery(adminDatabaseUrl(), `ALTER ROLE ${name} PASSWORD '${password}'`);
  passwords.set(name, password);
}

async function createLoginRole(name: string): Promise<void> {
  await adminQuery(adminDatabaseUrl(), `CREATE ROLE ${name} LOGIN`);
  await givePassword(name);
}

function urlFor(user?: string): string {
  const url = new URL(adminDatabaseUrl());
  url.pathname = `/${database}`;
  if (user) {
    url.username = user;
    url.password = passwords.get(user) ?? '';
  }
  return url.toString();
}

/** The registry's own connection (superuser), and the service's (the restricted role). */
let registry: Pool;
let service: Pool;

beforeAll(async () => {
  await adminQuery(adminDatabaseUrl(), `CREATE DATABASE ${database}`);
  registry = createPool(urlFor(), 4);
  await registry.query(FIXTURE);
  // As the DBA would: registry-sql's output through psql, twice (it must be safe to run again).
  dbaRuns(registrySqlOutput());
  await givePassword(role);
  service = createPool(urlFor(role), 4);
  expect(await migrate(service, { schema: 'token_expiry', registry: 'crates-io', instance: TEST_INSTANCE })).toEqual({ applied: [4, 5, 6, 7, 8, 9, 10, 11], current: 11, instance: TEST_INSTANCE });
});

afterAll(async () => {
  await Promise.allSettled([registry?.end(), service?.end()]);
  await adminQuery(adminDatabaseUrl(), `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await adminQuery(adminDatabaseUrl(), `DROP ROLE IF EXISTS ${role}`);
  await adminQuery(adminDatabaseUrl(), `DROP ROLE IF EXISTS ${bareRole}`);
  await adminQuery(adminDatabaseUrl(), `DROP ROLE IF EXISTS ${appRole}`);
});

const config = () => system.config({ REGISTRY_SCHEMA: 'crates-io' });

/** `REGISTRY_SCHEMA=crates-io token-expiry registry-sql --role ROLE [...]`, as docs/operations.md has the DBA run it. */
function registrySqlOutput(...flags: string[]): string {
  return execFileSync('node', [CLI, 'registry-sql', '--role', role, ...flags], {
    env: { ...process.env, REGISTRY_SCHEMA: 'crates-io', DATABASE_URL: urlFor() },
    encoding: 'utf8',
  });
}

/** psql -v ON_ERROR_STOP=1 -f grants.sql, twice. */
function dbaRuns(sql: string): void {
  for (let i = 0; i < 2; i++) execFileSync('psql', [urlFor(), '-q', '-v', 'ON_ERROR_STOP=1', '-f', '-'], { input: sql });
}

/** A token as crates.io's handler writes it: straight into its table, nothing told. */
async function registryInsertsToken(userId: number, expiresInDays: number, db: Pick<Pool, 'query'> = registry): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO api_tokens (user_id, token, name, expired_at, endpoint_scopes)
     VALUES ($1, sha256(gen_random_uuid()::text::bytea), 'publish', now() + $2 * interval '1 day', '{publish-update}')
     RETURNING id::text`,
    [userId, expiresInDays],
  );
  return rows[0]!.id;
}

async function runSweep(taskQueue: string): Promise<SweepResult> {
  return system.env.client.workflow.execute('tokenExpirySweepWorkflow', {
    taskQueue,
    workflowId: `token-expiry-sweep-test-${randomBytes(3).toString('hex')}`,
    args: [{}],
  });
}

const FERRIS = 40002;
const PENDING = 40004;

test('tokens the registry inserts by SQL are found and get exactly their reminders; an unverified address gets none', async () => {
  const cfg = config();
  const ferrisToken = await registryInsertsToken(FERRIS, 30);
  const pendingToken = await registryInsertsToken(PENDING, 30);
  const written = await snapshotDatabase(registry);

  await system.withWorker(
    cfg,
    async () => {
      // The fixture's own tokens are revoked, expired or without expiry: only the two new ones get a workflow.
      expect(await runSweep(taskQueueOf(cfg))).toMatchObject({ scanned: 2, started: 2, failed: 0 });
      for (const id of [ferrisToken, pendingToken]) {
        await system.env.client.workflow.getHandle(tokenExpiryWorkflowId(id, TEST_INSTANCE)).result();
      }
    },
    { db: service },
  );

  const mail = system.postmark.sent;
  expect(mail.map((m) => [m.To, m.Subject])).toEqual([
    ['ferris@example.com', expect.stringContaining('expires in 7 days')],
    ['ferris@example.com', expect.stringContaining('expires tomorrow')],
    ['ferris@example.com', expect.stringContaining('has expired')],
  ]);
  // Greeted by gh_login, as crates.io does.
  expect(mail[0]?.TextBody).toContain('Hello ferris,');
  const { rows } = await service.query(
    'SELECT reminder, status, reason FROM expiry_notifications WHERE token_id = $1 ORDER BY due_at',
    [pendingToken],
  );
  expect(rows).toEqual(
    ['7d', '1d', 'expired'].map((reminder) => ({ reminder, status: 'skipped', reason: 'no-verified-email' })),
  );
  // Not a byte of the registry's tables changed (not expiry_notification_at, not a sequence).
  expect(describeChanges(written, await snapshotDatabase(registry))).toEqual([]);
});

test('a user\'s tokens inserted by SQL with one lifetime get one email per reminder, greeted by gh_login', async () => {
  const cfg = config();
  // Created a few seconds apart, as a CI setup script would: one expiry minute, one digest.
  const ids = [await registryInsertsToken(FERRIS, 30), await registryInsertsToken(FERRIS, 30)];
  await system.withWorker(
    cfg,
    async () => {
      expect(await runSweep(taskQueueOf(cfg))).toMatchObject({ started: 2 });
      for (const id of ids) await system.env.client.workflow.getHandle(tokenExpiryWorkflowId(id, TEST_INSTANCE)).result();
    },
    { db: service },
  );
  const mail = system.postmark.sent;
  expect(mail.map((m) => [m.To, m.Subject])).toEqual([
    ['ferris@example.com', '2 of your crates.io API tokens expire in 7 days'],
    ['ferris@example.com', '2 of your crates.io API tokens expire tomorrow'],
    ['ferris@example.com', '2 of your crates.io API tokens have expired'],
  ]);
  expect(mail[0]?.TextBody).toContain('Hello ferris,');
  for (const id of ids) expect(mail[0]?.TextBody).toContain(`https://crates.io/settings/tokens/new?from=${id}`);
  const { rows } = await service.query(
    'SELECT token_id::text AS id, count(*)::int AS sent FROM expiry_notifications WHERE token_id = ANY($1::bigint[]) AND status = $2 GROUP BY 1 ORDER BY 1',
    [ids, 'sent'],
  );
  expect(rows).toEqual(ids.map((id) => ({ id, sent: 3 })));
});

test('a token the registry revokes by SQL gets no email, and its workflow ends Cancelled at the next sweep', async () => {
  const cfg = config();
  const id = await registryInsertsToken(FERRIS, 30);
  await system.withWorker(
    cfg,
    async () => {
      expect(await runSweep(taskQueueOf(cfg))).toMatchObject({ started: 1 });
      await registry.query('UPDATE api_tokens SET revoked = true WHERE id = $1', [id]);
      const written = await snapshotDatabase(registry);
      await runSweep(taskQueueOf(cfg));
      const err = await system.env.client.workflow.getHandle(tokenExpiryWorkflowId(id, TEST_INSTANCE)).result().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
      expect(describeChanges(written, await snapshotDatabase(registry))).toEqual([]);
    },
    { db: service },
  );
  expect(system.postmark.sent).toEqual([]);
});

test('the role cannot read a token hash or a confirmation token, nor write the registry\'s tables', async () => {
  for (const sql of [
    'SELECT token FROM api_tokens LIMIT 1',
    'SELECT * FROM api_tokens LIMIT 1',
    'SELECT token FROM emails LIMIT 1',
    'SELECT username FROM users LIMIT 1',
    "UPDATE api_tokens SET expiry_notification_at = now() WHERE id = 1500001",
    "INSERT INTO api_tokens (user_id, token, name) VALUES (40002, '\\x00', 'x')",
  ]) {
    await expect(service.query(sql)).rejects.toThrow(/permission denied/);
  }
});

test('the service refuses to start when it can read a token hash or a confirmation token, however granted', async () => {
  const group = `token_expiry_test_group_${tag}`;
  await adminQuery(adminDatabaseUrl(), `CREATE ROLE ${group} NOLOGIN`);
  try {
    await expect(checkRegistryAccess(service, cratesIoRegistry)).resolves.toBeUndefined();
    // A group the role belongs to, with table-level SELECT: the role reads api_tokens.token through it.
    await registry.query(`GRANT SELECT ON api_tokens TO ${group}`);
    await registry.query(`GRANT ${group} TO ${role}`);
    await expect(service.query('SELECT token FROM api_tokens LIMIT 1')).resolves.toBeDefined();
    await expect(checkRegistryAccess(service, cratesIoRegistry)).rejects.toThrow(
      new RegExp(`^the role ${role} can read api_tokens\\.token, which the service must never read`),
    );
    await registry.query(`REVOKE ${group} FROM ${role}`);
    // PUBLIC, column by column.
    await registry.query('GRANT SELECT (token) ON emails TO PUBLIC');
    await expect(checkRegistryAccess(service, cratesIoRegistry)).rejects.toThrow(/can read emails\.token,/);
    await registry.query('REVOKE SELECT (token) ON emails FROM PUBLIC');
    // A member that does not inherit the group's privileges is one SET ROLE away from them.
    await registry.query(`ALTER ROLE ${role} NOINHERIT; GRANT ${group} TO ${role}`);
    await expect(service.query('SELECT token FROM api_tokens LIMIT 1')).rejects.toThrow(/permission denied/);
    await expect(checkRegistryAccess(service, cratesIoRegistry)).rejects.toThrow(/can read api_tokens\.token,/);
    await registry.query(`REVOKE ${group} FROM ${role}; ALTER ROLE ${role} INHERIT`);
    // A superuser reads everything: the registry's own connection is refused too.
    await expect(checkRegistryAccess(registry, cratesIoRegistry)).rejects.toThrow(/can read api_tokens\.token, emails\.token,/);
    await expect(checkRegistryAccess(service, cratesIoRegistry)).resolves.toBeUndefined();
  } finally {
    await registry.query(`ALTER ROLE ${role} INHERIT; REVOKE ${group} FROM ${role}; REVOKE ALL ON api_tokens FROM ${group}`);
    await registry.query('REVOKE SELECT (token) ON emails FROM PUBLIC');
    await adminQuery(adminDatabaseUrl(), `DROP ROLE IF EXISTS ${group}`);
  }
});

test('bad input: an id beyond int4 or unknown is not found; writes are refused, saying the registry owns its tokens', async () => {
  const tokens = createTokenService({ registry: registryAdapter(config()), db: service, temporal: async () => system.env.client, config: config() });
  for (const id of ['3000000000', '2147483648', '99', '0', '-1', '1e3']) {
    await expect(tokens.status(id)).rejects.toMatchObject({ kind: 'not-found' });
  }
  // The login as crates.io resolves it: case-insensitive, never the deleted GitHub account.
  const ferris = await tokens.user('FERRIS');
  expect(ferris).toEqual({ id: String(FERRIS), login: 'ferris' });
  expect((await tokens.list(ferris)).map((t) => t.name)).toContain('laptop');
  const refusal = { kind: 'read-only', message: expect.stringMatching(/registry owns its tokens/) };
  await expect(tokens.create(ferris, { name: 'x', expiresAt: null, crateScopes: null, endpointScopes: null })).rejects.toMatchObject(refusal);
  await expect(tokens.revoke('1500001')).rejects.toMatchObject(refusal);
  await expect(tokens.rotate('1500001')).rejects.toMatchObject(refusal);
  await expect(tokens.addUser({ login: 'x', email: 'x@example.com', verified: true })).rejects.toMatchObject(refusal);
  // A role name that is not a plain SQL identifier is refused before any SQL is printed.
  let refused: { status?: number; stdout?: string; stderr?: string } = {};
  try {
    execFileSync('node', [CLI, 'registry-sql', '--role', 'svc"; DROP TABLE users; --'], { encoding: 'utf8', stdio: 'pipe' });
  } catch (err) {
    refused = err as typeof refused;
  }
  expect(refused).toMatchObject({ status: 2, stdout: '', stderr: expect.stringContaining('--role: must be a lower-case SQL identifier') });
});

test('a role without the grants is refused at start, naming what to grant', async () => {
  await createLoginRole(bareRole);
  await registry.query(`GRANT SELECT (id, gh_login, gh_id) ON users TO ${bareRole}`);
  await registry.query(`GRANT SELECT (user_id, email, verified) ON emails TO ${bareRole}`);
  await registry.query(`GRANT SELECT (id, user_id, name, created_at) ON api_tokens TO ${bareRole}`);
  const bare = createPool(urlFor(bareRole), 1);
  try {
    await expect(checkRegistryAccess(bare, cratesIoRegistry)).rejects.toThrow(
      `the role ${bareRole} lacks GRANT SELECT (last_used_at, revoked, crate_scopes, endpoint_scopes, expired_at) ON api_tokens TO ${bareRole}`,
    );
    await expect(migrate(bare, { schema: 'token_expiry_bare', registry: 'crates-io' })).rejects.toThrow(/registry-sql --role/);
    await expect(checkRegistryAccess(service, cratesIoRegistry)).resolves.toBeUndefined();
  } finally {
    await bare.end();
    await registry.query(`REVOKE ALL ON users, emails, api_tokens FROM ${bareRole}`);
  }
});

test('a registry that can call us: PUT and DELETE /api/v1/expiry/tokens/:id take an id and read the rest from its tables', async () => {
  const cfg = system.config({ REGISTRY_SCHEMA: 'crates-io', API_AUTH_TOKEN: 'a-service-token-for-tests' });
  const tokens = createTokenService({ registry: registryAdapter(cfg), db: service, temporal: async () => system.env.client, config: cfg });
  const preferences = createPreferenceService({ registry: registryAdapter(cfg), db: service, temporal: async () => system.env.client, config: cfg });
  const calendar = createCalendarService({ registry: registryAdapter(cfg), db: service, config: cfg });
  const webhooks = createWebhookService({ db: service, config: cfg });
  const server = createApiServer({ tokens, preferences, calendar, webhooks, db: service, temporal: async () => system.env.client, config: cfg });
  server.listen(0);
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const call = (method: string, route: string, headers: Record<string, string> = {}) =>
    fetch(`${base}${route}`, { method, headers: { Authorization: 'Bearer a-service-token-for-tests', ...headers } });
  try {
    const id = await registryInsertsToken(FERRIS, 30);
    await system.withWorker(
      cfg,
      async () => {
        const put = await call('PUT', `/api/v1/expiry/tokens/${id}`);
        expect(put.status).toBe(200);
        expect(await put.json()).toMatchObject({ api_token: { id: Number(id) }, expiry: { workflow_id: tokenExpiryWorkflowId(id, TEST_INSTANCE) } });
        const handle = system.env.client.workflow.getHandle(tokenExpiryWorkflowId(id, TEST_INSTANCE));
        expect((await handle.describe()).status.name).toBe('RUNNING');
        // Still active in the registry: a DELETE must not silence it.
        expect((await call('DELETE', `/api/v1/expiry/tokens/${id}`)).status).toBe(409);
        await registry.query('UPDATE api_tokens SET revoked = true WHERE id = $1', [id]);
        expect((await call('DELETE', `/api/v1/expiry/tokens/${id}`)).status).toBe(204);
        const err = await handle.result().catch((e: unknown) => e);
        expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
      },
      { db: service },
    );
    expect(system.postmark.sent).toEqual([]);
    expect((await call('PUT', '/api/v1/expiry/tokens/3000000000')).status).toBe(404);
    expect((await call('PUT', `/api/v1/expiry/tokens/${id}`, { Authorization: 'Bearer wrong' })).status).toBe(401);
    const createWithBody = await fetch(`${base}/api/v1/me/tokens`, {
      method: 'PUT',
      headers: { Authorization: 'Bearer a-service-token-for-tests', 'X-Registry-User': 'ferris', 'Content-Type': 'application/json' },
      body: JSON.stringify({ api_token: { name: 'x', crate_scopes: null, endpoint_scopes: null, expired_at: null } }),
    });
    expect(createWithBody.status).toBe(403);
    expect(JSON.stringify(await createWithBody.json())).toMatch(/registry owns its tokens/);
    // Preferences live in the service's own schema: they can be kept for a registry's user without writing its tables.
    const preferences = await fetch(`${base}/api/v1/me/expiry/preferences`, {
      method: 'PUT',
      headers: { Authorization: 'Bearer a-service-token-for-tests', 'X-Registry-User': 'ferris', 'Content-Type': 'application/json' },
      body: JSON.stringify({ preferences: { reminders: ['3d'], time_zone: 'Europe/Berlin', waking_hours: '09:00-18:00' } }),
    });
    expect(preferences.status).toBe(200);
    expect(((await preferences.json()) as { effective: unknown }).effective).toMatchObject({ reminders: ['3d'], time_zone: 'Europe/Berlin' });
  } finally {
    server.close();
  }
});

/** Warnings from discovery: none is expected in these tests. */
const warnings: string[] = [];
const discoveryLog = { info: () => undefined, warn: (message: string) => void warnings.push(message) };
const discoveryDeps = () => ({ db: service, registry: registryAdapter(config()), client: system.env.client, config: config(), now: () => new Date(), log: discoveryLog });
const executionOf = async (id: string) => (await system.env.client.workflow.getHandle(tokenExpiryWorkflowId(id, TEST_INSTANCE)).describe()).status.name;

test('without the trigger: each discovery pass starts the tokens inserted since the last one, also one that committed late', async () => {
  const deps = discoveryDeps();
  await discoverNewTokens(deps); // the mark: every token so far has been seen
  const first = await registryInsertsToken(FERRIS, 30);
  expect(await discoverNewTokens(deps)).toMatchObject({ scanned: 1, started: 1, failed: 0, throughId: first });
  expect(await executionOf(first)).toBe('RUNNING');
  expect(await discoverNewTokens(deps)).toMatchObject({ scanned: 0, started: 0 });

  // Ids commit out of order: a token whose id was drawn first commits after a pass has read past it.
  const slow = await registry.connect();
  try {
    await slow.query('BEGIN');
    const late = await registryInsertsToken(FERRIS, 30, slow);
    const early = await registryInsertsToken(FERRIS, 30);
    expect(BigInt(early)).toBeGreaterThan(BigInt(late));
    expect(await discoverNewTokens(deps)).toMatchObject({ started: 1, throughId: early });
    await slow.query('COMMIT');
    // Within the margin below the mark: the next pass finds it.
    expect(BigInt(early) - BigInt(late)).toBeLessThan(DISCOVERY_ID_MARGIN);
    expect(await discoverNewTokens(deps)).toMatchObject({ scanned: 1, started: 1 });
    expect(await executionOf(late)).toBe('RUNNING');
  } finally {
    slow.release();
  }

  // One pass at a time: while another worker's pass holds the mark, a pass does nothing.
  const other = await service.connect();
  try {
    await other.query('BEGIN');
    await other.query('SELECT high_water FROM token_discovery FOR UPDATE');
    await registryInsertsToken(FERRIS, 30);
    expect(await discoverNewTokens(deps)).toBeNull();
  } finally {
    await other.query('ROLLBACK');
    other.release();
  }
  expect(await discoverNewTokens(deps)).toMatchObject({ started: 1 });
  expect(warnings).toEqual([]);
});

test('with the trigger: a token the registry inserts gets its workflow within seconds, a revoked one is cancelled; last_used_at notifies nothing', async () => {
  // The DBA adds the trigger with --trigger (twice: safe to run again).
  dbaRuns(registrySqlOutput('--trigger'));
  // Its function is the DBA's, in a schema the service's role does not own: the role can drop neither it nor the triggers.
  const { rows: fn } = await registry.query<{ schema: string; owner: string; schemaOwner: string }>(
    `SELECT n.nspname AS schema, pg_get_userbyid(p.proowner) AS owner, pg_get_userbyid(n.nspowner) AS "schemaOwner"
       FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE t.tgrelid = 'public.api_tokens'::regclass AND t.tgname LIKE 'token_expiry_%'`,
  );
  expect(fn).toHaveLength(2);
  for (const row of fn) {
    expect(row.schema).toBe('public');
    expect([row.owner, row.schemaOwner]).not.toContain(role);
  }
  for (const sql of [
    'DROP FUNCTION public.token_expiry_notify_token_change() CASCADE',
    'DROP TRIGGER token_expiry_created ON api_tokens',
    'ALTER TABLE api_tokens DISABLE TRIGGER token_expiry_revoked',
  ]) {
    await expect(service.query(sql)).rejects.toThrow(/must be owner|permission denied/);
  }
  await expect(service.query("SELECT count(*) FROM pg_proc WHERE proname LIKE '%notify_token_change' AND pronamespace = 'token_expiry'::regnamespace"))
    .resolves.toMatchObject({ rows: [{ count: '0' }] });
  // A trigger schema the role owns is refused, by the CLI for the service's own schema and by the SQL for any other.
  expect(() => registrySqlOutput('--trigger', '--trigger-schema', 'token_expiry')).toThrow(/service's own schema/);
  await registry.query(`CREATE SCHEMA IF NOT EXISTS token_expiry_roles_own AUTHORIZATION ${role}`);
  try {
    expect(() => dbaRuns(registrySqlOutput('--trigger', '--trigger-schema', 'token_expiry_roles_own'))).toThrow(/could drop the trigger function/);
  } finally {
    await registry.query('DROP SCHEMA token_expiry_roles_own CASCADE');
  }
  await createLoginRole(appRole);
  await registry.query(`GRANT SELECT, INSERT, UPDATE ON api_tokens TO ${appRole}; GRANT USAGE ON SEQUENCE api_tokens_id_seq TO ${appRole}`);
  const app = createPool(urlFor(appRole), 2);
  // Discovery's passes off: only the trigger can start these.
  const cfg = system.config({ REGISTRY_SCHEMA: 'crates-io', TOKEN_DISCOVERY_INTERVAL: '0', DATABASE_URL: urlFor(role) });
  const discovery = runTokenDiscovery({ registry: registryAdapter(cfg), db: service, client: system.env.client, config: cfg, log: discoveryLog });
  try {
    await eventually('the listener is connected', async () => {
      const { rows } = await registry.query(
        `SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND usename = $2 AND query = $3`,
        [database, role, `LISTEN ${TOKEN_CHANGE_CHANNEL}`],
      );
      return rows.length === 1;
    });
    await system.withWorker(
      cfg,
      async () => {
        const id = await registryInsertsToken(FERRIS, 30, app);
        await eventually('the inserted token has its workflow', async () => (await executionOf(id)) === 'RUNNING', { timeoutMs: 10_000 });

        // Every request updates last_used_at: that must not wake anything. The next insert is the only notice.
        const heard: string[] = [];
        const probe = await registry.connect();
        try {
          probe.on('notification', (n) => heard.push(n.payload ?? ''));
          await probe.query(`LISTEN ${TOKEN_CHANGE_CHANNEL}`);
          await app.query('UPDATE api_tokens SET last_used_at = now() WHERE id = $1', [id]);
          const next = await registryInsertsToken(FERRIS, 30, app);
          await eventually('the insert is heard', () => heard.includes(next));
          expect(heard).toEqual([next]);
        } finally {
          await probe.query(`UNLISTEN ${TOKEN_CHANGE_CHANNEL}`);
          probe.release();
        }

        await app.query('UPDATE api_tokens SET revoked = true WHERE id = $1', [id]);
        await eventually('the revoked token\'s workflow is cancelled', async () => (await executionOf(id)) === 'CANCELLED', {
          timeoutMs: 10_000,
        });
      },
      { db: service },
    );
  } finally {
    await discovery.stop();
    await app.end();
    await registry.query(`REVOKE ALL ON api_tokens FROM ${appRole}; REVOKE ALL ON SEQUENCE api_tokens_id_seq FROM ${appRole}`);
  }
  expect(system.postmark.sent).toEqual([]);
  expect(warnings).toEqual([]);
});
