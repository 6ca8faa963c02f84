/**
 * Random faults against the real activities, real PostgreSQL and the fake Postmark: many users, digests on,
 * two workers (two sets of activities) attempting every token's reminder as its workflow would, Postmark
 * refusing (429, 5xx), accepting and cutting the connection, holding the answer past the client's timeout,
 * its search lagging behind, and attempts cancelled mid-send. Then: one email per (token, reminder), and
 * every row that says sent names an email that went out and lists that token.
 * FAULT_RUNS=N runs N seeds (the normal test command runs one, small).
 */
import { randomBytes } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createActivities } from '../activities/tokenExpiry';
import { loadConfig } from '../src/config';
import { listNotifications } from '../src/db/notifications';
import { markExpiryWorkflowsStarted } from '../src/db/workflows';
import { builtinWriter, insertUser } from '../src/registry/builtin';
import { createPostmarkMailer } from '../src/email/postmarkMailer';
import { startFakePostmark, type Failure, type FakePostmark } from '../scripts/devtools/fakePostmark';
import type { DeliverResult, SendReminderInput, UnrecordedSend } from '../src/tokenExpiry/contract';
import { createTestDatabase, TEST_INSTANCE, type TestDatabase } from './helpers/database';
import { random } from './helpers/random';
import { registryAdapter } from '../src/registry';

const DAY = 86_400_000;
const RUNS = Number(process.env.FAULT_RUNS ?? 1);
const USERS = Number(process.env.FAULT_USERS ?? 6);
let database: TestDatabase;
let postmark: FakePostmark;

beforeAll(async () => {
  [database, postmark] = await Promise.all([createTestDatabase(), startFakePostmark()]);
});
afterAll(async () => {
  await Promise.allSettled([postmark?.close(), database?.drop()]);
});

function worker() {
  const config = loadConfig({
    REGISTRY_NAME: 'crates.io',
    REGISTRY_URL: 'https://crates.io',
    EMAIL_FROM: 'crates.io <noreply@crates.io>',
    EXPIRY_DIGEST_WINDOW: '1h',
    POSTMARK_SEARCH_LAG: '1s',
  });
  const mailer = createPostmarkMailer({ serverToken: postmark.serverToken, apiUrl: postmark.url, timeoutSeconds: 1 });
  return createActivities({ registry: registryAdapter(config), db: database.pool, mailer, clock: { now: async () => new Date() }, config });
}

async function usersWithTokens(rand: () => number): Promise<SendReminderInput[]> {
  const inputs: SendReminderInput[] = [];
  for (let u = 0; u < USERS; u++) {
    const login = `fault-${randomBytes(4).toString('hex')}`;
    const user = await insertUser(database.pool, { login, email: `${login}@example.com`, verified: true });
    // Their 1d warnings fall due now and over the next seconds: one digest, or several.
    const base = Date.now() + DAY + 5_000;
    for (let t = 0, n = 1 + Math.floor(rand() * 3); t < n; t++) {
      const expiresAt = new Date(base + Math.floor(rand() * 20_000));
      const token = await builtinWriter.insertToken(database.pool, {
        userId: user.id,
        hash: randomBytes(32),
        name: 'publish from CI',
        expiredAt: expiresAt,
        crateScopes: null,
        endpointScopes: null,
      });
      await markExpiryWorkflowsStarted(database.pool, [token]);
      inputs.push({
        instance: TEST_INSTANCE,
        tokenId: token.id,
        reminder: '1d',
        kind: 'warning',
        dueAt: new Date(expiresAt.getTime() - DAY).toISOString(),
        expiresAt: expiresAt.toISOString(),
      });
    }
  }
  return inputs;
}

/** One token's workflow: attempts on either worker, retried as the failures ask, until an outcome. */
async function drive(input: SendReminderInput, workers: ReturnType<typeof worker>[], rand: () => number): Promise<string> {
  const logger = new DefaultLogger('ERROR');
  for (let attempt = 0; attempt < 80; attempt++) {
    const { sendReminder, recordSent } = workers[Math.floor(rand() * workers.length)]!;
    const env = new MockActivityEnvironment({ startToCloseTimeoutMs: 30_000 }, { logger });
    const running = env.run(sendReminder, input);
    // Some attempts are cancelled mid-send (the worker shutting down, the activity timed out).
    if (rand() < 0.1) setTimeout(() => env.cancel(), Math.floor(rand() * 40));
    let result: DeliverResult;
    try {
      result = (await running) as DeliverResult;
    } catch (err) {
      if (err instanceof ApplicationFailure && err.type === 'SentNotRecorded') {
        await new MockActivityEnvironment().run(recordSent, err.details?.[0] as UnrecordedSend);
        return 'sent';
      }
      if (err instanceof ApplicationFailure && err.nonRetryable) return `failed: ${err.type}`;
      const asked = err instanceof ApplicationFailure ? Number(err.nextRetryDelay ?? 0) : 0;
      await new Promise((resolve) => setTimeout(resolve, Math.min(Math.max(asked, 100), 4_000)));
      continue;
    }
    if ('waitUntil' in result) throw new Error('a warning never waits');
    return result.outcome;
  }
  return 'gave up';
}

const faults: { weight: number; failure: Failure }[] = [
  { weight: 0.12, failure: { status: 429 } },
  { weight: 0.08, failure: { status: 503 } },
  { weight: 0.1, failure: { kind: 'acceptThenReset' } },
  { weight: 0.06, failure: { kind: 'acceptThenHang', ms: 1_500 } }, // past the client's 1 s timeout
  { weight: 0.04, failure: { kind: 'reset' } },
];

for (let run = 1; run <= RUNS; run++) {
  const seed = Number(process.env.FAULT_SEED ?? Date.now() % 100_000) + run;
  test(`seed ${seed}: one email per (token, reminder), and every recorded outcome is true`, async () => {
    const rand = random(seed);
    postmark.reset();
    postmark.searchLagMs = 700; // below POSTMARK_SEARCH_LAG (1 s)
    postmark.failWhile(() => {
      let roll = rand();
      for (const { weight, failure } of faults) {
        if ((roll -= weight) < 0) return failure;
      }
      return null;
    });
    const inputs = await usersWithTokens(rand);
    const workers = [worker(), worker()];

    const outcomes = await Promise.all(inputs.map((input) => drive(input, workers, rand)));
    postmark.failWhile(null);

    expect(outcomes.filter((o) => o !== 'sent')).toEqual([]);
    for (const input of inputs) {
      const link = new RegExp(`/settings/tokens/new\\?from=${input.tokenId}(?!\\d)`);
      const listing = postmark.sent.filter((m) => link.test(m.TextBody ?? ''));
      const row = (await listNotifications(database.pool, input.tokenId)).find((r) => r.reminder === '1d');
      // On a failure, what went out and what the row says.
      const seen = { token: input.tokenId, emails: listing.length, row: row && [row.status, row.digest, row.providerMessageId, row.attempts, row.lastError], listed: postmark.sent.filter((m) => m.MessageID === row?.providerMessageId).map((m) => [m.Metadata, (m.TextBody ?? '').match(/from=\d+/g)]) };
      expect(seen).toEqual({ ...seen, emails: 1 });
      expect(row).toMatchObject({ status: 'sent', providerMessageId: listing[0]!.MessageID });
    }
  }, 240_000);
}
