/**
 * Fault 2: the Temporal server goes away while every workflow sleeps on its timer, once stopped cleanly
 * and once killed (SIGKILL), and comes back from its SQLite file. The worker rides it out, the timers set
 * before the outages fire after them, and every email goes out once.
 */
import { FaultStack, keyPrefix, underTest, type TestToken } from '../helpers/faultStack';
import { eventually } from '../helpers/poll';

const SECOND = 1_000;
const stack = FaultStack.use('dev-server-restart', { reminders: '20s,10s' });

test('stop and restart the dev server while workflows sleep: their timers still fire', async () => {
  await stack.startWorker();
  const users = [await stack.addUser(), await stack.addUser(), await stack.addUser()];
  const tokens: TestToken[] = [];
  for (const user of users) tokens.push(await stack.createToken(user, 45 * SECOND));
  tokens.push(await stack.createToken(users[0]!, 50 * SECOND));
  const ids = tokens.map((t) => t.id);
  await stack.waitUntilWaiting(ids);

  // 1. A clean stop while every workflow sleeps towards its first reminder; down until the worker's
  // polls have run into the outage (its client logs each retry against the missing server).
  const linesBeforeStop = stack.worker.lines.length;
  await stack.server.stop();
  stack.note('dev server stopped (SIGTERM)');
  await eventually(
    "the worker's polls failing against the stopped server",
    () => stack.worker.lines.slice(linesBeforeStop).some((l) => /poll_(workflow|activity)_task_queue retried .*Unavailable/.test(l.text)),
    { timeoutMs: 60_000, abort: () => stack.crashes()[0] },
  );
  expect(stack.worker.running).toBe(true);
  // Taken before start(): nothing can fire before the server runs, and a timer may fire as soon as it does.
  const firstRestart = new Date();
  await stack.server.start();
  stack.note('dev server started again from its file');
  // Still there and still waiting: the state came back from the file, not from the worker.
  await stack.waitUntilWaiting(ids);

  // 2. A crash between reminders: once the first reminders went out, kill the server while the
  // workflows sleep towards the next one, and keep it down until that one has fallen due.
  await eventually(
    'every token\'s 20s reminder sent',
    async () => (await stack.rows(ids)).filter((r) => r.reminder === '20s' && r.status === 'sent').length === ids.length,
    { timeoutMs: 120_000, abort: () => stack.crashes()[0] },
  );
  await stack.waitUntilWaiting(ids);
  await stack.server.stop({ signal: 'SIGKILL' });
  stack.note('dev server killed (SIGKILL)');
  const firstTenSecondsDue = Math.min(...tokens.map((t) => t.expiresAt.getTime() - 10 * SECOND));
  await eventually('a 10s reminder due while the server is down', () => Date.now() > firstTenSecondsDue + SECOND, { timeoutMs: 30_000 });
  expect(stack.worker.running).toBe(true);
  const secondRestart = new Date();
  await stack.server.start();
  stack.note('dev server started again from its file');

  await stack.waitUntilClosed(ids, 180_000);
  await stack.finish(tokens.map((t) => underTest(t, 'delivered')));

  // The timers were set before the outages and fired after them: every email went out after the first
  // restart, and each token's final notice after the crash.
  expect(stack.postmark.sent.every((m) => m.receivedAt >= firstRestart)).toBe(true);
  for (const token of tokens) {
    const notice = stack.postmark.sent.find((m) => m.Metadata.dedupe_key?.startsWith(keyPrefix(token, 'expired')));
    expect(notice?.receivedAt.getTime()).toBeGreaterThanOrEqual(secondRestart.getTime());
  }
  // One worker rode out both outages.
  expect(stack.workers).toHaveLength(1);
}, 300_000);
