// rate cap: with EMAIL_MAX_PER_SECOND set, many reminders fall due at once; the fake Postmark's
// receive times, over every 1-second window, must never hold more sends than the cap.
import type { BenchOptions } from '../lib/options';
import { judged, reported } from '../lib/report';
import type { ScenarioResult } from '../lib/scenario';
import { DUE_TOGETHER_ENV, latenesses, scheduleDueTogether } from '../lib/dueTogether';
import { withStack } from '../lib/stack';
import { maxInSlidingWindow, round, summarize } from '../lib/stats';
import { reconcile, sleep, waitForSends } from '../lib/workload';

export async function rateCapScenario(options: BenchOptions): Promise<ScenarioResult> {
  const cap = options.rateCap;
  const env = { ...DUE_TOGETHER_ENV, EMAIL_MAX_PER_SECOND: String(cap) };
  return withStack(options, { scenario: 'rate-cap', env }, async (stack) => {
    const n = options.rateTokens;
    const due = await scheduleDueTogether(stack, n, options.fanInLeadSeconds * 1000);
    // Twice the time the cap allows, plus room for start-up.
    const deadline = due.dueAt + (2 * n * 1000) / cap + 60_000;
    const allSent = await waitForSends(stack.postmark, n, deadline, stack.worker);
    await sleep(2_000);
    const times = stack.postmark.sent.map((m) => m.receivedAt.getTime());
    const worst = maxInSlidingWindow(times, 1_000);
    // Temporal's limiter is a token bucket that starts full: past the first second, only the refill counts.
    const first = Math.min(...times);
    const worstAfterFirstSecond = maxInSlidingWindow(times.filter((t) => t >= first + 1_000), 1_000);
    const span = (Math.max(...times) - Math.min(...times)) / 1000;
    const meanRate = (times.length - 1) / Math.max(span, 0.001);
    // When each send began (its claim on the notification row): what Temporal dispatched, before the send path's jitter.
    const { rows: claims } = await stack.db.query<{ at: Date }>('SELECT created_at AS at FROM expiry_notifications');
    const claimTimes = claims.map((r) => r.at.getTime());
    const worstClaims = maxInSlidingWindow(claimTimes, 1_000);
    const lateness = summarize(latenesses(stack.postmark.sent, due.dueOf).map((ms) => ms / 1000));
    const check = await reconcile(stack.db, stack.postmark);
    const perSecond = histogram(times);
    return {
      figures: [
        judged('rate cap', `most sends in any 1 s window (EMAIL_MAX_PER_SECOND=${cap})`, worst, '', '<=', cap, `${times.length} of ${n} sent`),
        reported('rate cap', 'most sends in any 1 s window after the first second', worstAfterFirstSecond, ''),
        reported('rate cap', 'most sends begun (claimed) in any 1 s window', worstClaims, '', 'as dispatched, before the HTTP call'),
        reported('rate cap', 'mean send rate', meanRate, '/s', `over ${round(span, 1)} s`),
        reported('rate cap', 'lateness max', lateness.max, 's', `${n} due at once, at most ${cap}/s`),
        judged('rate cap', 'duplicate emails', check.duplicates, '', '=', 0),
      ],
      details: {
        cap,
        tokens: n,
        allSent,
        maxInAnySecond: worst,
        maxInAnySecondAfterTheFirst: worstAfterFirstSecond,
        maxClaimedInAnySecond: worstClaims,
        claimsPerCalendarSecond: histogram(claimTimes),
        meanRatePerSecond: round(meanRate, 2),
        sendsPerCalendarSecond: perSecond,
        latenessSeconds: lateness,
        reconciliation: check,
      },
    };
  });
}

/** Sends in each whole second from the first one. */
function histogram(times: number[]): number[] {
  if (times.length === 0) return [];
  const first = Math.min(...times);
  const counts: number[] = [];
  for (const t of times) {
    const i = Math.floor((t - first) / 1000);
    counts[i] = (counts[i] ?? 0) + 1;
  }
  return Array.from(counts, (c) => c ?? 0);
}
