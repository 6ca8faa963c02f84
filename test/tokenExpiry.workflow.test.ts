import { randomBytes } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { tokenExpiryWorkflowId, type TokenExpiryStatus } from '../src/tokenExpiry/contract';
import { listNotifications } from '../src/db/notifications';
import { builtinRegistry } from '../src/registry/builtin';
import { startTokenExpiryWorkflow } from '../src/tokenExpiry/client';
import { createTokenService } from '../src/tokens/service';
import { findNeedles, needlesFor, textsOf } from './helpers/privacyScan';
import { warningOffsetMs } from '../src/tokenExpiry/spread';
import { TestSystem } from './helpers/system';
import { TEST_INSTANCE } from './helpers/database';
import { registryAdapter } from '../src/registry';

const DAY = 86_400_000;

const system = TestSystem.use();
function mailTo(email: string) {
  return system.postmark.sent.filter((m) => m.To === email);
}

test('a 90-day token gets each configured email at its due time, once', async () => {
  const config = system.config();
  const tokens = system.tokens(config);
  const user = await system.newUser();
  const name = '<b>deploy</b> & "ci"';
  const created = await tokens.create(user, {
    name,
    expiresAt: new Date(Date.now() + 90 * DAY),
    crateScopes: ['serde*'],
    endpointScopes: ['publish-update'],
  });
  expect(created.workflowId).toBe(tokenExpiryWorkflowId(created.token.id, TEST_INSTANCE));
  expect(created.workflowError).toBeUndefined();

  const result: TokenExpiryStatus = await system.withWorker(config, () =>
    system.env.client.workflow.getHandle(created.workflowId as string).result(),
  );

  const mail = mailTo(user.email);
  expect(mail.map((m) => m.Subject)).toEqual([
    'crates.io: your API token "<b>deploy</b> & "ci"" expires in 7 days',
    'crates.io: your API token "<b>deploy</b> & "ci"" expires tomorrow',
    'crates.io: your API token "<b>deploy</b> & "ci"" has expired',
  ]);
  for (const message of mail) {
    expect(message.TextBody).toContain(`https://crates.io/settings/tokens/new?from=${created.token.id}`);
    expect(message.HtmlBody).toContain('&lt;b&gt;deploy&lt;/b&gt; &amp; &quot;ci&quot;');
    expect(message.HtmlBody).not.toContain('<b>deploy</b>');
    // The token row's last_used_at reaches the email: this one was never used.
    expect(message.TextBody).toMatch(/This token (has never been|was never) used/);
    expect(message.Metadata?.dedupe_key).toMatch(new RegExp(`^token-expiry:${created.token.id}:`));
  }

  // Each went out at its due workflow time (the activity's round trip aside), a warning up to EXPIRY_SPREAD early.
  expect(result.state).toBe('completed');
  expect(result.reminders.map((r) => [r.key, r.outcome])).toEqual([
    ['7d', 'sent'],
    ['1d', 'sent'],
    ['expired', 'sent'],
  ]);
  const expiresAt = created.token.expiredAt!.getTime();
  const offsets = { '7d': 7 * DAY, '1d': DAY, expired: 0 } as Record<string, number>;
  for (const reminder of result.reminders) {
    const lead = offsets[reminder.key]!;
    const due = expiresAt - lead - (lead > 0 ? warningOffsetMs(created.token.id, lead, config.EXPIRY_SPREAD) : 0);
    expect(Date.parse(reminder.dueAt)).toBe(due);
    const lateness = Date.parse(reminder.at!) - due;
    expect(lateness).toBeGreaterThanOrEqual(0);
    expect(lateness).toBeLessThan(60_000);
  }

  const rows = await listNotifications(system.db, created.token.id);
  expect(rows.map((r) => [r.reminder, r.status, r.attempts])).toEqual([
    ['7d', 'sent', 1],
    ['1d', 'sent', 1],
    ['expired', 'sent', 1],
  ]);
  expect(rows.map((r) => r.providerMessageId)).toEqual(mail.map((m) => m.MessageID));
});

async function expectCancelled(workflowId: string): Promise<void> {
  const err = await system.env.client.workflow
    .getHandle(workflowId)
    .result()
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
}

describe('revoking the token', () => {
  test('while the workflow sleeps: it ends Cancelled and nothing is sent', async () => {
    const config = system.config();
    const tokens = system.tokens(config);
    const user = await system.newUser();
    const created = await system.createToken(tokens, user, 90 * DAY);
    const workflowId = created.workflowId as string;

    await system.withWorker(config, async () => {
      await system.env.sleep(30 * DAY);
      const revoked = await tokens.revoke(created.token.id);
      expect(revoked.workflowCancelled).toBe(true);
      await expectCancelled(workflowId);
    });

    expect(mailTo(user.email)).toHaveLength(0);
    expect(await listNotifications(system.db, created.token.id)).toEqual([]);
    const description = await system.env.client.workflow.getHandle(workflowId).describe();
    expect(description.status.name).toBe('CANCELLED');
  });

  test('between two reminders: the first is sent, the rest are not', async () => {
    const config = system.config();
    const tokens = system.tokens(config);
    const user = await system.newUser();
    const created = await system.createToken(tokens, user, 90 * DAY);

    await system.withWorker(config, async () => {
      await system.env.sleep(85 * DAY);
      expect(mailTo(user.email).map((m) => m.Subject)).toEqual(['crates.io: your API token "ci" expires in 7 days']);
      await tokens.revoke(created.token.id);
      await expectCancelled(created.workflowId as string);
    });

    expect(mailTo(user.email)).toHaveLength(1);
    const rows = await listNotifications(system.db, created.token.id);
    expect(rows.map((r) => [r.reminder, r.status])).toEqual([['7d', 'sent']]);
  });

  test('while Temporal is away, so the cancel fails: the revoke says so, and no reminder is sent', async () => {
    const config = system.config();
    const user = await system.newUser();
    const created = await system.tokens(config).create(user, {
      name: 'ci',
      expiresAt: new Date(Date.now() + 30 * DAY),
      crateScopes: null,
      endpointScopes: null,
    });
    const temporalAway = createTokenService({
      db: system.db,
      registry: registryAdapter(config),
      temporal: async () => {
        throw new Error('connect ECONNREFUSED 127.0.0.1:7233');
      },
      config,
    });

    const revoked = await temporalAway.revoke(created.token.id);

    expect(revoked).toMatchObject({ workflowCancelled: false, workflowError: expect.stringMatching(/^could not cancel: .*ECONNREFUSED/) });
    expect(revoked.token.revoked).toBe(true);
    // The workflow never heard of the revoke: it sleeps on, and each reminder falls due.
    const result: TokenExpiryStatus = await system.withWorker(config, () =>
      system.env.client.workflow.getHandle(created.workflowId as string).result(),
    );
    expect(mailTo(user.email)).toEqual([]);
    expect(result.reminders.map((r) => [r.key, r.outcome, r.reason])).toEqual([
      ['7d', 'skipped', 'token-revoked'],
      ['1d', 'skipped', 'token-revoked'],
      ['expired', 'skipped', 'token-revoked'],
    ]);
    const rows = await listNotifications(system.db, created.token.id);
    expect(rows.map((r) => [r.reminder, r.status, r.reason])).toEqual([
      ['7d', 'skipped', 'token-revoked'],
      ['1d', 'skipped', 'token-revoked'],
      ['expired', 'skipped', 'token-revoked'],
    ]);
  });
});

test('a token row deleted by SQL while its workflow sleeps: every reminder skipped, token-deleted, and the run ends', async () => {
  const config = system.config();
  const user = await system.newUser();
  const created = await system.createToken(system.tokens(config), user, 30 * DAY);
  await system.db.query('DELETE FROM api_tokens WHERE id = $1', [created.token.id]);

  const result: TokenExpiryStatus = await system.withWorker(config, () =>
    system.env.client.workflow.getHandle(created.workflowId as string).result(),
  );

  expect(result.state).toBe('completed');
  expect(result.reminders.map((r) => [r.key, r.outcome, r.reason])).toEqual([
    ['7d', 'skipped', 'token-deleted'],
    ['1d', 'skipped', 'token-deleted'],
    ['expired', 'skipped', 'token-deleted'],
  ]);
  expect(mailTo(user.email)).toEqual([]);
  // Recorded in our log, which keeps what happened to a token after the registry deleted it.
  expect((await listNotifications(system.db, created.token.id)).map((r) => [r.reminder, r.status, r.reason])).toEqual([
    ['7d', 'skipped', 'token-deleted'],
    ['1d', 'skipped', 'token-deleted'],
    ['expired', 'skipped', 'token-deleted'],
  ]);
});

describe('reminders that are already due', () => {
  test('a token created inside a reminder window does not get that reminder', async () => {
    const config = system.config();
    const tokens = system.tokens(config);
    const user = await system.newUser();
    const created = await tokens.create(user, {
      name: 'short-lived',
      expiresAt: new Date(Date.now() + 3 * DAY),
      crateScopes: null,
      endpointScopes: null,
    });

    const result: TokenExpiryStatus = await system.withWorker(config, () =>
      system.env.client.workflow.getHandle(created.workflowId as string).result(),
    );

    expect(mailTo(user.email).map((m) => m.Subject)).toEqual([
      'crates.io: your API token "short-lived" expires tomorrow',
      'crates.io: your API token "short-lived" has expired',
    ]);
    expect(result.reminders.map((r) => [r.key, r.outcome, r.reason])).toEqual([
      ['7d', 'skipped', 'created-inside-window'],
      ['1d', 'sent', undefined],
      ['expired', 'sent', undefined],
    ]);
    const rows = await listNotifications(system.db, created.token.id);
    expect(rows.map((r) => [r.reminder, r.status, r.reason])).toEqual([
      ['7d', 'skipped', 'created-inside-window'],
      ['1d', 'sent', null],
      ['expired', 'sent', null],
    ]);
  });

  test('a late start after several due times sends only the tightest', async () => {
    const config = system.config({ EXPIRY_REMINDERS: '30d,7d,1d' });
    const user = await system.newUser();
    // A token from before the system existed: 60 days old, expiring in 12 hours.
    const { rows } = await system.db.query<{ id: string }>(
      `INSERT INTO api_tokens (user_id, token, name, created_at, expired_at)
       VALUES ($1, $2, 'legacy', now() - interval '60 days', now() + interval '12 hours') RETURNING id::text`,
      [user.id, Buffer.from(`legacy-${user.id}`)],
    );
    const token = (await builtinRegistry.findToken(system.db, rows[0]!.id))!;
    const workflowId = await startTokenExpiryWorkflow(system.env.client, token, config);

    const result: TokenExpiryStatus = await system.withWorker(config, () =>
      system.env.client.workflow.getHandle(workflowId).result(),
    );

    expect(mailTo(user.email).map((m) => m.Subject)).toEqual([
      'crates.io: your API token "legacy" expires in 12 hours',
      'crates.io: your API token "legacy" has expired',
    ]);
    expect(result.reminders.map((r) => [r.key, r.outcome, r.reason])).toEqual([
      ['30d', 'skipped', 'superseded-by-1d'],
      ['7d', 'skipped', 'superseded-by-1d'],
      ['1d', 'sent', undefined],
      ['expired', 'sent', undefined],
    ]);
  });
});

describe('when Postmark fails', () => {
  const oneReminder = { EXPIRY_REMINDERS: '1d', EXPIRED_NOTICE: 'false' };

  async function runOneToken(config = system.config(oneReminder), mailer?: ReturnType<TestSystem['mailer']>) {
    const tokens = system.tokens(config);
    const user = await system.newUser();
    const created = await system.createToken(tokens, user, 10 * DAY);
    const result: TokenExpiryStatus = await system.withWorker(
      config,
      () => system.env.client.workflow.getHandle(created.workflowId as string).result(),
      { mailer },
    );
    const rows = await listNotifications(system.db, created.token.id);
    const attempts = system.postmark.requests.filter((r) => r.method === 'POST' && r.path === '/email');
    return { user, result, rows, attempts };
  }

  test('500 and 429 a few times, then success: exactly one email', async () => {
    system.postmark.failNext(2, { status: 500 });
    system.postmark.failNext(1, { status: 429, errorCode: 0, message: 'Rate limit exceeded' });

    const { user, result, rows, attempts } = await runOneToken();

    expect(mailTo(user.email)).toHaveLength(1);
    expect(attempts.map((a) => a.status)).toEqual([500, 500, 429, 200]);
    expect(result.reminders[0]).toMatchObject({ key: '1d', outcome: 'sent' });
    expect(rows[0]).toMatchObject({ status: 'sent', attempts: 4, lastError: expect.stringContaining('PostmarkRateLimited') });
  });

  test.each([
    [300, 'PostmarkInvalidRequest'],
    [406, 'PostmarkInactiveRecipient'],
  ])('422 with ErrorCode %i: no retries, recorded as failed, and the next reminder still goes out', async (errorCode, type) => {
    system.postmark.failNext(1, { status: 422, errorCode });
    const config = system.config({ EXPIRY_REMINDERS: '7d,1d', EXPIRED_NOTICE: 'false' });

    const { user, result, rows, attempts } = await runOneToken(config);

    expect(attempts.map((a) => a.status)).toEqual([422, 200]);
    expect(mailTo(user.email).map((m) => m.Subject)).toEqual(['crates.io: your API token "ci" expires tomorrow']);
    expect(result.reminders.map((r) => [r.key, r.outcome])).toEqual([
      ['7d', 'failed'],
      ['1d', 'sent'],
    ]);
    expect(rows[0]).toMatchObject({ reminder: '7d', status: 'failed', attempts: 1 });
    expect(rows[0]!.reason).toContain(type);
    expect(rows[0]!.reason).toContain(`ErrorCode ${errorCode}`);
    expect(rows[0]!.reason).not.toContain(user.email);
    const description = await system.env.client.workflow.getHandle(tokenExpiryWorkflowId(result.tokenId, TEST_INSTANCE)).describe();
    expect(description.searchAttributes.ReminderFailure).toEqual([type]);
  });

  test('a retry after Postmark accepted the email but the answer was lost: still one email', async () => {
    // Postmark takes the message, then the client gives up waiting after 1 s.
    system.postmark.failNext(1, { kind: 'acceptThenHang', ms: 3_000 });
    const config = system.config(oneReminder);

    const { user, rows, attempts } = await runOneToken(config, system.mailer(config, 1));

    expect(mailTo(user.email)).toHaveLength(1);
    expect(attempts).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      status: 'sent',
      attempts: 2,
      providerMessageId: mailTo(user.email)[0]!.MessageID,
      lastError: expect.stringContaining('PostmarkTimeout'),
    });
  });
});

describe('the owner and their address', () => {
  test('an address changed after the token was made: the new one is used', async () => {
    const config = system.config({ EXPIRY_REMINDERS: '1d', EXPIRED_NOTICE: 'false' });
    const tokens = system.tokens(config);
    const user = await system.newUser();
    const created = await system.createToken(tokens, user, 10 * DAY);
    await system.db.query(`UPDATE emails SET email = 'moved@example.org' WHERE user_id = $1`, [user.id]);

    await system.withWorker(config, () => system.env.client.workflow.getHandle(created.workflowId as string).result());

    expect(mailTo(user.email)).toHaveLength(0);
    expect(mailTo('moved@example.org')).toHaveLength(1);
  });

  test('no verified address: skipped, with the reason recorded', async () => {
    const config = system.config({ EXPIRY_REMINDERS: '1d' });
    const tokens = system.tokens(config);
    const user = await system.newUser({ verified: false });
    const created = await system.createToken(tokens, user, 10 * DAY);

    const result: TokenExpiryStatus = await system.withWorker(config, () =>
      system.env.client.workflow.getHandle(created.workflowId as string).result(),
    );

    expect(system.postmark.sent).toHaveLength(0);
    expect(result.reminders.map((r) => [r.key, r.outcome, r.reason])).toEqual([
      ['1d', 'skipped', 'no-verified-email'],
      ['expired', 'skipped', 'no-verified-email'],
    ]);
    const rows = await listNotifications(system.db, created.token.id);
    expect(rows.map((r) => [r.status, r.reason])).toEqual([
      ['skipped', 'no-verified-email'],
      ['skipped', 'no-verified-email'],
    ]);
  });
});

test('the workflow id, its history and its description hold no address, login or secret', async () => {
  const config = system.config({ EXPIRY_REMINDERS: '7d,1d' });
  const tokens = system.tokens(config);
  // Distinct values, so that finding any of them anywhere means it leaked (not a coincidence with an id).
  const tag = randomBytes(4).toString('hex');
  const login = `ferris-${tag}`;
  const email = `inbox.${tag}@mail.example`;
  const user = await system.addUser(login, email);
  const created = await tokens.create(user, {
    name: 'release',
    expiresAt: new Date(Date.now() + 30 * DAY),
    crateScopes: ['tokio'],
    endpointScopes: null,
  });
  const handle = system.env.client.workflow.getHandle(created.workflowId as string);

  await system.withWorker(config, () => handle.result());

  expect(mailTo(email)).toHaveLength(3);
  const description = await handle.describe();
  const sources = [
    { label: 'workflow id', text: description.workflowId },
    { label: 'history', text: textsOf(await handle.fetchHistory()).join('\n') },
    { label: 'description (memo, search attributes)', text: textsOf([description.memo, description.typedSearchAttributes, description.raw]).join('\n') },
  ];
  const needles = [...needlesFor({ emails: [email], secrets: [created.secret] }), { label: 'login', value: login }];
  // Payloads are decoded: the workflow input and the activities' results are there to read.
  expect(sources[1]!.text).toContain(`"tokenId":"${created.token.id}"`);
  expect(sources[1]!.text).toContain('"outcome":"sent"');
  expect(findNeedles(sources, needles)).toEqual([]);
  // The scan would catch each of them, in any case, in any of the places it reads.
  for (const { label, value } of needles) {
    for (const source of sources) {
      expect(findNeedles([{ ...source, text: `${source.text} ${value.toUpperCase()}` }], needles)).toContain(`${label} in ${source.label}`);
    }
  }
});
