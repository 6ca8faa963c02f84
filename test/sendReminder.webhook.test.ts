/**
 * The webhook after the email, one send activity at a time as a worker would attempt it (no Temporal server; the
 * whole workflow's side is test/webhooks.test.ts): the webhook goes once the email's outcome is final, never
 * before and never twice, and a record the workflow retries delivers it. Real PostgreSQL, the real postmark client,
 * the fake Postmark and a receiver on 127.0.0.1.
 */
import type { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { dedupeKey, listNotifications } from '../src/db/notifications';
import { listWebhookDeliveries, saveUserWebhook } from '../src/db/webhooks';
import type { Mailer } from '../src/email/postmarkMailer';
import type { SendReminderInput, UnrecordedSend } from '../src/tokenExpiry/contract';
import { newWebhookSecret } from '../src/webhooks/signature';
import { observe } from './helpers/observe';
import { useSendPipeline, type Owner } from './helpers/sendPipeline';
import { failingSentWrites } from './helpers/stallingPool';
import { Receiver } from './helpers/webhookReceiver';

const DAY = 86_400_000;
// The tests' receivers run on 127.0.0.1 over http, which the operator allows here.
const pipeline = useSendPipeline({ EXPIRY_DIGEST_WINDOW: '0', POSTMARK_SEARCH_LAG: '1s', WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_ALLOW_HTTP: 'true' });
const { db, activities } = pipeline;
let postmark: ReturnType<typeof pipeline.postmark>;
beforeEach(() => {
  postmark = pipeline.postmark();
  postmark.reset();
});

const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> =>
  new MockActivityEnvironment({ startToCloseTimeoutMs: 30_000 }, { logger: new DefaultLogger('ERROR') }).run(fn, ...args);
const settle = <T>(promise: Promise<T>) => promise.then((value) => ({ value }), (error: unknown) => ({ error: error as ApplicationFailure }));

/** A user with a webhook for both channels at a receiver answering `answers`, and a token's 1d warning. */
async function aWebhookUser(answers: number[] = [204]) {
  const receiver = await Receiver.start(answers);
  const owner = await pipeline.newOwner();
  await saveUserWebhook(db(), owner.id, { url: receiver.url, channels: ['email', 'webhook'], newSecret: newWebhookSecret() });
  const input = await pipeline.warningOf(owner, new Date(Date.now() + 3 * DAY));
  return { receiver, owner, input };
}

const mailTo = (owner: Owner) => postmark.sent.filter((m) => m.To === owner.email);
const emailPosts = () => postmark.requests.filter((r) => r.method === 'POST' && r.path === '/email');
const webhookRows = (input: SendReminderInput) => listWebhookDeliveries(db(), input.tokenId);
const row = async (input: SendReminderInput) => (await listNotifications(db(), input.tokenId)).find((r) => r.reminder === input.reminder);

test('an email sent, then its webhook: one each, the webhook after Postmark accepted; a retry delivers neither again', async () => {
  const { receiver, owner, input } = await aWebhookUser();
  const { sendReminder } = activities();

  expect(await run(sendReminder, input)).toMatchObject({ outcome: 'sent' });
  expect(await run(sendReminder, input)).toMatchObject({ outcome: 'sent' });

  expect(mailTo(owner)).toHaveLength(1);
  expect(receiver.deliveries).toHaveLength(1);
  expect(JSON.parse(receiver.deliveries[0]!.body)).toMatchObject({ type: 'token.expiry.warning', data: { token: { id: input.tokenId }, reminder: { key: '1d' } } });
  expect(receiver.deliveries[0]!.at.getTime()).toBeGreaterThanOrEqual(emailPosts()[0]!.at.getTime());
  expect((await webhookRows(input)).map((d) => [d.status, d.attempts])).toEqual([['sent', 1]]);
});

test('an email refused for good (422): the attempt fails for good, and the webhook still goes, once', async () => {
  const { receiver, owner, input } = await aWebhookUser();
  postmark.failNext(1, { status: 422, errorCode: 406, message: 'You tried to send to a recipient that has been marked as inactive.' });
  const { sendReminder } = activities();

  const first = await settle(run(sendReminder, input));
  const again = await settle(run(sendReminder, input));

  expect(first).toMatchObject({ error: expect.objectContaining({ type: 'PostmarkInactiveRecipient', nonRetryable: true }) });
  expect(again).toMatchObject({ error: expect.objectContaining({ type: 'ReminderFailed', nonRetryable: true }) });
  expect(mailTo(owner)).toHaveLength(0);
  expect(await row(input)).toMatchObject({ status: 'failed' });
  expect(receiver.deliveries).toHaveLength(1);
  expect((await webhookRows(input)).map((d) => d.status)).toEqual(['sent']);
});

test('an email Postmark refused for now (500): no webhook on that attempt; the retry sends the email, then the webhook', async () => {
  const { receiver, owner, input } = await aWebhookUser();
  postmark.failNext(1, { status: 500 });
  const { sendReminder } = activities();

  const refused = await settle(run(sendReminder, input));
  expect(refused).toMatchObject({ error: expect.objectContaining({ type: 'PostmarkUnavailable', nonRetryable: false }) });
  expect(receiver.deliveries).toHaveLength(0);

  expect(await run(sendReminder, input)).toMatchObject({ outcome: 'sent' });
  expect(mailTo(owner)).toHaveLength(1);
  expect(receiver.deliveries).toHaveLength(1);
  expect(receiver.deliveries[0]!.at.getTime()).toBeGreaterThanOrEqual(emailPosts()[1]!.at.getTime());
});

test('an expired notice that waits for the user\'s other tokens delivers no webhook until its email goes', async () => {
  const { receiver, owner, input } = await aWebhookUser();
  const expired = (warning: SendReminderInput): SendReminderInput => ({ ...warning, reminder: 'expired', kind: 'expired', dueAt: warning.expiresAt });
  const first = expired(input);
  const later = expired(await pipeline.warningOf(owner, new Date(Date.parse(input.expiresAt) + 30 * 60_000)));
  const digestsAt = (time: string) => activities({ env: { EXPIRY_DIGEST_WINDOW: '1h' }, clock: { now: async () => new Date(time) } });

  expect(await run(digestsAt(first.expiresAt).sendReminder, first)).toEqual({ waitUntil: later.expiresAt });
  expect(receiver.deliveries).toHaveLength(0);

  expect(await run(digestsAt(later.expiresAt).sendReminder, { ...first, waited: true })).toMatchObject({ outcome: 'sent' });
  expect(mailTo(owner)).toHaveLength(1);
  expect(receiver.deliveries).toHaveLength(1);
});

describe('an accepted email whose record failed (SentNotRecorded)', () => {
  /** The send accepted by Postmark while the database refuses its record: the error the workflow gets. */
  async function acceptedUnrecorded(input: SendReminderInput, down: () => boolean) {
    const sent = await settle(run(activities({ db: failingSentWrites(db(), down) }).sendReminder, input));
    const err = (sent as { error: ApplicationFailure }).error;
    expect(err).toMatchObject({ type: 'SentNotRecorded', nonRetryable: true });
    expect(err.message).toMatch(/^Postmark accepted the email but recording it failed: Connection terminated/);
    return err.details?.[0] as UnrecordedSend;
  }

  test('no webhook until the workflow\'s record (recordSent), which delivers it; its retry after a 500 records nothing twice and warns of nothing', async () => {
    const { receiver, owner, input } = await aWebhookUser([500, 204]);
    const unrecorded = await acceptedUnrecorded(input, () => true);
    expect(receiver.deliveries).toHaveLength(0);
    const { recordSent } = activities();

    await expect(run(recordSent, unrecorded)).rejects.toMatchObject({ type: 'WebhookRetry' });
    const retried = await observe(recordSent, unrecorded);

    const messageId = mailTo(owner)[0]!.MessageID;
    expect(retried.result).toEqual({ outcome: 'sent', messageId, digest: dedupeKey(input), sentByTokenId: input.tokenId });
    expect(retried.lines).toContainEqual(expect.objectContaining({ message: 'email sent, recorded on retry', tokenId: input.tokenId, messageId }));
    expect(retried.warnings).toEqual([]);
    expect(retried.counted.filter((c) => c.name === 'token_expiry_claims_lost')).toEqual([]);
    expect(mailTo(owner)).toHaveLength(1);
    expect(await row(input)).toMatchObject({ status: 'sent', providerMessageId: messageId });
    expect(receiver.deliveries).toHaveLength(2);
    expect(new Set(receiver.deliveries.map((d) => d.headers['webhook-id'])).size).toBe(1);
    expect((await webhookRows(input)).map((d) => [d.status, d.attempts])).toEqual([['sent', 2]]);
  });

  test('after another attempt recorded an email of its own (the search never showed the first), the record changes nothing and says so', async () => {
    const { receiver, owner, input } = await aWebhookUser();
    const unrecorded = await acceptedUnrecorded(input, () => true);
    // The claim lapses; the next attempt's search still does not show the message: the one case of two emails.
    await db().query(`UPDATE expiry_notifications SET claimed_until = now() - interval '1 second' WHERE token_id = $1`, [input.tokenId]);
    const blind: Mailer = { ...pipeline.mailer(), findSent: async () => null };
    expect(await run(activities({ mailer: blind }).sendReminder, input)).toMatchObject({ outcome: 'sent' });
    const [, second] = mailTo(owner);

    const late = await observe(activities().recordSent, unrecorded);

    expect(late.warnings).toContainEqual(
      expect.objectContaining({
        message: 'a write lost its row to another attempt and changed nothing',
        tokenId: input.tokenId,
        reminder: '1d',
        lost: [input.tokenId],
        write: 'record sent (retried)',
      }),
    );
    expect(late.counted.filter((c) => c.name === 'token_expiry_claims_lost')).toEqual([
      { name: 'token_expiry_claims_lost', unit: 'rows', description: 'Writes that found another attempt holding the row', value: 1, tags: { write: 'record sent (retried)' } },
    ]);
    expect(await row(input)).toMatchObject({ status: 'sent', providerMessageId: second!.MessageID });
    expect(receiver.deliveries).toHaveLength(1);
  });
});
