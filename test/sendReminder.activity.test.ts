/**
 * The send activity on its own, without a Temporal server: real PostgreSQL, the real postmark client and
 * the fake Postmark, run in MockActivityEnvironment. Each test is one send as a worker would attempt it:
 * what reaches the owner, what the notification log says, and how a retry would go on.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities/tokenExpiry';
import { reminderBusy } from '../activities/sendEmail';
import { loadConfig } from '../src/config';
import { dedupeKey, listNotifications, markUnsent } from '../src/db/notifications';
import { saveUserWebhook } from '../src/db/webhooks';
import { markExpiryWorkflowsStarted } from '../src/db/workflows';
import { newWebhookSecret } from '../src/webhooks/signature';
import { builtinRegistry, builtinWriter, insertUser } from '../src/registry/builtin';
import { DIGEST_MAX_TOKENS } from '../src/email/digestEmail';
import { createPostmarkMailer, type Mailer } from '../src/email/postmarkMailer';
import { startFakePostmark, type FakePostmark } from '../scripts/devtools/fakePostmark';
import type { SendReminderInput } from '../src/tokenExpiry/contract';
import { SEND_ACTIVITY_TIMEOUT_MS } from '../src/tokenExpiry/lease';
import { createTestDatabase, TEST_INSTANCE, type TestDatabase } from './helpers/database';
import { observe } from './helpers/observe';

const DAY = 86_400_000;
// Short, so that a row held after an ambiguous send lapses within a test: its lease is the lag and 2 s.
const SEARCH_LAG = '1s';
const UNKNOWN_LEASE_MS = 3_000;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let database: TestDatabase;
let postmark: FakePostmark;
let users = 0;

beforeAll(async () => {
  [database, postmark] = await Promise.all([createTestDatabase(), startFakePostmark()]);
});
afterAll(async () => {
  await Promise.allSettled([postmark?.close(), database?.drop()]);
});
beforeEach(() => postmark.reset());

const db = () => database.pool;

function config(env: Record<string, string> = {}): ActivityDeps['config'] {
  // One email per token unless a test sets EXPIRY_DIGEST_WINDOW: the digest's end-to-end rules are in
  // test/tokenExpiry.digest.test.ts; its claim and record are here, so that `npm run mutate` covers them.
  return loadConfig({ REGISTRY_NAME: 'crates.io', REGISTRY_URL: 'https://crates.io', EMAIL_FROM: 'crates.io <noreply@crates.io>', EXPIRY_DIGEST_WINDOW: '0', POSTMARK_SEARCH_LAG: SEARCH_LAG, ...env });
}

function realMailer(timeoutSeconds = 5): Mailer {
  return createPostmarkMailer({ serverToken: postmark.serverToken, apiUrl: postmark.url, timeoutSeconds });
}

/** A Postmark whose outbound search has not caught up yet: it never finds anything. */
function laggingSearch(mailer: Mailer): Mailer {
  return { send: (email) => mailer.send(email), findSent: async () => null };
}

function activities(deps: Partial<ActivityDeps> & { env?: Record<string, string> } = {}) {
  const { env, ...rest } = deps;
  return createActivities({ registry: builtinRegistry, db: db(), mailer: realMailer(), clock: { now: async () => new Date() }, config: config(env), ...rest });
}

/**
 * A user (verified unless asked; `owner` reuses one) with a token expiring in `expiresInMs` (or at `expiresAt`),
 * and the input of its "1d" reminder.
 */
async function aToken({
  expiresInMs = 3 * DAY,
  expiresAt: expiry = new Date(Date.now() + expiresInMs),
  verified = true,
  kind = 'warning' as SendReminderInput['kind'],
  owner = undefined as { id: string; login: string; email: string } | undefined,
} = {}) {
  const login = owner?.login ?? `owner${++users}-${randomBytes(3).toString('hex')}`;
  const email = owner?.email ?? `${login}@example.com`;
  const user = owner ?? (await insertUser(db(), { login, email, verified }));
  const token = await builtinWriter.insertToken(db(), {
    userId: user.id,
    hash: randomBytes(32),
    name: 'publish from CI',
    expiredAt: expiry,
    crateScopes: ['serde'],
    endpointScopes: null,
  });
  // Its workflow on record, as the token service records it: a digest finds a user's tokens there.
  await markExpiryWorkflowsStarted(db(), [token]);
  const expiresAt = token.expiredAt!.toISOString();
  const input: SendReminderInput = {
    instance: TEST_INSTANCE,
    tokenId: token.id,
    reminder: kind === 'expired' ? 'expired' : '1d',
    kind,
    dueAt: kind === 'expired' ? expiresAt : new Date(token.expiredAt!.getTime() - DAY).toISOString(),
    expiresAt,
  };
  return { login, email, token, input, owner: { id: user.id, login, email } };
}

const quiet = new DefaultLogger('WARN');
const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> =>
  new MockActivityEnvironment({ startToCloseTimeoutMs: SEND_ACTIVITY_TIMEOUT_MS }, { logger: quiet }).run(fn, ...args);

async function failure(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

/** The (token, reminder) row of the notification log, or null. */
async function findNotification(tokenId: string, reminder: string) {
  return (await listNotifications(db(), tokenId)).find((row) => row.reminder === reminder) ?? null;
}
const row = (input: SendReminderInput) => findNotification(input.tokenId, input.reminder);
const mailTo = (email: string) => postmark.sent.filter((m) => m.To === email);

test('a due reminder is sent once, with its key and tag, and logged as sent', async () => {
  const { email, input } = await aToken();
  const { sendReminder } = activities();

  const result = await run(sendReminder, input);

  const [message] = mailTo(email);
  expect(mailTo(email)).toHaveLength(1);
  expect(result).toEqual({ outcome: 'sent', messageId: message!.MessageID, digest: dedupeKey(input), sentByTokenId: input.tokenId });
  expect(message).toMatchObject({
    From: 'crates.io <noreply@crates.io>',
    Subject: 'crates.io: your API token "publish from CI" expires in 3 days',
    Tag: 'token-expiry-warning',
    Metadata: { token_id: input.tokenId, reminder: '1d', dedupe_key: dedupeKey(input) },
  });
  expect(await row(input)).toMatchObject({ status: 'sent', attempts: 1, providerMessageId: message!.MessageID, reason: null });
});

test('run again after its row is sent, with a Postmark search that finds nothing: no second email, attempts unchanged', async () => {
  const { email, input } = await aToken();
  const { sendReminder } = activities({ mailer: laggingSearch(realMailer()) });
  const first = await run(sendReminder, input);

  const again = await run(sendReminder, input);

  expect(mailTo(email)).toHaveLength(1);
  expect(again).toEqual(first);
  expect(await row(input)).toMatchObject({ status: 'sent', attempts: 1 });
});

describe('reasons not to send, read at send time', () => {
  test('a token revoked since its workflow was started (the cancel never arrived): skipped, token-revoked', async () => {
    const { email, input } = await aToken();
    await db().query('UPDATE api_tokens SET revoked = true WHERE id = $1', [input.tokenId]);

    const result = await run(activities().sendReminder, input);

    expect(result).toEqual({ outcome: 'skipped', reason: 'token-revoked' });
    expect(mailTo(email)).toHaveLength(0);
    expect(postmark.requests).toEqual([]);
    expect(await row(input)).toMatchObject({ status: 'skipped', reason: 'token-revoked' });
  });

  test('a token row deleted since its workflow was started: skipped, token-deleted, and nothing left to fail on', async () => {
    const { email, input } = await aToken();
    await db().query('DELETE FROM api_tokens WHERE id = $1', [input.tokenId]);
    const { sendReminder, recordOutcomes } = activities();

    expect(await run(sendReminder, input)).toEqual({ outcome: 'skipped', reason: 'token-deleted' });
    // A retry, and the workflow recording a reminder it gave up on, end too (our log has no foreign key into the registry).
    expect(await run(sendReminder, input)).toEqual({ outcome: 'skipped', reason: 'token-deleted' });
    await run(recordOutcomes, { instance: TEST_INSTANCE, tokenId: input.tokenId, outcomes: [{ reminder: input.reminder, dueAt: input.dueAt, status: 'skipped', reason: 'superseded-by-expired' }] });
    expect(postmark.requests).toEqual([]);
    expect(mailTo(email)).toHaveLength(0);
    expect((await listNotifications(db(), input.tokenId)).map((r) => [r.reminder, r.status, r.reason])).toEqual([
      [input.reminder, 'skipped', 'token-deleted'],
    ]);
  });

  test('a token whose expiry moved: skipped, expiry-changed', async () => {
    const { email, input } = await aToken();
    await db().query(`UPDATE api_tokens SET expired_at = expired_at + interval '1 day' WHERE id = $1`, [input.tokenId]);

    expect(await run(activities().sendReminder, input)).toEqual({ outcome: 'skipped', reason: 'expiry-changed' });
    expect(mailTo(email)).toHaveLength(0);
  });

  test('a token whose expiry was removed: skipped, expiry-changed', async () => {
    const { input } = await aToken();
    await db().query('UPDATE api_tokens SET expired_at = NULL WHERE id = $1', [input.tokenId]);

    expect(await run(activities().sendReminder, input)).toEqual({ outcome: 'skipped', reason: 'expiry-changed' });
  });

  test('a warning that arrives after the expiry: skipped, token-already-expired; the expired notice still goes', async () => {
    const warning = await aToken({ expiresInMs: 60_000 });
    const late = activities({ clock: { now: async () => new Date(Date.now() + 60_000) } });

    expect(await run(late.sendReminder, warning.input)).toEqual({ outcome: 'skipped', reason: 'token-already-expired' });
    const notice = await aToken({ expiresInMs: 60_000, kind: 'expired' });
    expect(await run(late.sendReminder, notice.input)).toMatchObject({ outcome: 'sent' });
    expect(mailTo(notice.email).map((m) => [m.Tag, m.Subject])).toEqual([
      ['token-expiry-expired', 'crates.io: your API token "publish from CI" has expired'],
    ]);
  });

  test('a warning sent exactly at the expiry instant is too late', async () => {
    const { input, token } = await aToken();
    const atExpiry = activities({ clock: { now: async () => new Date(token.expiredAt!.getTime()) } });

    expect(await run(atExpiry.sendReminder, input)).toEqual({ outcome: 'skipped', reason: 'token-already-expired' });
  });

  test('an owner without a verified address: skipped, no-verified-email', async () => {
    const { input } = await aToken({ verified: false });

    expect(await run(activities().sendReminder, input)).toEqual({ outcome: 'skipped', reason: 'no-verified-email' });
    expect(postmark.requests).toEqual([]);
  });

  test('an owner who chose the webhook alone: skipped, email-not-chosen, no email', async () => {
    const receiver = createServer((req, res) => req.resume().on('end', () => res.end()));
    receiver.listen(0, '127.0.0.1');
    await once(receiver, 'listening');
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/expiry`;
    const { input, owner } = await aToken();
    await saveUserWebhook(db(), owner.id, { url, channels: ['webhook'], newSecret: newWebhookSecret() });
    const webhookAllowed = { WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_ALLOW_HTTP: 'true' };

    const outcome = await run(activities({ env: webhookAllowed }).sendReminder, input).finally(() => receiver.close());

    expect(outcome).toEqual({ outcome: 'skipped', reason: 'email-not-chosen' });
    expect(postmark.requests).toEqual([]);
    expect((await listNotifications(db(), input.tokenId)).map((n) => [n.status, n.reason])).toEqual([['skipped', 'email-not-chosen']]);
  });
});

describe('EXPIRY_EMAILS and the allowlist', () => {
  test('off: skipped, emails-off; dry-run: suppressed, dry-run; neither calls Postmark', async () => {
    const off = await aToken();
    const dry = await aToken();

    expect(await run(activities({ env: { EXPIRY_EMAILS: 'off' } }).sendReminder, off.input)).toEqual({ outcome: 'skipped', reason: 'emails-off' });
    expect(await run(activities({ env: { EXPIRY_EMAILS: 'dry-run' } }).sendReminder, dry.input)).toEqual({ outcome: 'suppressed', reason: 'dry-run' });
    expect(postmark.requests).toEqual([]);
    expect(await row(dry.input)).toMatchObject({ status: 'suppressed', reason: 'dry-run' });
  });

  test('an allowlist lets its addresses and @domains through and suppresses everyone else', async () => {
    const listed = await aToken();
    const byDomain = await aToken();
    const other = await aToken();
    const env = { EXPIRY_EMAIL_ALLOWLIST: `${listed.email.toUpperCase()},@elsewhere.example` };
    await db().query(`UPDATE emails SET email = 'someone@elsewhere.example' WHERE user_id = $1`, [byDomain.token.userId]);
    const { sendReminder } = activities({ env });

    expect(await run(sendReminder, listed.input)).toMatchObject({ outcome: 'sent' });
    expect(await run(sendReminder, byDomain.input)).toMatchObject({ outcome: 'sent' });
    expect(await run(sendReminder, other.input)).toEqual({ outcome: 'suppressed', reason: 'not-on-allowlist' });
    expect(postmark.sent.map((m) => m.To).sort()).toEqual([listed.email, 'someone@elsewhere.example'].sort());
  });
});

describe('when Postmark fails', () => {
  test('a permanent rejection (422): failed for good, non-retryable, and a retry does not send', async () => {
    const { email, input } = await aToken();
    postmark.failNext(1, { status: 422, errorCode: 300 });
    const { sendReminder } = activities();

    const err = await failure(run(sendReminder, input));

    expect(err).toMatchObject({ type: 'PostmarkInvalidRequest', nonRetryable: true });
    expect(await row(input)).toMatchObject({ status: 'failed', reason: expect.stringMatching(/^PostmarkInvalidRequest: Postmark 422/) });
    expect((await row(input))?.reason).not.toContain(email);
    const again = await failure(run(sendReminder, input));
    expect(again).toMatchObject({ type: 'ReminderFailed', nonRetryable: true, message: (await row(input))?.reason });
    expect(mailTo(email)).toHaveLength(0);
  });

  test('a 500: retryable, the claim released at once with the error, and the next attempt sends', async () => {
    const { email, input } = await aToken();
    postmark.failNext(1, { status: 500 });
    const { sendReminder } = activities();

    const err = await failure(run(sendReminder, input));

    expect(err).toMatchObject({ type: 'PostmarkUnavailable', nonRetryable: false });
    expect(await row(input)).toMatchObject({ status: 'sending', attempts: 1, lastError: expect.stringMatching(/^PostmarkUnavailable: /) });
    const { rows } = await db().query('SELECT claimed_until FROM expiry_notifications WHERE token_id = $1', [input.tokenId]);
    expect(rows[0].claimed_until).toBeNull();
    expect(await run(sendReminder, input)).toMatchObject({ outcome: 'sent' });
    expect(mailTo(email)).toHaveLength(1);
    expect(await row(input)).toMatchObject({ status: 'sent', attempts: 2 });
  });

  test('accepted but the answer lost: the row stays held past the search lag, then the search finds the message', async () => {
    const { email, input } = await aToken();
    postmark.failNext(1, { kind: 'acceptThenHang', ms: 2_500 });
    const { sendReminder } = activities({ mailer: realMailer(1) });

    const first = await observe(sendReminder, input);
    const err = first.error as ApplicationFailure;
    expect(err).toMatchObject({ type: 'PostmarkTimeout', nonRetryable: false });
    expect(Number(err.nextRetryDelay)).toBe(UNKNOWN_LEASE_MS + 1_000);
    expect(first.warnings).toContainEqual(
      expect.objectContaining({
        message: 'send outcome unknown; the rows stay held until the search can be trusted',
        tokenId: input.tokenId,
        reminder: '1d',
        digest: dedupeKey(input),
        type: 'PostmarkTimeout',
      }),
    );
    expect(await failure(run(sendReminder, input))).toMatchObject({ type: 'ReminderBusy' });

    await pause(UNKNOWN_LEASE_MS);
    const retried = await run(sendReminder, input);

    expect(mailTo(email)).toHaveLength(1);
    expect(retried).toEqual({ outcome: 'sent', messageId: mailTo(email)[0]!.MessageID, digest: dedupeKey(input), sentByTokenId: input.tokenId });
    expect(await row(input)).toMatchObject({ status: 'sent', attempts: 2, providerMessageId: mailTo(email)[0]!.MessageID });
  });

  test('a search that fails on the retry: retryable, and nothing sent meanwhile', async () => {
    const { email, input } = await aToken();
    postmark.failNext(1, { status: 500 });
    const broken: Mailer = { send: (m) => realMailer().send(m), findSent: async () => Promise.reject(new Error('socket hang up')) };
    const { sendReminder } = activities({ mailer: broken });
    await failure(run(sendReminder, input));

    const err = await failure(run(sendReminder, input));

    expect(err).toMatchObject({ type: 'PostmarkUnexpected', nonRetryable: false });
    expect(mailTo(email)).toHaveLength(0);
    expect(await row(input)).toMatchObject({ status: 'sending', lastError: expect.stringMatching(/^search failed: .*socket hang up$/) });
  });

  test('an attempt still running elsewhere: ReminderBusy, retried as its claim lapses, nothing sent', async () => {
    const { email, input } = await aToken();
    await db().query(
      `INSERT INTO expiry_notifications (token_id, reminder, due_at, dedupe_key, status, attempts, claimed_until)
       VALUES ($1, $2, $3, $4, 'sending', 1, now() + interval '20 seconds')`,
      [input.tokenId, input.reminder, input.dueAt, dedupeKey(input)],
    );

    const err = await failure(run(activities().sendReminder, input));

    expect(err.type).toBe('ReminderBusy');
    expect(err.message).toBe("another attempt at this reminder, or another token's digest, is still running");
    expect(err.nonRetryable).toBe(false);
    const delay = Number(err.nextRetryDelay);
    expect(delay).toBeGreaterThan(19_000);
    expect(delay).toBeLessThanOrEqual(21_000);
    expect(mailTo(email)).toHaveLength(0);
    expect(await row(input)).toMatchObject({ status: 'sending', attempts: 1 });
  });
});

describe('what an attempt carries and when it holds back', () => {
  test('an attempt with too little time left to send sends nothing, gives its row back at once, and the next attempt sends', async () => {
    const { email, input } = await aToken();
    const { sendReminder } = activities();
    // 2.5 s left: less than a send's minimum once the margin for the record is kept back.
    const short = new MockActivityEnvironment({ startToCloseTimeoutMs: 2_500 }, { logger: quiet });

    const err = await failure(short.run(sendReminder, input));

    expect([err.type, err.nonRetryable]).toEqual(['SendDeadline', false]);
    expect(err.message).toBe('too little time left in the attempt to send; the next attempt sends');
    expect(mailTo(email)).toHaveLength(0);
    expect(await row(input)).toMatchObject({ lastError: 'too little time left in the attempt to send' });
    const released = await db().query('SELECT claimed_until FROM expiry_notifications WHERE token_id = $1', [input.tokenId]);
    expect(released.rows).toEqual([{ claimed_until: null }]);
    expect(await run(sendReminder, input)).toMatchObject({ outcome: 'sent' });
    expect(mailTo(email)).toHaveLength(1);
  });

  test('with UNSUBSCRIBE_SECRET a warning carries the one-click unsubscribe headers; the expired notice does not', async () => {
    const env = { UNSUBSCRIBE_SECRET: 'x'.repeat(32), API_PUBLIC_URL: 'https://expiry.example.org' };
    const warning = await aToken();
    const notice = await aToken({ kind: 'expired', expiresAt: new Date(Date.now() - 60_000) });
    const { sendReminder } = activities({ env });

    await run(sendReminder, warning.input);
    await run(sendReminder, notice.input);

    const headers = (to: string) => Object.fromEntries((mailTo(to)[0]?.Headers ?? []).map((h) => [h.Name, h.Value]));
    expect(headers(warning.email)).toEqual({
      'List-Unsubscribe': expect.stringMatching(/^<https:\/\/expiry\.example\.org\/unsubscribe\?u=\d+&t=\d+&s=[^>]+>$/),
      'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
    });
    // The body offers the same link, in the user's words.
    const link = headers(warning.email)['List-Unsubscribe']!.slice(1, -1);
    expect(mailTo(warning.email)[0]!.TextBody).toContain(`One click turns them off (the notice when a token has expired still comes):\n${link}`);
    expect(mailTo(notice.email)).toHaveLength(1);
    expect(headers(notice.email)).toEqual({});
    expect(mailTo(notice.email)[0]!.TextBody).not.toContain('/unsubscribe?');
  });
});

describe('the local first try and the pacer', () => {
  test('with EMAIL_MAX_PER_SECOND set the first try hands over (null) and sends nothing; without it, it sends', async () => {
    const capped = await aToken();
    const open = await aToken();

    expect(await run(activities({ env: { EMAIL_MAX_PER_SECOND: '5' } }).sendReminderFirstTry, capped.input)).toBeNull();
    expect(mailTo(capped.email)).toHaveLength(0);
    expect(await row(capped.input)).toBeNull();
    expect(await run(activities().sendReminderFirstTry, open.input)).toMatchObject({ outcome: 'sent' });
    expect(mailTo(open.email)).toHaveLength(1);
  });

  test('a send waits for its turn from the pacer before it claims its row, and gets the attempt\'s abort signal', async () => {
    const { email, input } = await aToken();
    let release: () => void = () => undefined;
    const signals: (AbortSignal | undefined)[] = [];
    const pace = (signal?: AbortSignal) => {
      signals.push(signal);
      return new Promise<void>((resolve) => (release = resolve));
    };
    const { sendReminder } = activities({ pace });

    const sending = run(sendReminder, input);
    await waitFor(() => signals.length === 1);
    expect(signals[0]).toBeInstanceOf(AbortSignal);
    expect(await row(input)).toBeNull();
    expect(postmark.requests).toEqual([]);
    release();
    await sending;
    expect(mailTo(email)).toHaveLength(1);
  });

  test('an attempt cancelled while it waits for its turn (its token revoked, its workflow cancelled) aborts the wait', async () => {
    const { input } = await aToken();
    let waiting: AbortSignal | undefined;
    const pace = (signal?: AbortSignal) => {
      waiting = signal;
      return new Promise<void>((_resolve, reject) => signal?.addEventListener('abort', () => reject(signal.reason as Error)));
    };
    const env = new MockActivityEnvironment({ startToCloseTimeoutMs: SEND_ACTIVITY_TIMEOUT_MS }, { logger: quiet });

    const sending = env.run(activities({ pace }).sendReminder, input).then(
      () => 'sent',
      () => 'gave up',
    );
    await waitFor(() => waiting !== undefined);
    expect(waiting?.aborted).toBe(false);
    env.cancel();

    expect(await sending).toBe('gave up');
    expect(waiting?.aborted).toBe(true);
    expect(await row(input)).toBeNull();
    expect(postmark.requests).toEqual([]);
  });
});

test('recordOutcomes logs skipped and failed reminders, and leaves a row already sent as it was', async () => {
  const { input } = await aToken();
  const { sendReminder, recordOutcomes } = activities();
  await run(sendReminder, input);

  await run(recordOutcomes, {
    instance: TEST_INSTANCE,
    tokenId: input.tokenId,
    outcomes: [
      { reminder: '7d', dueAt: new Date(Date.parse(input.expiresAt) - 7 * DAY).toISOString(), status: 'skipped', reason: 'created-inside-window' },
      { reminder: '1d', dueAt: input.dueAt, status: 'failed', reason: 'PostmarkUnavailable: too late' },
    ],
  });

  expect(await findNotification(input.tokenId, '7d')).toMatchObject({ status: 'skipped', reason: 'created-inside-window' });
  expect(await row(input)).toMatchObject({ status: 'sent', reason: null });
  await markUnsent(db(), { ...input, reminder: '7d' }, { status: 'failed', reason: 'again' });
  expect(await findNotification(input.tokenId, '7d')).toMatchObject({ status: 'skipped', reason: 'created-inside-window' });
});

describe('digests (EXPIRY_DIGEST_WINDOW=1h): one email for a user\'s tokens falling due together', () => {
  const digests = (deps: Partial<ActivityDeps> = {}) => activities({ ...deps, env: { EXPIRY_DIGEST_WINDOW: '1h' } });
  const at = (time: number) => ({ clock: { now: async () => new Date(time) } });

  /** Three tokens of one user expiring 0, 10 and 20 s apart, three days from now, and their "1d" inputs. */
  async function threeTokens() {
    const first = await aToken();
    const expiry = first.token.expiredAt!.getTime();
    const others = [await aToken({ owner: first.owner, expiresAt: new Date(expiry + 10_000) }), await aToken({ owner: first.owner, expiresAt: new Date(expiry + 20_000) })];
    return { email: first.email, leader: first.input, tokens: [first, ...others].map((t) => t.input) };
  }

  test('a warning covers the others due within the allowance: one email, every row sent under its key, each with its timing', async () => {
    const { email, leader, tokens } = await threeTokens();
    const now = Date.parse(leader.dueAt);
    const { sendReminder } = digests(at(now));

    const result = await run(sendReminder, leader);

    expect(mailTo(email)).toHaveLength(1);
    const [message] = mailTo(email);
    expect(message!.Subject).toBe('3 of your crates.io API tokens expire tomorrow');
    expect(result).toEqual({ outcome: 'sent', messageId: message!.MessageID, digest: dedupeKey(leader), sentByTokenId: leader.tokenId });
    const rows = await Promise.all(tokens.map(row));
    expect(rows.map((r) => [r?.status, r?.digest, r?.sentByTokenId, r?.timing, r?.providerMessageId])).toEqual([
      ['sent', dedupeKey(leader), leader.tokenId, 'due', message!.MessageID],
      ['sent', dedupeKey(leader), leader.tokenId, 'early-for-digest', message!.MessageID],
      ['sent', dedupeKey(leader), leader.tokenId, 'early-for-digest', message!.MessageID],
    ]);

    // Each covered token's own workflow wakes at its due time and finds its row sent.
    const own = await run(digests(at(Date.parse(tokens[2]!.dueAt))).sendReminder, tokens[2]!);
    expect(own).toEqual({ outcome: 'sent', messageId: message!.MessageID, digest: dedupeKey(leader), sentByTokenId: leader.tokenId });
    expect(mailTo(email)).toHaveLength(1);
  });

  test('accepted but the answer lost: the retry finds the email by its key, records every row, and sends nothing', async () => {
    const { email, leader, tokens } = await threeTokens();
    postmark.failNext(1, { kind: 'acceptThenHang', ms: 2_500 });
    const { sendReminder } = digests({ ...at(Date.parse(leader.dueAt)), mailer: realMailer(1) });
    await failure(run(sendReminder, leader));
    expect((await Promise.all(tokens.map(row))).map((r) => r?.status)).toEqual(['sending', 'sending', 'sending']);
    await pause(UNKNOWN_LEASE_MS);

    const retried = await run(sendReminder, leader);

    expect(mailTo(email)).toHaveLength(1);
    expect(retried).toEqual({ outcome: 'sent', messageId: mailTo(email)[0]!.MessageID, digest: dedupeKey(leader), sentByTokenId: leader.tokenId });
    expect((await Promise.all(tokens.map(row))).map((r) => [r?.status, r?.attempts])).toEqual([
      ['sent', 2],
      ['sent', 1],
      ['sent', 1],
    ]);
  });

  test('a covered token whose leader died before sending takes its row back and sends it alone', async () => {
    const { email, leader, tokens } = await threeTokens();
    const member = tokens[1]!;
    // The leader's attempt claimed the member's row under the leader's key, then its worker died: the claim lapsed.
    await db().query(
      `INSERT INTO expiry_notifications (token_id, reminder, due_at, dedupe_key, status, attempts, claimed_until, sent_by_token_id)
       VALUES ($1, $2, $3, $4, 'sending', 1, now() - interval '1 second', $5)`,
      [member.tokenId, member.reminder, member.dueAt, dedupeKey(leader), leader.tokenId],
    );

    const result = await run(digests({ ...at(Date.parse(member.dueAt)), mailer: laggingSearch(realMailer()) }).sendReminder, member);

    expect(mailTo(email).map((m) => m.Subject)).toEqual(['crates.io: your API token "publish from CI" expires tomorrow']);
    expect(result).toMatchObject({ outcome: 'sent', digest: `${dedupeKey(member)}:a2` });
    expect(await row(member)).toMatchObject({ status: 'sent', digest: `${dedupeKey(member)}:a2`, attempts: 2 });
    expect(await row(leader)).toBeNull();
  });

  test('a covered token whose leader\'s email was accepted, its answer lost, finds that email by the leader\'s key and sends nothing', async () => {
    const { email, leader, tokens } = await threeTokens();
    const member = tokens[1]!;
    postmark.failNext(1, { kind: 'acceptThenHang', ms: 2_500 });
    await failure(run(digests({ ...at(Date.parse(leader.dueAt)), mailer: realMailer(1) }).sendReminder, leader));
    await pause(UNKNOWN_LEASE_MS);

    const own = await run(digests(at(Date.parse(member.dueAt))).sendReminder, member);
    const retried = await run(digests(at(Date.parse(leader.dueAt))).sendReminder, leader);

    const [message] = mailTo(email);
    expect(mailTo(email)).toHaveLength(1);
    expect(own).toMatchObject({ outcome: 'sent', messageId: message!.MessageID, digest: dedupeKey(leader) });
    expect(retried).toMatchObject({ outcome: 'sent', messageId: message!.MessageID, digest: dedupeKey(leader) });
    expect((await Promise.all(tokens.map(row))).map((r) => [r?.status, r?.providerMessageId, r?.timing])).toEqual([
      ['sent', message!.MessageID, 'due'],
      ['sent', message!.MessageID, 'due'],
      ['sent', message!.MessageID, 'early-for-digest'],
    ]);
  });

  test('a digest whose send was cut off twice before Postmark took it: the third attempt sends one email for all of them', async () => {
    const { email, leader, tokens } = await threeTokens();
    postmark.failNext(2, { kind: 'reset' });
    const { sendReminder } = digests(at(Date.parse(leader.dueAt)));
    for (const _ of [1, 2]) {
      expect(await failure(run(sendReminder, leader))).toMatchObject({ type: 'PostmarkNetworkError', nonRetryable: false });
      await pause(UNKNOWN_LEASE_MS);
    }

    const third = await run(sendReminder, leader);

    const key = `${dedupeKey(leader)}:a2:a3`;
    expect(mailTo(email).map((m) => m.Metadata.tokens)).toEqual(['3']);
    expect(third).toMatchObject({ outcome: 'sent', digest: key });
    expect((await Promise.all(tokens.map(row))).map((r) => [r?.status, r?.digest])).toEqual([
      ['sent', key],
      ['sent', key],
      ['sent', key],
    ]);
  });

  test(`more than ${DIGEST_MAX_TOKENS} tokens due together: two emails, the second under :part2; Postmark refusing it fails only its tokens`, async () => {
    const first = await aToken();
    const expiry = first.token.expiredAt!.getTime();
    const others: Awaited<ReturnType<typeof aToken>>[] = [];
    for (let i = 1; i <= DIGEST_MAX_TOKENS; i++) others.push(await aToken({ owner: first.owner, expiresAt: new Date(expiry + i * 100) }));
    let posts = 0;
    postmark.failWhile(() => (++posts === 2 ? { status: 422, errorCode: 406, message: 'You tried to send to a recipient that has been marked as inactive.' } : null));

    const result = await run(digests(at(Date.parse(first.input.dueAt))).sendReminder, first.input);

    const key = dedupeKey(first.input);
    const [message] = mailTo(first.email);
    expect(mailTo(first.email).map((m) => [m.Metadata.tokens, m.Metadata.dedupe_key])).toEqual([[String(DIGEST_MAX_TOKENS), key]]);
    expect(posts).toBe(2);
    expect(result).toEqual({ outcome: 'sent', messageId: message!.MessageID, digest: key, sentByTokenId: first.input.tokenId });
    const rows = await Promise.all([first, ...others].map((t) => row(t.input)));
    expect(rows.slice(0, DIGEST_MAX_TOKENS).map((r) => [r?.status, r?.digest])).toEqual(Array(DIGEST_MAX_TOKENS).fill(['sent', key]));
    expect(rows[DIGEST_MAX_TOKENS]).toMatchObject({ status: 'failed', digest: `${key}:part2`, reason: expect.stringMatching(/^PostmarkInactiveRecipient: /) });
  });

  test('an expired notice waits for the user\'s tokens expiring inside the window, then one email covers them, all waited-for-digest', async () => {
    const first = await aToken({ kind: 'expired' });
    const expiry = first.token.expiredAt!.getTime();
    const later = await aToken({ kind: 'expired', owner: first.owner, expiresAt: new Date(expiry + 30 * 60_000) });

    const waiting = await observe(digests(at(expiry)).sendReminder, first.input);

    const wait = { waitUntil: later.token.expiredAt!.toISOString() };
    expect(waiting.result).toEqual(wait);
    expect(waiting.lines).toEqual([
      expect.objectContaining({ message: "expired notice waits for the user's other tokens", tokenId: first.input.tokenId, until: wait.waitUntil }),
    ]);
    expect(await row(first.input)).toBeNull();
    expect(postmark.requests).toEqual([]);
    // The workflow sleeps until then and asks again, saying it waited: one email for both.
    const sent = await run(digests(at(expiry + 30 * 60_000)).sendReminder, { ...first.input, waited: true });
    expect(sent).toMatchObject({ outcome: 'sent', digest: dedupeKey(first.input) });
    expect(mailTo(first.email).map((m) => m.Subject)).toEqual(['2 of your crates.io API tokens have expired']);
    expect([await row(first.input), await row(later.input)].map((r) => [r?.status, r?.timing])).toEqual([
      ['sent', 'waited-for-digest'],
      ['sent', 'waited-for-digest'],
    ]);
  });
});

describe('what ops see: token_expiry_emails{outcome,type} and one log line per outcome, with ids and never the address', () => {
  test('a send counts sent/<kind> and logs the message id', async () => {
    const { email, input } = await aToken();
    const seen = await observe(activities().sendReminder, input);

    expect(seen.counted).toEqual([
      { name: 'token_expiry_emails', unit: 'emails', description: 'Reminder emails by outcome and type', value: 1, tags: { outcome: 'sent', type: 'warning' } },
      { name: 'token_expiry_digest_emails', unit: 'emails', description: 'Reminder emails sent', value: 1, tags: {} },
      { name: 'token_expiry_digest_tokens', unit: 'tokens', description: 'Tokens covered by reminder emails', value: 1, tags: {} },
    ]);
    const messageId = mailTo(email)[0]!.MessageID;
    expect(seen.lines).toEqual([expect.objectContaining({ message: 'email sent', tokenId: input.tokenId, reminder: '1d', messageId })]);
    expect(seen.logText).not.toContain(email);
  });

  test('a skip counts skipped/<reason>; a permanent rejection failed/<type>; a row already sent counts nothing more', async () => {
    const revoked = await aToken();
    await db().query('UPDATE api_tokens SET revoked = true WHERE id = $1', [revoked.input.tokenId]);
    const skip = await observe(activities().sendReminder, revoked.input);
    expect(skip.emails).toEqual([{ outcome: 'skipped', type: 'token-revoked', value: 1 }]);
    expect(skip.lines).toEqual([
      expect.objectContaining({ message: 'reminder skipped', tokenId: revoked.input.tokenId, reminder: '1d', reason: 'token-revoked' }),
    ]);
    expect(skip.warnings).toEqual([]);

    const rejected = await aToken();
    postmark.failNext(1, { status: 422, errorCode: 406 });
    const fail = await observe(activities().sendReminder, rejected.input);
    expect(fail.emails).toEqual([{ outcome: 'failed', type: 'PostmarkInactiveRecipient', value: 1 }]);
    expect(fail.logText).not.toContain(rejected.email);

    const again = await observe(activities().sendReminder, revoked.input);
    expect(again.emails).toEqual([]);
  });

  test('a retry that finds the message an earlier attempt got accepted logs that, and sends nothing', async () => {
    const { email, input } = await aToken();
    postmark.failNext(1, { kind: 'acceptThenHang', ms: 2_500 });
    const { sendReminder } = activities({ mailer: realMailer(1) });
    await failure(run(sendReminder, input));
    await pause(UNKNOWN_LEASE_MS);

    const seen = await observe(sendReminder, input);

    const messageId = mailTo(email)[0]!.MessageID;
    expect(seen.lines).toEqual([
      expect.objectContaining({ message: 'email was sent by an earlier attempt', tokenId: input.tokenId, reminder: '1d', messageId }),
    ]);
    expect(mailTo(email)).toHaveLength(1);
  });

  test('recordOutcomes counts a failure by the type its reason starts with, and a skip not at all', async () => {
    const { input } = await aToken();
    const seen = await observe(activities().recordOutcomes, {
      instance: TEST_INSTANCE,
      tokenId: input.tokenId,
      outcomes: [
        { reminder: '7d', dueAt: new Date(Date.parse(input.expiresAt) - 7 * DAY).toISOString(), status: 'skipped', reason: 'created-inside-window' },
        { reminder: '1d', dueAt: input.dueAt, status: 'failed', reason: 'PostmarkUnavailable: Postmark 503 (ErrorCode 0): down' },
      ],
    });
    expect(seen.emails).toEqual([{ outcome: 'failed', type: 'PostmarkUnavailable', value: 1 }]);
  });

  test('ReminderBusy without a lease to wait for retries on the backoff', () => {
    expect(reminderBusy('x', null).nextRetryDelay).toBeUndefined();
    expect(reminderBusy('x', 0).nextRetryDelay).toBeUndefined();
    expect(reminderBusy('x', -5).nextRetryDelay).toBeUndefined();
    expect(reminderBusy('x', 1).nextRetryDelay).toBe(1_001);
  });
});

/** Until the condition holds; gives up (failing the test, not hanging it) after 5 s. */
async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met within 5 s');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
