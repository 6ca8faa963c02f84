import { createHash } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import type { Client } from '@temporalio/client';
import { createApiServer, type ApiDeps } from '../src/api/server';
import type { Config } from '../src/config';
import { tokenExpiryWorkflowId } from '../src/tokenExpiry/contract';
import { createPool } from '../src/db/pool';
import { JsonLogger } from '../src/log';
import { createTokenService } from '../src/tokens/service';
import { warningOffsetMs } from '../src/tokenExpiry/spread';
import { uploadUntilClosed } from './helpers/rawHttp';
import { TestSystem } from './helpers/system';
import { TEST_INSTANCE } from './helpers/database';
import { registryAdapter } from '../src/registry';

const DAY = 86_400_000;
const SERVICE_TOKEN = 'registry-service-token-7f3a9c1e';
const system = TestSystem.use();

let config: Config;
let logLines: string[];
let base: string;

function listen(overrides: Partial<ApiDeps> = {}): Promise<string> {
  return system.api(config, { logger: new JsonLogger('INFO', (line) => logLines.push(line)), ...overrides });
}

beforeEach(async () => {
  config = system.config({ API_AUTH_TOKEN: SERVICE_TOKEN });
  logLines = [];
  base = await listen();
});


interface Call {
  user?: string;
  /** The Authorization header; null sends none. */
  auth?: string | null;
  body?: unknown;
  /** Sent as is, instead of JSON.stringify(body). */
  raw?: string;
  contentType?: string;
  base?: string;
}

async function api(method: string, path: string, call: Call = {}) {
  const headers: Record<string, string> = {};
  if (call.auth !== null) headers.authorization = call.auth ?? `Bearer ${SERVICE_TOKEN}`;
  if (call.user !== undefined) headers['x-registry-user'] = call.user;
  const body = call.raw ?? (call.body === undefined ? undefined : JSON.stringify(call.body));
  if (body !== undefined) headers['content-type'] = call.contentType ?? 'application/json';
  const res = await fetch(`${call.base ?? base}${path}`, { method, headers, body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: (text ? JSON.parse(text) : undefined) as any };
}

const newUser = async (): Promise<string> => (await system.newUser()).login;

function apiToken(overrides: Record<string, unknown> = {}) {
  return {
    api_token: {
      name: 'publish from CI',
      crate_scopes: ['serde', 'serde_*'],
      endpoint_scopes: ['publish-update'],
      expired_at: new Date(Date.now() + 30 * DAY).toISOString(),
      ...overrides,
    },
  };
}

async function createToken(login: string, overrides: Record<string, unknown> = {}) {
  const created = await api('PUT', '/api/v1/me/tokens', { user: login, body: apiToken(overrides) });
  expect(created.status).toBe(200);
  return created.body as { api_token: { id: number; token: string }; expiry: { workflow_id: string | null } };
}

async function executionStatus(tokenId: number | string): Promise<string> {
  const handle = system.env.client.workflow.getHandle(tokenExpiryWorkflowId(String(tokenId), TEST_INSTANCE));
  return (await handle.describe()).status.name;
}

/** Every row of every table, so that "nothing was written" can be checked exactly. */
async function snapshot(): Promise<string> {
  const dump: Record<string, unknown[]> = {};
  for (const table of ['users', 'emails', 'api_tokens', 'expiry_notifications']) {
    dump[table] = (await system.db.query(`SELECT * FROM ${table} ORDER BY id`)).rows;
  }
  return JSON.stringify(dump);
}

const errorShape = { errors: [{ detail: expect.any(String) }] };

describe('auth: the registry backend\'s service token, and the user it names', () => {
  test('no token, a wrong one, or another scheme: 401; the right one: 200', async () => {
    const login = await newUser();

    const missing = await api('GET', '/api/v1/me/tokens', { user: login, auth: null });
    expect(missing.status).toBe(401);
    expect(missing.body).toEqual({ errors: [{ detail: expect.stringContaining('service token') }] });
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/);

    for (const auth of [`Bearer ${SERVICE_TOKEN}x`, 'Bearer short', `Basic ${SERVICE_TOKEN}`, SERVICE_TOKEN, 'Bearer ']) {
      const wrong = await api('GET', '/api/v1/me/tokens', { user: login, auth });
      expect(wrong.status).toBe(401);
      expect(wrong.body).toEqual(errorShape);
    }

    const right = await api('GET', '/api/v1/me/tokens', { user: login, auth: `bearer ${SERVICE_TOKEN}` });
    expect(right.status).toBe(200);
    expect(right.body).toEqual({ api_tokens: [] });
  });

  test('a write without the token is refused before anything is read or written', async () => {
    const login = await newUser();
    const before = await snapshot();

    const refused = await api('PUT', '/api/v1/me/tokens', { user: login, auth: 'Bearer nope', body: apiToken() });

    expect(refused.status).toBe(401);
    expect(await snapshot()).toBe(before);
  });

  test('no X-Registry-User is a 400; an unknown user is a 404', async () => {
    const noUser = await api('GET', '/api/v1/me/tokens');
    expect(noUser.status).toBe(400);
    expect(noUser.body.errors[0].detail).toContain('X-Registry-User: is required');

    const unknown = await api('GET', '/api/v1/me/tokens', { user: 'nobody' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.errors[0].detail).toBe('no user with login "nobody"');
  });

  test('without API_AUTH_TOKEN the API refuses to start, naming the variable', () => {
    const unset = { ...config, API_AUTH_TOKEN: undefined };
    expect(() =>
      createApiServer({
        tokens: system.tokens(config), preferences: system.preferences(config), calendar: system.calendar(config), webhooks: system.webhooks(config), db: system.db, temporal: async () => system.env.client, config: unset }),
    ).toThrow(/^API_AUTH_TOKEN: is required/);
  });
});

test('create: crates.io\'s shape, the secret once and stored only as its hash, and a RUNNING workflow', async () => {
  const login = await newUser();
  const expiredAt = new Date(Date.now() + 30 * DAY);

  const created = await api('PUT', '/api/v1/me/tokens', {
    user: login,
    body: apiToken({ expired_at: expiredAt.toISOString() }),
  });

  expect(created.status).toBe(200);
  const { api_token: token, expiry } = created.body;
  expect(token).toEqual({
    id: expect.any(Number),
    name: 'publish from CI',
    created_at: expect.any(String),
    last_used_at: null,
    expired_at: expiredAt.toISOString(),
    crate_scopes: ['serde', 'serde_*'],
    endpoint_scopes: ['publish-update'],
    revoked: false,
    token: expect.stringMatching(/^cio[A-Za-z0-9]{32}$/),
  });
  expect(expiry).toEqual({ workflow_id: tokenExpiryWorkflowId(String(token.id), TEST_INSTANCE) });
  expect(await executionStatus(token.id)).toBe('RUNNING');

  const { rows } = await system.db.query(`SELECT encode(token, 'hex') AS hash FROM api_tokens WHERE id = $1`, [token.id]);
  expect(rows[0].hash).toBe(createHash('sha256').update(token.token).digest('hex'));
  expect(await snapshot()).not.toContain(token.token);

  const shown = await api('GET', `/api/v1/me/tokens/${token.id}`, { user: login });
  expect(shown.status).toBe(200);
  const { token: _secret, ...withoutSecret } = token;
  expect(shown.body).toEqual({ api_token: withoutSecret });
  expect(shown.text).not.toContain(token.token);
  expect(shown.headers.get('cache-control')).toBe('no-store');

  const listed = await api('GET', '/api/v1/me/tokens', { user: login });
  expect(listed.body).toEqual({ api_tokens: [withoutSecret] });
});

test('a token without an expiry, with scopes left out: no workflow', async () => {
  const login = await newUser();

  const created = await api('PUT', '/api/v1/me/tokens', { user: login, body: { api_token: { name: 'laptop' } } });

  expect(created.status).toBe(200);
  expect(created.body.api_token).toMatchObject({ name: 'laptop', expired_at: null, crate_scopes: null, endpoint_scopes: null });
  expect(created.body.expiry).toEqual({ workflow_id: null });
});

test('expiry: the workflow\'s state, its next reminder and when it is due', async () => {
  const login = await newUser();
  const expiredAt = new Date(Date.now() + 30 * DAY);
  const { api_token: token } = await createToken(login, { expired_at: expiredAt.toISOString() });

  // The workflow answers its status query only while a worker runs it.
  const status = await system.withWorker(config, () => api('GET', `/api/v1/me/tokens/${token.id}/expiry`, { user: login }));

  expect(status.status).toBe(200);
  expect(status.body).toMatchObject({
    api_token: { id: token.id, revoked: false },
    workflow: {
      workflow_id: tokenExpiryWorkflowId(String(token.id), TEST_INSTANCE),
      execution: 'RUNNING',
      state: 'waiting',
      next_reminder: '7d',
      // Up to EXPIRY_SPREAD early, by the token's own offset.
      next_due_at: new Date(expiredAt.getTime() - 7 * DAY - warningOffsetMs(String(token.id), 7 * DAY, config.EXPIRY_SPREAD)).toISOString(),
    },
    notifications: [],
  });
  expect(status.body.workflow.reminders.map((r: { key: string }) => r.key)).toEqual(['7d', '1d', 'expired']);
});

test('revoke: 204, the workflow is cancelled once a worker runs it, and revoking again is harmless', async () => {
  const login = await newUser();
  const { api_token: token, expiry } = await createToken(login);

  const revoked = await api('DELETE', `/api/v1/me/tokens/${token.id}`, { user: login });

  expect(revoked.status).toBe(204);
  expect(revoked.text).toBe('');
  const handle = system.env.client.workflow.getHandle(expiry.workflow_id as string);
  const status = await system.withWorker(config, async () => {
    await handle.result().catch(() => undefined);
    return api('GET', `/api/v1/me/tokens/${token.id}/expiry`, { user: login });
  });
  expect(await executionStatus(token.id)).toBe('CANCELLED');
  expect(status.body.workflow).toMatchObject({ execution: 'CANCELLED' });
  expect(status.body.api_token.revoked).toBe(true);

  const before = await snapshot();
  const again = await api('DELETE', `/api/v1/me/tokens/${token.id}`, { user: login });
  expect(again.status).toBe(204);
  expect(await snapshot()).toBe(before);

  expect((await api('GET', '/api/v1/me/tokens', { user: login })).body).toEqual({ api_tokens: [] });
  const shown = await api('GET', `/api/v1/me/tokens/${token.id}`, { user: login });
  expect(shown.body.api_token.revoked).toBe(true);
  const rotate = await api('POST', `/api/v1/me/tokens/${token.id}/rotate`, { user: login });
  expect(rotate.status).toBe(409);
  expect(rotate.body.errors[0].detail).toMatch(/is revoked: duplicate it instead/);
});

test('duplicate and rotate: a new secret and workflow; rotate revokes the original', async () => {
  const login = await newUser();
  const { api_token: original } = await createToken(login);

  const copy = await api('POST', `/api/v1/me/tokens/${original.id}/duplicate`, { user: login });
  expect(copy.status).toBe(200);
  expect(copy.body).toMatchObject({
    api_token: { name: 'publish from CI', crate_scopes: ['serde', 'serde_*'], revoked: false },
    from: { id: original.id },
  });
  expect(copy.body.api_token.token).not.toBe(original.token);
  expect(await executionStatus(copy.body.api_token.id)).toBe('RUNNING');

  // An empty JSON object is accepted as "no parameters".
  const rotated = await api('POST', `/api/v1/me/tokens/${original.id}/rotate`, { user: login, body: {} });
  expect(rotated.status).toBe(200);
  expect(rotated.body).toMatchObject({
    api_token: { name: 'publish from CI', revoked: false },
    expiry: { workflow_id: tokenExpiryWorkflowId(String(rotated.body.api_token.id), TEST_INSTANCE) },
    from: { id: original.id, revoked: true, expiry: { workflow_id: tokenExpiryWorkflowId(String(original.id), TEST_INSTANCE) } },
  });
  expect(await executionStatus(rotated.body.api_token.id)).toBe('RUNNING');
  const listed = await api('GET', '/api/v1/me/tokens', { user: login });
  expect(listed.body.api_tokens.map((t: { id: number }) => t.id)).toEqual([rotated.body.api_token.id, copy.body.api_token.id]);
});

test('another user\'s token is a 404 for every endpoint, and nothing changes', async () => {
  const owner = await newUser();
  const intruder = await newUser();
  const { api_token: token } = await createToken(owner);
  const before = await snapshot();

  for (const [method, suffix] of [
    ['GET', ''],
    ['DELETE', ''],
    ['POST', '/duplicate'],
    ['POST', '/rotate'],
    ['GET', '/expiry'],
  ] as const) {
    const reply = await api(method, `/api/v1/me/tokens/${token.id}${suffix}`, { user: intruder });
    expect([method, suffix, reply.status]).toEqual([method, suffix, 404]);
    expect(reply.body).toEqual({ errors: [{ detail: `no token with id "${token.id}"` }] });
  }

  expect(await snapshot()).toBe(before);
  expect(await executionStatus(token.id)).toBe('RUNNING');
  expect((await api('GET', '/api/v1/me/tokens', { user: intruder })).body).toEqual({ api_tokens: [] });
});

test.each(['-1', '0', 'abc', '1.5', '99999999999999999999999', '%20'])('a malformed id %j is a 404', async (id) => {
  const login = await newUser();
  for (const method of ['GET', 'DELETE']) {
    const reply = await api(method, `/api/v1/me/tokens/${id}`, { user: login });
    expect(reply.status).toBe(404);
    expect(reply.body).toEqual(errorShape);
  }
});

describe('bad input: 400 or 422 naming the problem, and the database unchanged', () => {
  const future = () => new Date(Date.now() + 30 * DAY).toISOString();
  type Case = [string, Call & { method?: string; path?: string }, number, string | RegExp];
  const cases: Case[] = [
    ['broken JSON', { raw: '{"api_token": {"name": "x"' }, 400, 'not valid JSON'],
    ['not JSON at all', { raw: 'name=x', contentType: 'application/x-www-form-urlencoded' }, 400, 'Content-Type must be application/json'],
    ['JSON sent as text/plain', { raw: JSON.stringify(apiToken()), contentType: 'text/plain' }, 400, 'Content-Type must be application/json'],
    ['a body over 64 KiB', { body: apiToken({ name: 'x'.repeat(70_000) }) }, 400, 'larger than 64 KiB'],
    ['no body', {}, 400, 'a JSON request body is required'],
    ['an empty object', { body: {} }, 422, 'api_token: is required'],
    ['a JSON array', { body: [apiToken()] }, 422, 'body: Invalid input: expected object'],
    ['an unknown top-level field', { body: { ...apiToken(), admin: true } }, 422, 'body: unknown field "admin"'],
    ['an unknown token field', { body: apiToken({ user_id: 1 }) }, 422, 'api_token: unknown field "user_id"'],
    ['a missing name', { body: { api_token: { expired_at: null } } }, 422, 'api_token.name: is required'],
    ['an empty name', { body: apiToken({ name: '   ' }) }, 422, 'api_token.name: must not be empty'],
    ['a name with a line break', { body: apiToken({ name: 'a\r\nBcc: x@example.com' }) }, 422, 'api_token.name: must not contain control characters'],
    ['a bad crate scope', { body: apiToken({ crate_scopes: ['serde', 'bad scope'] }) }, 422, 'api_token.crate_scopes[1]: must be a crate name'],
    ['a bad endpoint scope', { body: apiToken({ endpoint_scopes: ['admin'] }) }, 422, 'api_token.endpoint_scopes[0]: must be one of publish-new'],
    ['an expiry without a zone', { body: apiToken({ expired_at: '2030-01-01T00:00:00' }) }, 422, 'api_token.expired_at: must be an RFC 3339 time'],
    ['an expiry as a number', { body: apiToken({ expired_at: Date.now() + DAY }) }, 422, 'api_token.expired_at: must be an RFC 3339 time'],
    ['an expiry in the past', { body: apiToken({ expired_at: '2020-01-01T00:00:00Z' }) }, 422, 'api_token.expired_at: 2020-01-01T00:00:00.000Z is in the past'],
    ['an expiry in 20 years', { body: apiToken({ expired_at: new Date(Date.now() + 20 * 365 * DAY).toISOString() }) }, 422, 'api_token.expired_at: must be within 10 years'],
    ['several problems at once', { body: apiToken({ name: '', endpoint_scopes: ['admin'] }) }, 422, /api_token\.name.*api_token\.endpoint_scopes/s],
    ['an unknown user', { user: 'nobody', body: apiToken({ expired_at: future() }) }, 404, 'no user with login "nobody"'],
    ['a body on a DELETE', { method: 'DELETE', path: '/api/v1/me/tokens/1', body: {} }, 400, 'takes no request body'],
    ['a bad expired_days', { method: 'GET', path: '/api/v1/me/tokens?expired_days=soon' }, 400, 'expired_days: must be a whole number of days'],
  ];

  test.each(cases)('%s', async (_name, call, status, detail) => {
    const login = await newUser();
    const before = await snapshot();

    const reply = await api(call.method ?? 'PUT', call.path ?? '/api/v1/me/tokens', { user: login, ...call });

    expect(reply.status).toBe(status);
    expect(reply.body.errors.length).toBeGreaterThan(0);
    expect(reply.body.errors.map((e: { detail: string }) => e.detail).join('\n')).toMatch(
      typeof detail === 'string' ? new RegExp(detail.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : detail,
    );
    expect(await snapshot()).toBe(before);
  });

  test('duplicate with a body that is not empty: 422, nothing written', async () => {
    const login = await newUser();
    const { api_token: token } = await createToken(login);
    const before = await snapshot();

    const reply = await api('POST', `/api/v1/me/tokens/${token.id}/duplicate`, { user: login, body: { name: 'other' } });

    expect(reply.status).toBe(422);
    expect(reply.body.errors[0].detail).toBe('body: unknown field "name"');
    expect(await snapshot()).toBe(before);
  });
});

test('unknown routes are 404, wrong methods 405 with Allow', async () => {
  const login = await newUser();

  const unknown = await api('GET', '/api/v1/me/secrets', { user: login });
  expect(unknown.status).toBe(404);
  expect(unknown.body).toEqual(errorShape);

  const wrongMethod = await api('POST', '/api/v1/me/tokens', { user: login, body: apiToken() });
  expect(wrongMethod.status).toBe(405);
  expect(wrongMethod.headers.get('allow')).toBe('GET, PUT');
  expect(wrongMethod.body).toEqual(errorShape);

  expect((await api('PATCH', '/api/v1/me/tokens/1', { user: login })).status).toBe(405);
});

/**
 * Sends a request's head announcing a 1 GiB body, then body bytes as fast as the server takes them (or, with
 * trickle, a byte a second), and reports the reply's head, how much of the body the server took, and when it
 * hung up.
 */
async function refusedUpload(method: string, path: string, headers: string[], trickle = false) {
  const { port } = new URL(base);
  const socket = net.connect({ host: '127.0.0.1', port: Number(port) });
  await once(socket, 'connect');
  socket.write([`${method} ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, ...headers, `Content-Length: ${2 ** 30}`, '', ''].join('\r\n'));
  const started = Date.now();
  let reply = '';
  let sent = 0;
  let open = true;
  socket.on('data', (data: Buffer) => (reply += data.toString('latin1')));
  socket.on('error', () => undefined);
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now() - started)));
  void closed.then(() => (open = false));
  const piece = Buffer.alloc(trickle ? 1 : 64 * 1024, 'x');
  while (open && Date.now() - started < 10_000) {
    // With the write side full, wait for the server to read (or to hang up) before sending more.
    const flowing = socket.write(piece);
    sent += piece.length;
    if (!flowing) await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), closed]);
    if (trickle) await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
  const closedAfterMs = open ? null : await closed;
  socket.destroy();
  return { head: reply.split('\r\n\r\n')[0] ?? '', sent, closedAfterMs };
}

describe('a refused request\'s body is not read: the reply says Connection: close and the socket is closed', () => {
  const refusals: [string, string, string, string[]][] = [
    ['401 (no service token)', 'PUT', '/api/v1/me/tokens', ['X-Registry-User: alice', 'Content-Type: application/json']],
    ['401 (wrong service token)', 'POST', '/api/v1/me/tokens/1/rotate', ['Authorization: Bearer nope', 'Content-Type: application/json']],
    ['404', 'POST', '/api/v1/nothing-here', ['Content-Type: application/json']],
    ['405', 'POST', '/api/v1/me/tokens', ['Content-Type: application/json']],
    ['400 (wrong content type)', 'PUT', '/api/v1/me/tokens', [`Authorization: Bearer ${SERVICE_TOKEN}`, 'X-Registry-User: alice', 'Content-Type: text/plain']],
  ];
  test.each(refusals)('%s, with a 1 GiB body sent as fast as it is taken', async (_name, method, path, headers) => {
    const { head, sent, closedAfterMs } = await refusedUpload(method, path, headers);
    expect(head).toMatch(/^HTTP\/1\.1 4\d\d /);
    expect(head).toMatch(/\r\nConnection: close\r\n/i);
    expect(closedAfterMs).not.toBeNull();
    expect(closedAfterMs).toBeLessThan(2_000);
    // What the kernel's buffers take before the server hangs up, not the gigabyte.
    expect(sent).toBeLessThan(64 * 1024 * 1024);
  });

  test('401 with a body trickled a byte a second: closed at once, not held until requestTimeout', async () => {
    const { head, closedAfterMs } = await refusedUpload('PUT', '/api/v1/me/tokens', ['Content-Type: application/json'], true);
    expect(head).toMatch(/^HTTP\/1\.1 401 /);
    expect(closedAfterMs).not.toBeNull();
    expect(closedAfterMs).toBeLessThan(3_000);
  });
});

test('a refused upload sent as fast as the socket takes it still gets its answer (the close is not a reset that loses the reply)', async () => {
  for (let i = 0; i < 5; i++) {
    const outcome = await uploadUntilClosed(
      base,
      { method: 'PUT', path: '/api/v1/me/tokens', headers: [['Content-Type', 'application/json'], ['X-Registry-User', 'alice']], declaredBytes: 2 ** 30, chunkBytes: 64 * 1024, intervalMs: 0 },
      10_000,
    );
    expect(outcome).toMatchObject({ status: 401, closedByServer: true });
  }
});

test('GET /api/openapi.json: OpenAPI 3.1 listing every path, with the request schemas the API validates with', async () => {
  const reply = await api('GET', '/api/openapi.json', { auth: null });

  expect(reply.status).toBe(200);
  const doc = reply.body;
  expect(doc.openapi).toBe('3.1.0');
  expect(Object.keys(doc.paths).sort()).toEqual([
    '/api/openapi.json',
    '/api/v1/expiry/forecast',
    '/api/v1/expiry/tokens/{id}',
    '/api/v1/me/expiry/calendar',
    '/api/v1/me/expiry/preferences',
    '/api/v1/me/expiry/webhook',
    '/api/v1/me/expiry/webhook/secret',
    '/api/v1/me/tokens',
    '/api/v1/me/tokens/{id}',
    '/api/v1/me/tokens/{id}/duplicate',
    '/api/v1/me/tokens/{id}/expiry',
    '/api/v1/me/tokens/{id}/rotate',
    '/calendar/{feed}',
    '/health',
    '/unsubscribe',
  ]);
  expect(Object.keys(doc.paths['/api/v1/me/tokens']).sort()).toEqual(['get', 'put']);
  expect(Object.keys(doc.paths['/api/v1/me/tokens/{id}']).sort()).toEqual(['delete', 'get']);
  const newToken = doc.components.schemas.NewApiToken;
  expect(newToken).toMatchObject({ type: 'object', required: ['name'], additionalProperties: false });
  expect(newToken.properties.endpoint_scopes.anyOf[0].items.enum).toEqual(['publish-new', 'publish-update', 'yank', 'change-owners']);
  expect(doc.paths['/api/v1/me/tokens'].put.responses['422']).toBeDefined();
  // Every reference points at a component that exists.
  const refs = [...reply.text.matchAll(/"\$ref":"#\/components\/(schemas|parameters)\/([^"]+)"/g)];
  expect(refs.length).toBeGreaterThan(10);
  for (const [, kind, name] of refs) expect(doc.components[kind as string][name as string]).toBeDefined();
});

describe('GET /health', () => {
  test('200 when the database and Temporal answer', async () => {
    const reply = await api('GET', '/health', { auth: null });
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({ database: 'ok', temporal: 'ok' });
  });

  test('503 saying only which is unavailable; the reason goes to the log, never to the caller', async () => {
    const deadDb = createPool('postgresql://postgres:secret-pw@127.0.0.1:9/nothing', 1);
    try {
      const broken = await listen({
        db: deadDb,
        temporal: async () => {
          throw new Error('connect ECONNREFUSED temporal.internal:7233');
        },
      });
      const reply = await api('GET', '/health', { auth: null, base: broken });
      expect(reply.status).toBe(503);
      expect(reply.body).toEqual({
        database: 'unavailable',
        temporal: 'unavailable',
        errors: [{ detail: 'database: unavailable' }, { detail: 'temporal: unavailable' }],
      });
      expect(reply.text).not.toMatch(/ECONNREFUSED|temporal\.internal|127\.0\.0\.1|secret-pw/);
      const line = JSON.parse(logLines.find((l) => l.includes('"route":"/health"'))!);
      expect(line).toMatchObject({ status: 503, databaseError: expect.stringMatching(/ECONNREFUSED/), temporalError: expect.stringContaining('temporal.internal') });
    } finally {
      await deadDb.end();
    }
  });
});

test('Temporal down at create: the token is made, and the reply warns that the sweep will schedule its reminders', async () => {
  const login = await newUser();
  const temporal = async (): Promise<Client> => {
    throw new Error('connection refused');
  };
  const offline = await listen({ temporal, tokens: createTokenService({ registry: registryAdapter(config), db: system.db, temporal, config }) });

  const created = await api('PUT', '/api/v1/me/tokens', { user: login, body: apiToken(), base: offline });

  expect(created.status).toBe(200);
  expect(created.body.expiry).toEqual({
    workflow_id: tokenExpiryWorkflowId(String(created.body.api_token.id), TEST_INSTANCE),
    warning: expect.stringMatching(/sweep will start them/),
  });
});

test('logs: one JSON line per request with the route pattern, status and token id; never a secret, the service token or an address', async () => {
  const login = await newUser();
  const { api_token: token } = await createToken(login);
  await api('POST', `/api/v1/me/tokens/${token.id}/rotate`, { user: login });
  await api('GET', '/api/v1/me/tokens', { user: login, auth: 'Bearer wrong-token' });
  await api('PUT', '/api/v1/me/tokens', { user: login, body: apiToken({ name: 'mail me at someone@example.com\r\nBcc: x' }) });

  const lines = logLines.map((line) => JSON.parse(line));
  expect(lines).toEqual([
    expect.objectContaining({ message: 'request', method: 'PUT', route: '/api/v1/me/tokens', status: 200, tokenId: String(token.id), durationMs: expect.any(Number) }),
    expect.objectContaining({ method: 'POST', route: '/api/v1/me/tokens/:id/rotate', status: 200, tokenId: String(token.id), newTokenId: expect.any(String) }),
    expect.objectContaining({ method: 'GET', route: '/api/v1/me/tokens', status: 401 }),
    expect.objectContaining({ method: 'PUT', route: '/api/v1/me/tokens', status: 422 }),
  ]);
  const all = logLines.join('\n');
  expect(all).not.toContain(token.token);
  expect(all).not.toContain(SERVICE_TOKEN);
  expect(all).not.toMatch(/Bearer|wrong-token|@/);
});
