// Digests (EXPIRY_DIGEST_WINDOW, default 1h): one email per user for their tokens falling due together.
// Real PostgreSQL, the time-skipping server, the real postmark client against the fake. Tests that name which
// token leads a group turn the spread off (EXPIRY_SPREAD=0), so that the first created is the first due.
import type { TokenExpiryStatus } from '../src/tokenExpiry/contract';
import { presentExpiry } from '../src/api/present';
import { listNotifications, type NotificationRow } from '../src/db/notifications';
import type { Mailer } from '../src/email/postmarkMailer';
import type { CreatedToken, TokenService } from '../src/tokens/service';
import { TestSystem, type TestUser } from './helpers/system';
import { replaysAndSave } from './helpers/histories';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const system = TestSystem.use();

/** Tokens of one user, the i-th expiring `offsetsMs[i]` after `lifetimeMs` from now (created in the same minute). */
async function createTokens(tokens: TokenService, user: TestUser, lifetimeMs: number, offsetsMs: number[]) {
  const start = Date.now();
  const created: CreatedToken[] = [];
  for (const [i, offset] of offsetsMs.entries()) {
    created.push(
      await tokens.create(user, {
        name: `ci-${i + 1}`,
        expiresAt: new Date(start + lifetimeMs + offset),
        crateScopes: [`crate-${i + 1}`],
        endpointScopes: null,
      }),
    );
  }
  return created;
}

/** Waits for every workflow, one result at a time (concurrent awaits make the test server skip time without bound). */
async function results(created: CreatedToken[]): Promise<TokenExpiryStatus[]> {
  const done: TokenExpiryStatus[] = [];
  for (const c of created) {
    done.push(
      await system.env.client.workflow
        .getHandle(c.workflowId as string)
        .result()
        .catch(() => ({ state: 'cancelled' }) as TokenExpiryStatus),
    );
  }
  return done;
}

async function rowsOf(created: CreatedToken[]): Promise<NotificationRow[][]> {
  return Promise.all(created.map((c) => listNotifications(system.db, c.token.id)));
}

function mailTo(email: string) {
  return system.postmark.sent.filter((m) => m.To === email);
}

test('five tokens of one user created in the same minute with one lifetime: one email per reminder, listing all five', async () => {
  const config = system.config();
  const tokens = system.tokens(config);
  const user = await system.newUser();
  const created = await createTokens(tokens, user, 90 * DAY, [0, 10_000, 20_000, 30_000, 40_000]);
  const [leader] = created;

  // What ops see, asked while the worker runs: `tokens status` and the API's expiry view.
  const [statuses, view] = await system.withWorker(config, async () => {
    const done = await results(created);
    return [done, presentExpiry(await tokens.status(created[3]!.token.id))] as const;
  });
  await replaysAndSave(system.env.client.workflow.getHandle(leader!.workflowId as string), 'digest-expired-notice-waited');

  const mail = mailTo(user.email);
  expect(mail.map((m) => m.Subject)).toEqual([
    '5 of your crates.io API tokens expire in 7 days',
    '5 of your crates.io API tokens expire tomorrow',
    '5 of your crates.io API tokens have expired',
  ]);
  for (const message of mail) {
    for (const c of created) {
      expect(message.TextBody).toContain(`Token:     ${c.token.name}\n`);
      expect(message.TextBody).toContain(`https://crates.io/settings/tokens/new?from=${c.token.id}`);
      expect(message.TextBody).toContain(c.token.expiredAt!.toISOString().replace(/\.\d{3}Z$/, 'Z'));
      expect(message.HtmlBody).toContain(`crate-${c.token.name.slice(3)}`);
    }
    expect(message.Metadata?.dedupe_key).toMatch(new RegExp(`^token-expiry:${leader!.token.id}:`));
  }

  // Every token's rows record the email that covered it and the token whose workflow sent it.
  const rows = await rowsOf(created);
  for (const [i, tokenRows] of rows.entries()) {
    expect(tokenRows.map((r) => [r.reminder, r.status, r.providerMessageId, r.sentByTokenId])).toEqual(
      ['7d', '1d', 'expired'].map((reminder, j) => [reminder, 'sent', mail[j]!.MessageID, leader!.token.id]),
    );
    // The later four went early (warnings) or waited for the last one (the expired notice); the leader's warnings were due.
    expect(tokenRows.map((r) => r.timing)).toEqual(
      i === 0 ? ['due', 'due', 'waited-for-digest'] : ['early-for-digest', 'early-for-digest', 'waited-for-digest'],
    );
    expect(statuses[i]!.state).toBe('completed');
    expect(statuses[i]!.reminders.map((r) => [r.outcome, r.messageId, r.sentByTokenId ?? leader!.token.id])).toEqual(
      mail.map((m) => ['sent', m.MessageID, leader!.token.id]),
    );
  }

  // Both name, per row and per reminder, the email and the token whose workflow sent it.
  expect(view.workflow?.reminders.map((r) => [r.key, r.digest, r.sent_by_token_id])).toEqual(
    mail.map((m, j) => [['7d', '1d', 'expired'][j], m.Metadata.dedupe_key, leader!.token.id]),
  );
  expect(view.notifications.map((n) => [n.reminder, n.digest, n.sent_by_token_id, n.provider_message_id])).toEqual(
    mail.map((m, j) => [['7d', '1d', 'expired'][j], m.Metadata.dedupe_key, leader!.token.id, m.MessageID]),
  );

  // The email's time is the leader's (workflow time). No warning later than its own due time, none more than
  // the window early; the expired notice never early, and sent when the last of the five expired.
  const sentAt = statuses[0]!.reminders.map((r) => Date.parse(r.at!));
  const lastExpiry = created[4]!.token.expiredAt!.getTime();
  for (const tokenRows of rows) {
    for (const [j, row] of tokenRows.entries()) {
      const early = row.dueAt.getTime() - sentAt[j]!;
      if (row.reminder === 'expired') {
        expect(sentAt[j]).toBeGreaterThanOrEqual(lastExpiry);
        expect(-early).toBeLessThanOrEqual(HOUR);
      } else {
        expect(early).toBeLessThanOrEqual(HOUR);
        expect(early).toBeGreaterThan(-60_000);
      }
    }
  }
  // The leader's own warnings went at their due time.
  for (const [j, row] of rows[0]!.slice(0, 2).entries()) {
    expect(sentAt[j]! - row.dueAt.getTime()).toBeGreaterThanOrEqual(0);
    expect(sentAt[j]! - row.dueAt.getTime()).toBeLessThan(60_000);
  }
});

test('tokens of one user due three days apart: separate emails, each on time', async () => {
  const config = system.config();
  const tokens = system.tokens(config);
  const user = await system.newUser();
  const created = await createTokens(tokens, user, 30 * DAY, [0, 3 * DAY]);

  const statuses = await system.withWorker(config, () => results(created));

  const mail = mailTo(user.email);
  expect(mail).toHaveLength(6);
  for (const message of mail) expect(message.Subject).toMatch(/^crates\.io: your API token "ci-[12]" /);
  for (const tokenRows of await rowsOf(created)) {
    expect(tokenRows.map((r) => [r.reminder, r.status, r.timing])).toEqual([
      ['7d', 'sent', 'due'],
      ['1d', 'sent', 'due'],
      ['expired', 'sent', 'due'],
    ]);
  }
  for (const status of statuses) {
    for (const reminder of status.reminders) {
      const lateness = Date.parse(reminder.at!) - Date.parse(reminder.dueAt);
      expect(lateness).toBeGreaterThanOrEqual(0);
      expect(lateness).toBeLessThan(60_000);
    }
  }
  expect(new Set(mail.map((m) => m.MessageID)).size).toBe(6);
});

describe('a token of the group that cannot go', () => {
  const oneWarning = { EXPIRY_REMINDERS: '7d', EXPIRED_NOTICE: 'false', EXPIRY_SPREAD: '0' };

  test('revoked: left out with its reason, the rest go', async () => {
    const config = system.config(oneWarning);
    const tokens = system.tokens(config);
    const user = await system.newUser();
    const created = await createTokens(tokens, user, 30 * DAY, [0, 10_000, 20_000]);
    await tokens.revoke(created[1]!.token.id);

    await system.withWorker(config, () => results(created));

    const mail = mailTo(user.email);
    expect(mail.map((m) => m.Subject)).toEqual(['2 of your crates.io API tokens expire in 7 days']);
    expect(mail[0]!.TextBody).toContain('ci-1');
    expect(mail[0]!.TextBody).toContain('ci-3');
    expect(mail[0]!.TextBody).not.toContain('ci-2');
    const rows = await rowsOf(created);
    expect(rows.map((r) => r.map((row) => [row.status, row.reason]))).toEqual([
      [['sent', null]],
      [['skipped', 'token-revoked']],
      [['sent', null]],
    ]);
  });

  test('the owner lost their verified address: every token of the group is skipped with that reason', async () => {
    const config = system.config(oneWarning);
    const tokens = system.tokens(config);
    const user = await system.newUser();
    const created = await createTokens(tokens, user, 30 * DAY, [0, 10_000, 20_000]);
    await system.db.query('UPDATE emails SET verified = false WHERE user_id = $1', [user.id]);

    await system.withWorker(config, () => results(created));

    expect(system.postmark.sent).toHaveLength(0);
    const rows = await rowsOf(created);
    expect(rows.map((r) => r.map((row) => [row.status, row.reason, row.sentByTokenId]))).toEqual(
      created.map(() => [['skipped', 'no-verified-email', created[0]!.token.id]]),
    );
  });
});

test('Postmark accepted the group\'s email but the attempt lost the answer: the retry finds it, nothing is sent twice', async () => {
  const config = system.config({ EXPIRY_REMINDERS: '1d', EXPIRED_NOTICE: 'false', EXPIRY_SPREAD: '0' });
  const tokens = system.tokens(config);
  const user = await system.newUser();
  const created = await createTokens(tokens, user, 10 * DAY, [0, 10_000, 20_000, 30_000]);
  // The first send reaches Postmark, which accepts it; then the attempt dies before it hears back.
  const real = system.mailer(config);
  let sends = 0;
  const mailer: Mailer = {
    findSent: (key) => real.findSent(key),
    async send(email) {
      const delivery = await real.send(email);
      if (++sends === 1) throw new Error('worker lost after Postmark accepted the email');
      return delivery;
    },
  };

  const statuses = await system.withWorker(config, () => results(created), { mailer });

  expect(sends).toBe(1);
  const mail = mailTo(user.email);
  expect(mail.map((m) => m.Subject)).toEqual(['4 of your crates.io API tokens expire tomorrow']);
  const rows = await rowsOf(created);
  expect(rows.map((r) => r.map((row) => [row.status, row.providerMessageId]))).toEqual(
    created.map(() => [['sent', mail[0]!.MessageID]]),
  );
  expect(rows[0]![0]).toMatchObject({ attempts: 2, lastError: expect.stringContaining('PostmarkUnexpected') });
  expect(statuses.map((s) => s.reminders[0]!.outcome)).toEqual(['sent', 'sent', 'sent', 'sent']);
});

describe('who shares an email', () => {
  test('two users\' tokens due in the same second never share one', async () => {
    const config = system.config({ EXPIRY_REMINDERS: '1d', EXPIRED_NOTICE: 'false', EXPIRY_SPREAD: '0' });
    const tokens = system.tokens(config);
    const [alice, bob] = [await system.newUser(), await system.newUser()];
    const expiresAt = new Date(Math.ceil((Date.now() + 10 * DAY) / 1000) * 1000);
    const created: CreatedToken[] = [];
    for (const user of [alice!, bob!, alice!, bob!]) {
      created.push(await tokens.create(user, { name: `ci-${user.login}`, expiresAt, crateScopes: null, endpointScopes: null }));
    }

    await system.withWorker(config, () => results(created));

    for (const user of [alice!, bob!]) {
      const mail = mailTo(user.email);
      expect(mail.map((m) => m.Subject)).toEqual(['2 of your crates.io API tokens expire tomorrow']);
      expect(mail[0]!.TextBody).toContain(`Hello ${user.login},`);
      expect(mail[0]!.TextBody).toContain(`ci-${user.login}`);
    }
    expect(system.postmark.sent).toHaveLength(2);
    const rows = await rowsOf(created);
    expect(rows.map((r) => r[0]!.providerMessageId)).toEqual([
      mailTo(alice!.email)[0]!.MessageID,
      mailTo(bob!.email)[0]!.MessageID,
      mailTo(alice!.email)[0]!.MessageID,
      mailTo(bob!.email)[0]!.MessageID,
    ]);
  });

  test('150 tokens of one user go in two emails of one digest', async () => {
    const config = system.config({ EXPIRY_REMINDERS: '1d', EXPIRED_NOTICE: 'false', EXPIRY_SPREAD: '0' });
    const tokens = system.tokens(config);
    const user = await system.newUser();
    const created = await createTokens(tokens, user, 10 * DAY, Array.from({ length: 150 }, (_, i) => i * 1_000));

    await system.withWorker(config, () => results(created));

    const mail = mailTo(user.email);
    expect(mail.map((m) => m.Subject)).toEqual([
      '100 of your crates.io API tokens expire tomorrow',
      '50 of your crates.io API tokens expire tomorrow',
    ]);
    const entries = mail.map((m) => (m.TextBody ?? '').split('\n').filter((line) => line.startsWith('  Token:')).length);
    expect(entries).toEqual([100, 50]);
    const rows = (await rowsOf(created)).map((r) => r[0]!);
    expect(rows.every((r) => r.status === 'sent' && r.sentByTokenId === created[0]!.token.id)).toBe(true);
    expect(rows.slice(0, 100).every((r) => r.providerMessageId === mail[0]!.MessageID)).toBe(true);
    expect(rows.slice(100).every((r) => r.providerMessageId === mail[1]!.MessageID)).toBe(true);
    expect(mail[1]!.Metadata.dedupe_key).toBe(`${mail[0]!.Metadata.dedupe_key}:part2`);
  });
});
