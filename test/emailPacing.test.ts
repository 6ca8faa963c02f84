/**
 * EMAIL_MAX_PER_SECOND on a real worker (the built `token-expiry worker` on a dev server): reminders of
 * several tokens fall due at the same instant, and every one of them goes out through the queued
 * activity (the only path Temporal's task-queue limit sees), spaced at the cap, each exactly once.
 */
import { tokenExpiryWorkflowId } from '../src/tokenExpiry/contract';
import { CliProcess } from './helpers/cliProcess';
import { FaultStack, underTest, type TestToken } from './helpers/faultStack';
import { eventually } from './helpers/poll';
import { TEST_INSTANCE } from './helpers/database';

const SECOND = 1_000;
const CAP_PER_SECOND = 2;
const TOKENS = 6;
// The reminder is 20 s before the expiry: a send that the cap and a loaded machine delay by more than that
// would find the token expired and be skipped, rightly, and this test is about the cap, not that rule.
const stack = FaultStack.use('email-pacing', { reminders: '20s', expiredNotice: false });

test(`EMAIL_MAX_PER_SECOND=${CAP_PER_SECOND}: sends due together take the queued path, one every 1/${CAP_PER_SECOND} s, none lost`, async () => {
  const worker = CliProcess.start('worker#paced', ['worker'], stack.env('token-expiry-worker', { EMAIL_MAX_PER_SECOND: String(CAP_PER_SECOND) }));
  stack.workers.push(worker);
  await worker.waitForLog('polling', (line) => line.message === 'Worker state changed' && line.state === 'RUNNING', 90_000);

  // One expiry for all: every reminder falls due at the same instant. The lead leaves a loaded machine time
  // to create every token before the reminder is due (one created after it is skipped, rightly).
  const expiresAt = new Date(Date.now() + 55 * SECOND);
  const tokens: TestToken[] = [];
  for (let i = 0; i < TOKENS; i++) {
    const user = await stack.addUser();
    const created = await stack.tokens.create(user, { name: 'ci', expiresAt, crateScopes: null, endpointScopes: null });
    expect(created.workflowError).toBeUndefined();
    const token = { id: created.token.id, secret: created.secret, createdAt: created.token.createdAt, expiresAt, user };
    stack.remember(token);
    tokens.push(token);
  }
  const ids = tokens.map((t) => t.id);
  await eventually('every reminder sent', async () => {
    const rows = await stack.rows(ids);
    if (rows.filter((r) => r.status === 'sent').length === TOKENS) return true;
    // Reported if the wait runs out: which reminder is where.
    throw new Error(JSON.stringify(rows.map((r) => [r.tokenId, r.status, r.attempts, r.reason, r.lastError])));
  }, {
    timeoutMs: 120_000,
    abort: () => stack.crashes()[0],
  });

  // None lost, none twice.
  for (const token of tokens) expect(stack.postmark.sent.filter((m) => m.To === token.user.email)).toHaveLength(1);
  expect((await stack.rows(ids)).map((r) => [r.status, r.attempts])).toEqual(ids.map(() => ['sent', 1]));

  // Spaced at the cap as Postmark saw them (the pacer adds 10 % to 1/cap; a little slack for the network).
  const arrivals = stack.postmark.sent.map((m) => m.receivedAt.getTime()).sort((a, b) => a - b);
  const gaps = arrivals.slice(1).map((at, i) => at - arrivals[i]!);
  const spacing = SECOND / CAP_PER_SECOND;
  expect(gaps.filter((gap) => gap < spacing * 0.9)).toEqual([]);

  // Each send went through the queued sendReminder activity: the local first try handed over without sending.
  for (const id of ids) {
    const history = await stack.client.workflow.getHandle(tokenExpiryWorkflowId(id, TEST_INSTANCE)).fetchHistory();
    const scheduled = (history.events ?? []).flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
    expect({ id, scheduled }).toEqual({ id, scheduled: ['sendReminder'] });
  }

  await stack.waitUntilClosed(ids);
  await stack.finish(tokens.map((t) => underTest(t, 'delivered')));
}, 240_000);
