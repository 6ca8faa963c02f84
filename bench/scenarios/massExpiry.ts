// mass-expiry: the issue's "10,000 tokens with the same expiry second, default settings". The worker runs
// src/config.ts's defaults (reminders 7d,1d and the expired notice, EXPIRY_SPREAD 15m, digests 1h, delayed
// starts); each token has its own user, so a digest covers one token and every token is one email. Two runs:
// - warnings: tokens expiring 7 days and ~15 minutes from now, so their 7d warnings, spread over
//   min(15m, 1 % of 7d) = 15 minutes, fall due while we watch. The lead need not be waited for, only the
//   due time. Held to: none sent after its nominal due time (expiry - 7d), which is what a user notices.
// - expired: tokens expiring in one second minutes from now: the expired notice is never spread, so this
//   is the plain fan-in under the defaults. Their 7d and 1d warnings lie before their creation, so each
//   workflow first records them as skipped (one more activity per token than a token whose warnings went
//   out days ago, whose workflow instead replays their history on waking).
import { loadConfig } from '../../src/config';
import { MAX_SPREAD_SHARE } from '../../src/tokenExpiry/spread';
import { scheduleDueTogether, type DueTogether } from '../lib/dueTogether';
import type { BenchOptions } from '../lib/options';
import os from 'node:os';
import { meterEngine, usageFigures } from '../lib/engineMeter';
import { cpuMeter } from '../lib/proc';
import { judged, reported, type Figure } from '../lib/report';
import type { ScenarioResult } from '../lib/scenario';
import { withStack, type Stack } from '../lib/stack';
import { maxInSlidingWindow, round, summarize } from '../lib/stats';
import { postgresTransactions, reconcile, sleep, waitForSends } from '../lib/workload';

const WEEK_MS = 7 * 86_400_000;
/** How long after the last nominal due second the bench waits for the last email before it gives up. */
const GIVE_UP_AFTER_MS = 600_000;

export async function massExpiryWarningsScenario(options: BenchOptions): Promise<ScenarioResult> {
  const spreadMs = Math.min(loadConfig({}).EXPIRY_SPREAD, Math.floor(WEEK_MS * MAX_SPREAD_SHARE));
  return withStack(options, { scenario: 'mass-expiry' }, async (stack) => {
    const n = options.tokens;
    const due = await scheduleDueTogether(stack, n, options.fanInLeadSeconds * 1000, { beforeExpiryMs: WEEK_MS, earlyMs: spreadMs, tokensPerUser: 1 });
    const run = await watchSends(stack, n, due, spreadMs, options.adminUrl);
    const vsNominal = run.sends.map((s) => s.receivedAt - s.nominalDue);
    const late = vsNominal.filter((ms) => ms > 0);
    const vsOwnDue = summarize(run.sends.map((s) => Math.max(0, s.receivedAt - s.spreadDue) / 1000));
    const dueBusiest = maxInSlidingWindow(run.sends.map((s) => s.spreadDue), 1_000);
    const sentBusiest = maxInSlidingWindow(run.sends.map((s) => s.receivedAt), 1_000);
    const s = 'mass-expiry (7d warnings)';
    const figures: Figure[] = [
      judged(s, 'warnings sent after their nominal due time (expiry - 7d)', late.length, '', '=', 0,
        `of ${run.sends.length} sent; ${late.length ? `latest ${round(Math.max(...late) / 1000, 2)} s after it` : `closest ${round(-Math.max(...vsNominal) / 1000, 2)} s before it`}; spread over ${spreadMs / 1000} s`),
      reported(s, 'lateness after its own spread due time, p50', vsOwnDue.p50, 's', `p99 ${round(vsOwnDue.p99, 2)} s, max ${round(vsOwnDue.max, 2)} s`),
      reported(s, 'most sent in any 1 s', sentBusiest, '', `most due in any 1 s: ${dueBusiest}; ${round(n / (spreadMs / 1000), 1)} /s due on average`),
      ...commonFigures(s, n, run, due),
    ];
    return { figures, details: details(n, due, run, { spreadSeconds: spreadMs / 1000, lateVsNominal: late.length, dueBusiestSecond: dueBusiest, sentBusiestSecond: sentBusiest, latenessAfterOwnDueSeconds: rounded(vsOwnDue) }) };
  });
}

export async function massExpiryNoticesScenario(options: BenchOptions): Promise<ScenarioResult> {
  return withStack(options, { scenario: 'mass-expiry-expired' }, async (stack) => {
    const n = options.tokens;
    const due = await scheduleDueTogether(stack, n, options.fanInLeadSeconds * 1000, { beforeExpiryMs: 0, earlyMs: 0, tokensPerUser: 1 });
    const run = await watchSends(stack, n, due, 0, options.adminUrl);
    const lateness = summarize(run.sends.map((s) => Math.max(0, s.receivedAt - s.nominalDue) / 1000));
    const lastAt = Math.max(...run.sends.map((x) => x.receivedAt));
    const firstAt = Math.min(...run.sends.map((x) => x.receivedAt));
    const s = 'mass-expiry (expired notices)';
    const figures: Figure[] = [
      reported(s, 'lateness p99', lateness.p99, 's', `p50 ${round(lateness.p50, 2)} s, max ${round(lateness.max, 2)} s; not spread`),
      reported(s, 'sends per second', n / Math.max((lastAt - firstAt) / 1000, 0.001), '/s'),
      ...commonFigures(s, n, run, due),
    ];
    return { figures, details: details(n, due, run, { latenessSeconds: rounded(lateness) }) };
  });
}

interface Send {
  tokenId: string;
  receivedAt: number;
  nominalDue: number;
  /** The due time the workflow used (nominal less the token's spread), as its notification row records it. */
  spreadDue: number;
}

/** From a second before the first is due until all `n` are sent: CPU, PostgreSQL transactions, and each send. */
async function watchSends(stack: Stack, n: number, due: DueTogether, earlyMs: number, adminUrl: string) {
  await sleep(Math.max(0, due.dueAt - earlyMs - 1_000 - Date.now()));
  const cpu = cpuMeter({ worker: stack.worker.pid, server: stack.server.pid, bench: process.pid });
  const meter = await meterEngine(stack, adminUrl);
  const tx0 = await postgresTransactions(stack.db);
  stack.log(`waiting for ${n} emails`);
  const allSent = await waitForSends(stack.postmark, n, due.dueAt + GIVE_UP_AFTER_MS, stack.worker);
  const usage = cpu.stop();
  const engine = await meter.stop(n);
  // PostgreSQL's statistics reach pg_stat_database within a second or so; a duplicate would arrive by then too.
  await sleep(3_000);
  const tx = (await postgresTransactions(stack.db)) - tx0 - 1;
  const check = await reconcile(stack.db, stack.postmark);
  const { rows } = await stack.db.query<{ id: string; due: Date }>(
    `SELECT provider_message_id AS id, due_at AS due FROM expiry_notifications WHERE status = 'sent'`,
  );
  const spreadDueOf = new Map(rows.map((r) => [r.id, r.due.getTime()]));
  const sends: Send[] = stack.postmark.sent.map((m) => {
    const tokenId = m.Metadata.token_id ?? '';
    return {
      tokenId,
      receivedAt: m.receivedAt.getTime(),
      nominalDue: due.dueOf.get(tokenId) ?? Number.NaN,
      spreadDue: spreadDueOf.get(m.MessageID) ?? Number.NaN,
    };
  });
  return { allSent, sends, usage, engine, postgresTransactionsPerEmail: tx / Math.max(1, sends.length), check };
}

type Watched = Awaited<ReturnType<typeof watchSends>>;

function commonFigures(s: string, n: number, run: Watched, due: DueTogether): Figure[] {
  const per = (seconds: number | undefined) => ((seconds ?? Number.NaN) * 1000) / Math.max(1, run.sends.length);
  return [
    reported(s, 'CPU per email: server', per(run.usage.cpuSeconds.server), 'ms',
      `worker ${round(per(run.usage.cpuSeconds.worker))} ms, ${round(run.postgresTransactionsPerEmail)} PG tx, machine ${run.usage.machineBusyPercent} % busy`),
    ...usageFigures(s, 'send', run.engine, os.cpus().length),
    judged(s, 'reminders not sent', n - run.check.distinctReminders, '', '=', 0, due.asleepBeforeDue ? undefined : 'NOT all workflows were asleep before the first due time'),
    judged(s, 'duplicate emails', run.check.duplicates, '', '=', 0),
  ];
}

function details(n: number, due: DueTogether, run: Watched, figures: Record<string, unknown>): Record<string, unknown> {
  return {
    tokens: n,
    nominalDueAt: new Date(due.dueAt).toISOString(),
    setup: { startSeconds: round(due.startSeconds, 1), probeMsPerWorkflow: round(due.setupMsPerWorkflow, 1), asleepBeforeDue: due.asleepBeforeDue, secondsToSpare: round(due.secondsToSpare, 1) },
    allSent: run.allSent,
    ...figures,
    cpuDuringSends: run.usage,
    engineDuringSends: run.engine,
    postgresTransactionsPerEmail: round(run.postgresTransactionsPerEmail, 2),
    reconciliation: run.check,
  };
}

function rounded(summary: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(summary).map(([k, v]) => [k, round(v, 3)]));
}

