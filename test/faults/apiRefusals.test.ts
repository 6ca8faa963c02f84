/**
 * Fault 5: callers the HTTP API must turn away. A wrong (or missing, or almost right) service token is a
 * 401 on every endpoint; a user asking for another user's token gets the very 404 a missing token gets.
 * Nothing changes: not a row, not a sequence, not a workflow. The tokens' reminders then go out as usual.
 */
import { temporal } from '@temporalio/proto';
import { tokenExpiryWorkflowId } from '../../src/tokenExpiry/contract';
import { describeChanges, snapshotDatabase } from '../helpers/dbSnapshot';
import { FaultStack, underTest, type TestToken, type TestUser } from '../helpers/faultStack';
import { rawRequest, type RawResponse } from '../helpers/rawHttp';
import { TEST_INSTANCE } from '../helpers/database';

const SECOND = 1_000;
const stack = FaultStack.use('api-refusals', { reminders: '20s,10s' });

test('a wrong service token, or another user\'s token id: refused (401/404), and nothing changes', async () => {
  await stack.startWorker();
  const api = await stack.startApi();
  const alice = await stack.addUser();
  const bob = await stack.addUser();

  const call = (method: string, path: string, opts: { user?: string; auth?: string | null; body?: unknown } = {}): Promise<RawResponse> => {
    const headers: [string, string][] = [];
    if (opts.auth !== null) headers.push(['Authorization', opts.auth ?? `Bearer ${api.serviceToken}`]);
    if (opts.user !== undefined) headers.push(['X-Registry-User', opts.user]);
    if (opts.body !== undefined) headers.push(['Content-Type', 'application/json']);
    return rawRequest(api.url, { method, path, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  };
  const newToken = (expiresInMs: number) => ({
    api_token: { name: 'publish from CI', crate_scopes: ['serde*'], expired_at: new Date(Date.now() + expiresInMs).toISOString() },
  });
  async function create(user: TestUser): Promise<TestToken> {
    // The first reminder falls due 20 s in: the refusals below take a second or two.
    const reply = await call('PUT', '/api/v1/me/tokens', { user: user.login, body: newToken(40 * SECOND) });
    expect(reply.status).toBe(200);
    const { api_token: token } = reply.json as { api_token: { id: number; token: string; created_at: string; expired_at: string } };
    const created = { id: String(token.id), secret: token.token, createdAt: new Date(token.created_at), expiresAt: new Date(token.expired_at), user };
    stack.remember(created);
    return created;
  }
  const aliceTokens = [await create(alice), await create(alice)];
  const bobToken = await create(bob);
  const tokens = [...aliceTokens, bobToken];
  await stack.waitUntilWaiting(tokens.map((t) => t.id));

  // Each token's run, and whatever reached it from outside (a cancel, signal, update or termination);
  // its own timers may fire meanwhile, which is not a change anyone made.
  const temporalState = async () =>
    Promise.all(
      tokens.map(async (t) => {
        const handle = stack.client.workflow.getHandle(tokenExpiryWorkflowId(t.id, TEST_INSTANCE));
        const { runId, status } = await handle.describe();
        const { events } = await handle.fetchHistory();
        const fromOutside = (events ?? [])
          .map((e) => String(temporal.api.enums.v1.EventType[e.eventType ?? 0]))
          .filter((type) => /CANCEL_REQUESTED|SIGNALED|UPDATE_|TERMINATED/.test(type));
        return { id: t.id, runId, status: status.name, fromOutside };
      }),
    );
  const workflowCount = async () => {
    let count = 0;
    for await (const _ of stack.client.workflow.list({ query: 'WorkflowType = "tokenExpiryWorkflow"' })) count++;
    return count;
  };
  const beforeDb = await snapshotDatabase(stack.db);
  const beforeTemporal = await temporalState();
  const beforeCount = await workflowCount();

  // Every endpoint that acts for a user, called as alice on her own token, with everything right but the service token.
  const target = aliceTokens[0]!.id;
  const endpoints: [string, string, unknown?][] = [
    ['GET', '/api/v1/me/tokens'],
    ['PUT', '/api/v1/me/tokens', newToken(30 * 86_400_000)],
    ['GET', `/api/v1/me/tokens/${target}`],
    ['DELETE', `/api/v1/me/tokens/${target}`],
    ['POST', `/api/v1/me/tokens/${target}/duplicate`],
    ['POST', `/api/v1/me/tokens/${target}/rotate`],
    ['GET', `/api/v1/me/tokens/${target}/expiry`],
  ];
  const wrongTokens: (string | null)[] = [
    null,
    '',
    'Bearer',
    'Bearer ',
    'Bearer wrong-token',
    `Bearer ${api.serviceToken}x`,
    `Bearer ${api.serviceToken.slice(0, -1)}`,
    `Bearer ${api.serviceToken.toUpperCase()}`,
    `Bearer ${api.serviceToken.replace(/.$/, (c) => (c === 'a' ? 'b' : 'a'))}`,
    `Bearer ${api.serviceToken} ${api.serviceToken}`,
    `Basic ${Buffer.from(`registry:${api.serviceToken}`).toString('base64')}`,
    `Token ${api.serviceToken}`,
    api.serviceToken,
    `Bearer ${stack.postmark.serverToken}`,
    `Bearer ${aliceTokens[0]!.secret}`,
  ];
  const unauthorized: string[] = [];
  for (const [method, path, body] of endpoints) {
    for (const auth of wrongTokens) {
      const reply = await call(method, path, { user: alice.login, auth, body });
      const errors = (reply.json as { errors?: { detail: string }[] } | undefined)?.errors;
      if (reply.status !== 401 || !reply.headers['www-authenticate']?.startsWith('Bearer') || !errors?.[0]?.detail) {
        unauthorized.push(`${method} ${path} with ${JSON.stringify(auth?.slice(0, 12))}...: ${reply.status} ${reply.body}`);
      }
    }
  }
  expect(unauthorized).toEqual([]);
  stack.note(`${endpoints.length * wrongTokens.length} calls with a wrong service token: all 401`);

  // Bob, properly authenticated, names alice's tokens: the same 404 as for a token that does not exist.
  const notFound = (id: string) => ({ errors: [{ detail: `no token with id "${id}"` }] });
  const intrusions: string[] = [];
  for (const token of aliceTokens) {
    for (const [method, suffix, body] of [
      ['GET', ''],
      ['DELETE', ''],
      ['POST', '/duplicate'],
      ['POST', '/rotate', {}],
      ['GET', '/expiry'],
    ] as [string, string, unknown?][]) {
      const reply = await call(method, `/api/v1/me/tokens/${token.id}${suffix}`, { user: bob.login, body });
      const missing = await call(method, `/api/v1/me/tokens/999999999${suffix}`, { user: bob.login, body });
      if (reply.status !== 404 || JSON.stringify(reply.json) !== JSON.stringify(notFound(token.id)) || missing.status !== 404) {
        intrusions.push(`${method} ${token.id}${suffix} as bob: ${reply.status} ${reply.body}`);
      }
    }
  }
  expect(intrusions).toEqual([]);
  stack.note(`${aliceTokens.length * 5} calls by bob on alice's tokens: all the 404 of a missing token`);
  const bobsList = await call('GET', '/api/v1/me/tokens?expired_days=99999', { user: bob.login });
  expect((bobsList.json as { api_tokens: { id: number }[] }).api_tokens.map((t) => String(t.id))).toEqual([bobToken.id]);
  // Someone the registry never heard of: 404 too, for reads and writes alike.
  for (const [method, path, body] of endpoints) {
    expect((await call(method, path, { user: 'mallory', body })).status).toBe(404);
  }

  // Nothing changed: every row and sequence, every workflow run, no new workflow.
  expect(describeChanges(beforeDb, await snapshotDatabase(stack.db))).toEqual([]);
  expect(await temporalState()).toEqual(beforeTemporal);
  expect(beforeTemporal.flatMap((t) => t.fromOutside)).toEqual([]);
  expect(await workflowCount()).toBe(beforeCount);
  stack.note('database snapshot, workflow runs and workflow count unchanged; no event from outside in any history');
  // The right token still works (the refusals were about the caller, not a broken API).
  expect((await call('GET', `/api/v1/me/tokens/${target}`, { user: alice.login })).status).toBe(200);

  await stack.waitUntilClosed(tokens.map((t) => t.id), 180_000);
  await stack.finish(tokens.map((t) => underTest(t, 'delivered')));
  // The service token is a secret too: never in a log line.
  const output = [...stack.apis, ...stack.workers].flatMap((child) => child.lines.map((l) => l.text)).join('\n');
  expect(output).not.toContain(api.serviceToken);
  expect(output).not.toMatch(/Bearer|Basic /);
}, 300_000);
