/**
 * Fault 4: PostgreSQL connections die mid-run. The tokens' rows are held (FOR NO KEY UPDATE) so that each
 * send's bookkeeping transaction waits inside the worker after Postmark has accepted the email; then every
 * connection the system has to the test database is terminated (pg_terminate_backend), again and again
 * for half a minute. The worker stays up, and each email is recorded once as sent: the workflow retries the record of
 * an accepted email (recordSent) until the database answers, instead of sending it again.
 */
import { Client as PgClient, type Pool } from 'pg';
import { FaultStack, keyPrefix, TEST_APPLICATION_NAME, underTest, type TestToken } from '../helpers/faultStack';
import { eventually, pause } from '../helpers/poll';

const SECOND = 1_000;
const stack = FaultStack.use('database-kill', { reminders: '20s,10s' });

/** Terminates every backend on this database except the test's own, every `everyMs` for `forMs`; how many died. */
async function killConnectionsRepeatedly(db: Pool, forMs: number, everyMs = 250): Promise<number> {
  let killed = 0;
  const until = Date.now() + forMs;
  while (Date.now() < until) {
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name NOT LIKE $1`,
      [`${TEST_APPLICATION_NAME}%`],
    );
    killed += rows[0]?.n ?? 0;
    await pause(everyMs);
  }
  return killed;
}

test('connections killed mid-run: activities retry, nothing lost, nothing sent twice', async () => {
  await stack.startWorker();
  const users = [await stack.addUser(), await stack.addUser(), await stack.addUser()];
  const tokens: TestToken[] = [];
  // Warnings due 12 s in (20 s before a 32 s expiry); the rows are held before that.
  for (const user of users) tokens.push(await stack.createToken(user, 32 * SECOND));
  const ids = tokens.map((t) => t.id);
  await stack.waitUntilWaiting(ids);

  // Postmark takes its time to answer; while it does, the claimed rows are held: each send is accepted, and
  // the activity's markSent waits on the lock with its answer in hand.
  stack.postmark.latencyMs = 5 * SECOND;
  const url = new URL(stack.database.url);
  url.searchParams.set('application_name', `${TEST_APPLICATION_NAME}-lock`);
  const holder = new PgClient({ connectionString: url.toString() });
  await holder.connect();
  try {
    const accepted = await eventually(
      'each warning accepted by Postmark, its answer on the way',
      () => {
        const messages = tokens.map((t) => stack.postmark.sent.find((m) => m.Metadata.dedupe_key?.startsWith(keyPrefix(t, '20s'))));
        return messages.every((m) => m !== undefined) ? messages.map((m) => m!.MessageID) : undefined;
      },
      { timeoutMs: 90_000, abort: () => stack.crashes()[0] },
    );
    await holder.query('BEGIN');
    const { rows: held } = await holder.query(
      `SELECT token_id FROM token_expiry.expiry_notifications WHERE token_id = ANY($1::bigint[]) AND reminder = '20s' AND status = 'sending'
         FOR NO KEY UPDATE`,
      [ids],
    );
    expect(held).toHaveLength(tokens.length);
    stack.note('claimed rows held');
    await eventually(
      'each send\'s bookkeeping waiting on the lock',
      async () => {
        const { rows } = await stack.db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock' AND application_name = 'token-expiry-worker'`,
        );
        return (rows[0]?.n ?? 0) >= tokens.length;
      },
      { timeoutMs: 60_000, abort: () => stack.crashes()[0] },
    );
    stack.postmark.latencyMs = 0;
    stack.note('three sends accepted, their transactions waiting; killing connections');

    // The waiting transactions die first; for the next half minute so does every connection the worker
    // opens again for its retries (which find the rows still claimed, or lose their connection).
    const killed = await killConnectionsRepeatedly(stack.db, 30 * SECOND);
    stack.note(`terminated ${killed} backends over 30 s`);
    expect(killed).toBeGreaterThan(tokens.length);
    await holder.query('ROLLBACK');
    stack.note('claimed rows released');

    await stack.waitUntilClosed(ids, 240_000);
    const { rows } = await stack.finish(tokens.map((t) => underTest(t, 'delivered')), { killed, accepted });

    // Recorded with the MessageID Postmark gave: an accepted email's record is retried on its own (the
    // workflow's recordSent) until the database answers, never resent, never recorded as failed.
    const warnings = tokens.map((t) => rows.find((r) => r.tokenId === t.id && r.reminder === '20s'));
    expect(warnings.map((r) => r?.messageId)).toEqual(accepted);
    for (const warning of warnings) expect(warning?.status).toBe('sent');
    const recordedLater = stack.worker.jsonLines().filter((l) => l.message === 'email sent, recorded on retry');
    expect([...new Set(recordedLater.map((l) => String(l.tokenId)))].sort()).toEqual([...ids].sort());
    // The same worker process throughout: killed connections are the activity's problem, not the process's.
    expect(stack.workers).toHaveLength(1);
    expect(stack.worker.running).toBe(true);
  } finally {
    await holder.end().catch(() => undefined);
  }
}, 300_000);
