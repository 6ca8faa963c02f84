// A token's workflow starts with a delay until its first reminder (EXPIRY_START_DELAY): nothing runs on
// the server while it sleeps. What a user or ops still see during that delay, on a real dev server (the
// time-skipping server does not model a start delay the same way) with the real activities.
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import type { Config } from '../src/config';
import { listNotifications } from '../src/db/notifications';
import type { UserRow } from '../src/registry/adapter';
import { builtinRegistry, insertUser } from '../src/registry/builtin';
import { firstReminderDue, startTokenExpiryWorkflow, tokenExpiryInput } from '../src/tokenExpiry/client';
import { searchAttributes, statusQuery, tokenExpiryWorkflowId } from '../src/tokenExpiry/contract';
import { warningOffsetMs } from '../src/tokenExpiry/spread';
import { createTokenService, type TokenService } from '../src/tokens/service';
import type { FakePostmark } from '../scripts/devtools/fakePostmark';
import type { TestDatabase } from './helpers/database';
import { startDevStack, type DevStack } from './helpers/devStack';
import { eventually } from './helpers/poll';
import type { tokenExpiryWorkflow } from '../workflows/tokenExpiry';
import { TEST_INSTANCE } from './helpers/database';
import { registryAdapter } from '../src/registry';

const SECOND = 1_000;
const HOUR = 3_600_000;

let stack: DevStack;
let database: TestDatabase;
let postmark: FakePostmark;
let client: Client;
let config: Config;
let tokens: TokenService;
let user: UserRow & { email: string };

beforeAll(async () => {
  // Reminders in seconds, so that one falls due within the test: 5 s before expiry, and the expired notice.
  stack = await startDevStack(`start-delay-${process.pid}`, { EXPIRY_REMINDERS: '5s' });
  ({ database, postmark, client, config } = stack);
  tokens = createTokenService({ registry: registryAdapter(config), db: database.pool, temporal: async () => client, config });
  const email = 'delay@example.com';
  user = { ...(await insertUser(database.pool, { login: 'delay', email, verified: true })), email };
}, 120_000);

afterAll(() => stack?.stop(), 60_000);

function create(expiresInMs: number) {
  return tokens.create(user, { name: 'ci', expiresAt: new Date(Date.now() + expiresInMs), crateScopes: null, endpointScopes: null });
}

async function historyEvents(tokenId: string): Promise<string[]> {
  const { events } = await client.workflow.getHandle(tokenExpiryWorkflowId(tokenId, TEST_INSTANCE)).fetchHistory();
  return (events ?? []).map((event) => Object.keys(event).find((key) => key.endsWith('EventAttributes')) ?? '?');
}

test('a waiting token: no workflow task runs, yet its status, search attributes and a second start are truthful', async () => {
  const created = await create(2 * HOUR);
  const id = created.token.id;
  const handle = client.workflow.getHandle(tokenExpiryWorkflowId(id, TEST_INSTANCE));
  const due = firstReminderDue(tokenExpiryInput(created.token, config))!;
  expect(due.getTime()).toBe(created.token.expiredAt!.getTime() - 5 * SECOND - warningOffsetMs(id, 5 * SECOND, config.EXPIRY_SPREAD));

  // The server holds the start and nothing else: the first task waits for the reminder.
  expect(await historyEvents(id)).toEqual(['workflowExecutionStartedEventAttributes']);
  await expect(handle.query(statusQuery)).rejects.toThrow(); // "workflow task not scheduled yet"

  // `tokens status` and the API's expiry view answer from the start input instead of going blank.
  const { workflow } = await tokens.status(id);
  expect(workflow?.execution).toBe('RUNNING');
  expect(workflow?.status).toMatchObject({ tokenId: id, state: 'waiting', nextReminder: '5s', nextDueAt: due.toISOString() });
  expect(workflow?.status?.reminders.map((r) => [r.key, r.dueAt, r.outcome])).toEqual([
    ['5s', due.toISOString(), undefined],
    ['expired', created.token.expiredAt!.toISOString(), undefined],
  ]);

  // The Temporal UI and `workflow list` show it waiting, with its next reminder.
  const attributes = (await handle.describe()).typedSearchAttributes;
  expect(attributes.get(searchAttributes.state)).toBe('waiting');
  expect(attributes.get(searchAttributes.nextReminderAt)?.toISOString()).toBe(due.toISOString());

  // The sweep or a backfill starting it again (USE_EXISTING) finds the waiting run and leaves it be.
  const runId = (await handle.describe()).runId;
  await startTokenExpiryWorkflow(client, created.token, config);
  expect((await handle.describe()).runId).toBe(runId);
  expect(await historyEvents(id)).toEqual(['workflowExecutionStartedEventAttributes']);
});

test('revoked while waiting: the workflow ends Cancelled at once, nothing is sent, and its status reads', async () => {
  const created = await create(2 * HOUR);
  const id = created.token.id;
  await tokens.revoke(id);

  const err = await client.workflow.getHandle(tokenExpiryWorkflowId(id, TEST_INSTANCE)).result().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
  expect(postmark.sent.filter((m) => m.Metadata.token_id === id)).toEqual([]);
  expect(await listNotifications(database.pool, id)).toEqual([]);
  const { workflow } = await tokens.status(id);
  expect(workflow?.execution).toBe('CANCELLED');
  expect(workflow?.status).toMatchObject({ state: 'cancelled', nextReminder: null });
});

test('terminated while waiting: it closes, and its status says so', async () => {
  const created = await create(2 * HOUR);
  const handle = client.workflow.getHandle(tokenExpiryWorkflowId(created.token.id, TEST_INSTANCE));
  await handle.terminate('by hand');
  expect((await handle.describe()).status.name).toBe('TERMINATED');
  expect((await tokens.status(created.token.id)).workflow).toMatchObject({ execution: 'TERMINATED', status: null });
});

test('when the delay ends the reminder goes out on time, once, and the run goes on to the expired notice', async () => {
  const created = await create(9 * SECOND);
  const id = created.token.id;
  const due = firstReminderDue(tokenExpiryInput(created.token, config))!;
  expect(await historyEvents(id)).toEqual(['workflowExecutionStartedEventAttributes']);

  const result = await client.workflow.getHandle<typeof tokenExpiryWorkflow>(tokenExpiryWorkflowId(id, TEST_INSTANCE)).result();
  expect(result.reminders.map((r) => [r.key, r.outcome])).toEqual([
    ['5s', 'sent'],
    ['expired', 'sent'],
  ]);
  const mail = postmark.sent.filter((m) => m.Metadata.token_id === id);
  expect(mail.map((m) => m.Metadata.reminder)).toEqual(['5s', 'expired']);
  expect(mail[0]!.receivedAt.getTime()).toBeGreaterThanOrEqual(due.getTime());
}, 60_000);

test('a token whose reminder is already due (a late backfill) starts at once and is sent', async () => {
  // Made an hour ago, expiring in 3 s: its 5 s warning is past due when the backfill finds it.
  const { rows } = await database.pool.query<{ id: string }>(
    `INSERT INTO api_tokens (user_id, token, name, created_at, expired_at)
     VALUES ($1, 'late-backfill', 'legacy', now() - interval '1 hour', now() + interval '3 seconds') RETURNING id::text`,
    [user.id],
  );
  const token = (await builtinRegistry.findToken(database.pool, rows[0]!.id))!;
  await startTokenExpiryWorkflow(client, token, config);
  await eventually('the late warning sent', () => postmark.sent.some((m) => m.Metadata.token_id === token.id && m.Metadata.reminder === '5s'), {
    timeoutMs: 30_000,
  });
  expect(await historyEvents(token.id)).toContain('workflowTaskStartedEventAttributes');
});
