/**
 * The four races of issue 16, each against the real activities, real PostgreSQL and the fake Postmark: each
 * ended with two emails (or a sent email recorded as failed) before claims were fenced. One email per
 * (token, reminder), and the log says what happened.
 */
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { dedupeKey, listNotifications } from '../src/db/notifications';
import type { SendReminderInput, UnrecordedSend } from '../src/tokenExpiry/contract';
import { failingSentWrites, stallAfterClaim } from './helpers/stallingPool';
import { observe } from './helpers/observe';
import { useSendPipeline, type Owner } from './helpers/sendPipeline';
import { TEST_INSTANCE } from './helpers/database';

const DAY = 86_400_000;
const pipeline = useSendPipeline({ EXPIRY_DIGEST_WINDOW: '0', POSTMARK_SEARCH_LAG: '2s' });
const { db, activities } = pipeline;
let postmark: ReturnType<typeof pipeline.postmark>;
beforeEach(() => {
  postmark = pipeline.postmark();
  postmark.reset();
  postmark.searchLagMs = 0;
});

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> =>
  new MockActivityEnvironment({ startToCloseTimeoutMs: 30_000 }, { logger: new DefaultLogger('ERROR') }).run(fn, ...args);

const settle = <T>(promise: Promise<T>) => promise.then((value) => ({ value }), (error: unknown) => ({ error }));

async function aToken(owner?: Owner, expiresAt = new Date(Date.now() + 3 * DAY)) {
  const who = owner ?? (await pipeline.newOwner());
  return { owner: who, input: await pipeline.warningOf(who, expiresAt) };
}

const mailTo = (email: string) => postmark.sent.filter((m) => m.To === email);
const row = async (input: SendReminderInput) => (await listNotifications(db(), input.tokenId)).find((r) => r.reminder === input.reminder);
/** The lease ran out while the attempt stalled (as 32 s would): its claim is free for the next attempt to take. */
const lapse = (tokenIds: string[]) =>
  db().query(`UPDATE expiry_notifications SET claimed_until = now() - interval '1 second' WHERE token_id = ANY($1::bigint[])`, [tokenIds]);

test('A. an attempt that outlives its lease: it finds at its confirm that the retry took the row, and sends nothing', async () => {
  const { owner, input } = await aToken();
  const stalled = stallAfterClaim(db());
  const first = observe(activities({ db: stalled.pool }).sendReminder, input);
  await stalled.stall;
  await lapse([input.tokenId]);

  const retry = await run(activities().sendReminder, input);
  stalled.release();
  const outcome = await first;

  expect(mailTo(owner.email)).toHaveLength(1);
  expect(retry).toMatchObject({ outcome: 'sent', messageId: mailTo(owner.email)[0]!.MessageID });
  expect(outcome.error).toMatchObject({
    type: 'ClaimLost',
    nonRetryable: false,
    message: 'another attempt took a row of this email before it was sent; nothing sent',
  });
  // What ops see: the lost write in the log and token_expiry_claims_lost{write}.
  expect(outcome.warnings).toContainEqual(
    expect.objectContaining({
      message: 'a write lost its row to another attempt and changed nothing',
      tokenId: input.tokenId,
      reminder: '1d',
      lost: [input.tokenId],
      write: 'confirm before send',
    }),
  );
  expect(outcome.counted.filter((c) => c.name === 'token_expiry_claims_lost')).toEqual([
    { name: 'token_expiry_claims_lost', unit: 'rows', description: 'Writes that found another attempt holding the row', value: 1, tags: { write: 'confirm before send' } },
  ]);
  // The retry's record stands: the first attempt's writes changed nothing.
  expect(await row(input)).toMatchObject({ status: 'sent', providerMessageId: mailTo(owner.email)[0]!.MessageID });
});

test('A, the token revoked meanwhile: the late attempt\'s skip changes nothing and says so; its retry answers what the other recorded', async () => {
  const { owner, input } = await aToken();
  const stalled = stallAfterClaim(db());
  const first = observe(activities({ db: stalled.pool }).sendReminder, input);
  await stalled.stall;
  await db().query('UPDATE api_tokens SET revoked = true WHERE id = $1', [input.tokenId]);
  await lapse([input.tokenId]);

  const retry = await run(activities().sendReminder, input);
  stalled.release();
  const outcome = await first;

  expect(retry).toEqual({ outcome: 'skipped', reason: 'token-revoked' });
  expect(outcome.error).toMatchObject({ type: 'ClaimLost', nonRetryable: false });
  expect(outcome.warnings).toContainEqual(expect.objectContaining({ lost: [input.tokenId], write: 'record skipped' }));
  expect(outcome.emails).toEqual([]);
  expect(await run(activities().sendReminder, input)).toEqual({ outcome: 'skipped', reason: 'token-revoked' });
  expect(mailTo(owner.email)).toHaveLength(0);
});

test('B. accepted and the connection cut, the search still lagging: the row stays held until the search can be trusted', async () => {
  const { owner, input } = await aToken();
  postmark.searchLagMs = 1_500; // below POSTMARK_SEARCH_LAG (2 s)
  postmark.failNext(1, { kind: 'acceptThenReset' });
  const { sendReminder } = activities();

  const first = await settle(run(sendReminder, input));
  // The retry comes back at once (and later, 10 s on in production): the search would not show the message yet.
  const early = await settle(run(sendReminder, input));
  await pause(4_100); // the lag and the 2 s margin
  const late = await run(sendReminder, input);

  expect(first).toMatchObject({ error: expect.objectContaining({ type: 'PostmarkNetworkError', nonRetryable: false }) });
  expect(early).toMatchObject({ error: expect.objectContaining({ type: 'ReminderBusy' }) });
  expect(mailTo(owner.email)).toHaveLength(1);
  expect(late).toMatchObject({ outcome: 'sent', messageId: mailTo(owner.email)[0]!.MessageID });
});

test('C. a digest member takes its row back while its leader stalls: the leader does not send an email that lists it', async () => {
  const leader = await aToken();
  const expiry = Date.parse(leader.input.expiresAt);
  const member = await aToken(leader.owner, new Date(expiry + 10_000));
  const digestsAt = (time: string, pool = db()) =>
    activities({ db: pool, env: { EXPIRY_DIGEST_WINDOW: '1h' }, clock: { now: async () => new Date(time) } });
  const stalled = stallAfterClaim(db());
  const first = settle(run(digestsAt(leader.input.dueAt, stalled.pool).sendReminder, leader.input));
  await stalled.stall;
  expect((await row(member.input))?.digest).toBe(dedupeKey(leader.input)); // the leader's claim took the member's row
  await lapse([leader.input.tokenId, member.input.tokenId]);

  const alone = await run(digestsAt(member.input.dueAt).sendReminder, member.input);
  stalled.release();
  await first;
  // The leader's row, still its own, is given back at once with why: its retry need not wait out the lease.
  expect(await row(leader.input)).toMatchObject({ status: 'sending', lastError: 'lost a row before the send' });
  const { rows: held } = await db().query('SELECT claimed_until FROM expiry_notifications WHERE token_id = $1', [leader.input.tokenId]);
  expect(held).toEqual([{ claimed_until: null }]);
  // The leader's retry sends its own reminder (the member's row is no longer its to send).
  const retried = await settle(run(digestsAt(leader.input.dueAt).sendReminder, leader.input));

  const sent = mailTo(leader.owner.email);
  expect(alone).toMatchObject({ outcome: 'sent', digest: `${dedupeKey(member.input)}:a2` });
  expect(retried).toMatchObject({ value: expect.objectContaining({ outcome: 'sent' }) });
  // Two tokens, each in exactly one email.
  expect(sent.map((m) => m.Metadata.tokens)).toEqual(['1', '1']);
  expect(new Set(sent.map((m) => m.Metadata.token_id))).toEqual(new Set([leader.input.tokenId, member.input.tokenId]));
});

test('D. accepted, then the database away: never a resend and never failed; the record is retried on its own', async () => {
  const { owner, input } = await aToken();
  let down = true;
  const failing = activities({ db: failingSentWrites(db(), () => down) });

  const attempt = await settle(run(failing.sendReminder, input));
  const err = (attempt as { error: ApplicationFailure }).error;
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect(err).toMatchObject({ type: 'SentNotRecorded', nonRetryable: true });
  // Meanwhile another attempt, and the workflow's record of a failure, change nothing.
  expect(await settle(run(activities().sendReminder, input))).toMatchObject({ error: expect.objectContaining({ type: 'ReminderBusy' }) });
  await run(activities().recordOutcomes, {
    instance: TEST_INSTANCE,
    tokenId: input.tokenId,
    outcomes: [{ reminder: input.reminder, dueAt: input.dueAt, status: 'failed', reason: 'PostmarkUnavailable: after every retry' }],
  });
  expect(await row(input)).toMatchObject({ status: 'sending' });

  const unrecorded = err.details?.[0] as UnrecordedSend;
  await expect(run(failing.recordSent, unrecorded)).rejects.toThrow('Connection terminated');
  down = false;
  const recorded = await run(failing.recordSent, unrecorded);

  expect(mailTo(owner.email)).toHaveLength(1);
  expect(recorded).toMatchObject({ outcome: 'sent', messageId: mailTo(owner.email)[0]!.MessageID });
  expect(await row(input)).toMatchObject({ status: 'sent', providerMessageId: mailTo(owner.email)[0]!.MessageID });
});
