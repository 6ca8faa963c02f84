/**
 * Random faults against the real activities, real PostgreSQL and the fake Postmark: many users, digests on,
 * two workers (two sets of activities) attempting every token's reminder as its workflow would, Postmark
 * refusing (429, 5xx), accepting and cutting the connection, holding the answer past the client's timeout,
 * its search lagging behind, and attempts cancelled mid-send. Then: one email per (token, reminder), and
 * every row that says sent names an email that went out and lists that token.
 * FAULT_RUNS=N runs N seeds (the normal test command runs one, small).
 */
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { listNotifications } from '../src/db/notifications';
import type { Failure } from '../scripts/devtools/fakePostmark';
import type { DeliverResult, SendReminderInput, UnrecordedSend } from '../src/tokenExpiry/contract';
import { useSendPipeline } from './helpers/sendPipeline';
import { random } from './helpers/random';

const DAY = 86_400_000;
const RUNS = Number(process.env.FAULT_RUNS ?? 1);
const USERS = Number(process.env.FAULT_USERS ?? 6);
const pipeline = useSendPipeline({ EXPIRY_DIGEST_WINDOW: '1h', POSTMARK_SEARCH_LAG: '1s' });
const worker = () => pipeline.activities();

async function usersWithTokens(rand: () => number): Promise<SendReminderInput[]> {
  const inputs: SendReminderInput[] = [];
  for (let u = 0; u < USERS; u++) {
    const owner = await pipeline.newOwner();
    // Their 1d warnings fall due now and over the next seconds: one digest, or several.
    const base = Date.now() + DAY + 5_000;
    for (let t = 0, n = 1 + Math.floor(rand() * 3); t < n; t++) {
      inputs.push(await pipeline.warningOf(owner, new Date(base + Math.floor(rand() * 20_000))));
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
    const postmark = pipeline.postmark();
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
      const row = (await listNotifications(pipeline.db(), input.tokenId)).find((r) => r.reminder === '1d');
      // On a failure, what went out and what the row says.
      const seen = { token: input.tokenId, emails: listing.length, row: row && [row.status, row.digest, row.providerMessageId, row.attempts, row.lastError], listed: postmark.sent.filter((m) => m.MessageID === row?.providerMessageId).map((m) => [m.Metadata, (m.TextBody ?? '').match(/from=\d+/g)]) };
      expect(seen).toEqual({ ...seen, emails: 1 });
      expect(row).toMatchObject({ status: 'sent', providerMessageId: listing[0]!.MessageID });
    }
  }, 240_000);
}
