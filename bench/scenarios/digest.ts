// digest: many users, each with several tokens whose "1d" reminder falls due within the same minute, digests on
// (EXPIRY_DIGEST_WINDOW=1h). Measures emails per token, and each token's lateness: the fake Postmark's receive
// time of the email that covered it minus its own due time (negative: early, at most the allowance, 1 h here).
import type { BenchOptions } from '../lib/options';
import { judged, reported } from '../lib/report';
import type { ScenarioResult } from '../lib/scenario';
import { insertTokens, seedUsers } from '../lib/seed';
import { withStack } from '../lib/stack';
import { round, summarize } from '../lib/stats';
import { reconcile, sleep, startMissingWorkflows, waitUntilSleeping } from '../lib/workload';

const REMINDER_MS = 86_400_000;
/** Every user's tokens, and all users, fall due within this minute. */
const SPREAD_MS = 60_000;
const GIVE_UP_AFTER_MS = 600_000;

export async function digestScenario(options: BenchOptions): Promise<ScenarioResult> {
  const env = { EXPIRY_REMINDERS: '1d', EXPIRED_NOTICE: 'false', EXPIRY_DIGEST_WINDOW: '1h' };
  return withStack(options, { scenario: 'digest', env }, async (stack) => {
    const users = await seedUsers(stack.db, options.digestUsers);
    const n = options.digestUsers * options.digestTokensPerUser;
    // Room to start every workflow before the first falls due: about 7 ms each on a quiet dev server, 20+ on a busy machine.
    const lead = 20_000 + n * 40;
    const dueAt = Math.ceil((Date.now() + lead) / 1000) * 1000;
    await insertTokens(stack.db, { count: n, users, firstExpiry: new Date(dueAt + REMINDER_MS), spreadMs: SPREAD_MS });
    stack.log(`${options.digestUsers} users x ${options.digestTokensPerUser} tokens due from ${new Date(dueAt).toISOString()} within a minute`);
    await startMissingWorkflows(stack);
    const asleepAt = await waitUntilSleeping(stack.client, n, dueAt - 1_000);
    stack.log(asleepAt ? `all asleep ${((dueAt - asleepAt) / 1000).toFixed(1)} s before the first due time` : 'NOT all asleep before due');

    const deadline = dueAt + SPREAD_MS + GIVE_UP_AFTER_MS;
    let done = 0;
    while (Date.now() < deadline) {
      const { rows } = await stack.db.query<{ n: string }>(`SELECT count(*) AS n FROM expiry_notifications WHERE status <> 'sending'`);
      done = Number(rows[0]?.n);
      if (done >= n) break;
      await sleep(500);
    }
    // A duplicate would arrive after the rest: give one a moment to show up.
    await sleep(3_000);
    const check = await reconcile(stack.db, stack.postmark);
    const { rows } = await stack.db.query<{ id: string | null; due: Date; status: string }>(
      `SELECT provider_message_id AS id, due_at AS due, status FROM expiry_notifications`,
    );
    const receivedAt = new Map(stack.postmark.sent.map((m) => [m.MessageID, m.receivedAt.getTime()]));
    const offsets = rows
      .filter((r) => r.status === 'sent' && r.id && receivedAt.has(r.id))
      .map((r) => ((receivedAt.get(r.id as string) as number) - r.due.getTime()) / 1000);
    const lateness = summarize(offsets.map((s) => Math.max(0, s)));
    const earliest = Math.max(0, ...offsets.map((s) => -s));
    const emails = stack.postmark.sent.length;
    const perUser = stack.postmark.sent.reduce((m, s) => m.set(s.To, (m.get(s.To) ?? 0) + 1), new Map<string, number>());
    const usersWithOneEmail = [...perUser.values()].filter((c) => c === 1).length;
    return {
      figures: [
        reported('digest', 'emails per token', emails / n, '', `${emails} emails for ${n} tokens of ${options.digestUsers} users (${usersWithOneEmail} users got exactly one)`),
        judged('digest', 'tokens covered', offsets.length, '', '=', n, `of ${n}`),
        reported('digest', 'lateness p50', lateness.p50, 's'),
        judged('digest', 'lateness p99', lateness.p99, 's', '<', 45, asleepAt ? undefined : 'NOT all workflows were asleep before the due time'),
        reported('digest', 'lateness max', lateness.max, 's'),
        judged('digest', 'earliest, before its own due time', earliest, 's', '<', 3_600, 'the allowance: min(window, lead / 7)'),
        judged('digest', 'duplicate emails', check.duplicates, '', '=', 0),
      ],
      details: {
        users: options.digestUsers,
        tokensPerUser: options.digestTokensPerUser,
        tokens: n,
        emails,
        dueAt: new Date(dueAt).toISOString(),
        asleepBeforeDue: asleepAt !== null,
        latenessSeconds: Object.fromEntries(Object.entries(lateness).map(([k, v]) => [k, round(v, 3)])),
        earliestSeconds: round(earliest, 3),
        reconciliation: check,
      },
    };
  });
}
