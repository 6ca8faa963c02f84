/**
 * The send activity on its own, without a Temporal server: real PostgreSQL, the real postmark client and
 * the fake Postmark, run in MockActivityEnvironment. Each test is one send as a worker would attempt it:
 * what reaches the owner, what the notification log says, and how a retry would go on.
 */
import { randomBytes } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities/tokenExpiry';
import { loadConfig } from '../src/config';
import { dedupeKey, listNotifications, markUnsent } from '../src/db/notifications';
import { findToken, insertToken } from '../src/db/tokens';
import { insertUser } from '../src/db/users';
import { createPostmarkMailer, type Mailer } from '../src/email/postmarkMailer';
import { startFakePostmark, type FakePostmark } from '../scripts/devtools/fakePostmark';
import type { SendReminderInput } from '../src/tokenExpiry/contract';
import { createTestDatabase, type TestDatabase } from './helpers/database';

const DAY = 86_400_000;
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
  // One email per token: this file guards the single send; test/tokenExpiry.digest.test.ts the digest's.
  return loadConfig({ REGISTRY_NAME: 'crates.io', REGISTRY_URL: 'https://crates.io', EMAIL_FROM: 'crates.io <noreply@crates.io>', EXPIRY_DIGEST_WINDOW: '0', ...env });
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
  return createActivities({ db: db(), mailer: realMailer(), clock: { now: async () => new Date() }, config: config(env), ...rest });
}

/** A user (verified unless asked) with a token expiring in `expiresInMs`, and the input of its "1d" reminder. */
async function aToken({ expiresInMs = 3 * DAY, verified = true, kind = 'warning' as SendReminderInput['kind'] } = {}) {
  const login = `owner${++users}-${randomBytes(3).toString('hex')}`;
  const email = `${login}@example.com`;
  const user = await insertUser(db(), { login, email, verified });
  const token = await insertToken(db(), {
    userId: user.id,
    hash: randomBytes(32),
    name: 'publish from CI',
    expiredAt: new Date(Date.now() + expiresInMs),
    crateScopes: ['serde'],
    endpointScopes: null,
  });
  const expiresAt = token.expiredAt!.toISOString();
  const input: SendReminderInput = {
    tokenId: token.id,
    reminder: kind === 'expired' ? 'expired' : '1d',
    kind,
    dueAt: kind === 'expired' ? expiresAt : new Date(token.expiredAt!.getTime() - DAY).toISOString(),
    expiresAt,
  };
  return { login, email, token, input };
}

const quiet = new DefaultLogger('WARN');
const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> =>
  new MockActivityEnvironment(undefined, { logger: quiet }).run(fn, ...args);

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
  expect(result).toEqual({ outcome: 'sent', messageId: message!.MessageID });
  expect(message).toMatchObject({
    From: 'crates.io <noreply@crates.io>',
    Subject: 'crates.io: your API token "publish from CI" expires in 3 days',
    Tag: 'token-expiry-warning',
    Metadata: { token_id: input.tokenId, reminder: '1d', dedupe_key: dedupeKey(input) },
  });
  expect(await row(input)).toMatchObject({ status: 'sent', attempts: 1, providerMessageId: message!.MessageID, reason: null });
  expect((await findToken(db(), input.tokenId))?.expiryNotificationAt).toBeInstanceOf(Date);
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
    // A retry, and the workflow recording a reminder it gave up on, end too instead of failing on the foreign key.
    expect(await run(sendReminder, input)).toEqual({ outcome: 'skipped', reason: 'token-deleted' });
    await run(recordOutcomes, { tokenId: input.tokenId, outcomes: [{ reminder: input.reminder, dueAt: input.dueAt, status: 'skipped', reason: 'superseded-by-expired' }] });
    expect(postmark.requests).toEqual([]);
    expect(mailTo(email)).toHaveLength(0);
    expect(await listNotifications(db(), input.tokenId)).toEqual([]);
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
    expect(again).toMatchObject({ type: 'ReminderFailed', nonRetryable: true });
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

  test('accepted but the answer lost: the retry finds the message by its key and does not send again', async () => {
    const { email, input } = await aToken();
    postmark.failNext(1, { kind: 'acceptThenHang', ms: 2_500 });
    const { sendReminder } = activities({ mailer: realMailer(1) });

    const err = await failure(run(sendReminder, input));
    expect(err).toMatchObject({ type: 'PostmarkTimeout', nonRetryable: false });

    const retried = await run(sendReminder, input);

    expect(mailTo(email)).toHaveLength(1);
    expect(retried).toEqual({ outcome: 'sent', messageId: mailTo(email)[0]!.MessageID });
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
    expect(err.nonRetryable).toBe(false);
    const delay = Number(err.nextRetryDelay);
    expect(delay).toBeGreaterThan(19_000);
    expect(delay).toBeLessThanOrEqual(21_000);
    expect(mailTo(email)).toHaveLength(0);
    expect(await row(input)).toMatchObject({ status: 'sending', attempts: 1 });
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

  test('a send waits for its turn from the pacer before Postmark is called; a skip does not ask for one', async () => {
    const { email, input } = await aToken();
    const revoked = await aToken();
    await db().query('UPDATE api_tokens SET revoked = true WHERE id = $1', [revoked.input.tokenId]);
    let release: () => void = () => undefined;
    const turns: string[] = [];
    const pace = () => {
      turns.push('asked');
      return new Promise<void>((resolve) => (release = resolve));
    };
    const { sendReminder } = activities({ pace });

    await run(sendReminder, revoked.input);
    expect(turns).toEqual([]);
    const sending = run(sendReminder, input);
    await waitFor(() => turns.length === 1);
    expect(postmark.requests).toEqual([]);
    release();
    await sending;
    expect(mailTo(email)).toHaveLength(1);
  });
});

test('recordOutcomes logs skipped and failed reminders, and leaves a row already sent as it was', async () => {
  const { input } = await aToken();
  const { sendReminder, recordOutcomes } = activities();
  await run(sendReminder, input);

  await run(recordOutcomes, {
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

/** Until the condition holds; gives up (failing the test, not hanging it) after 5 s. */
async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met within 5 s');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
