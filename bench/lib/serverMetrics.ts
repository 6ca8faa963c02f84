// The dev server's own Prometheus counters: which persistence calls (SQLite) a workload costs, how
// many and how long they took. The usual bound on this machine, so every scenario reports them.

export type PersistenceCalls = Record<string, { calls: number; seconds: number }>;

export async function persistenceCalls(metricsUrl: string): Promise<PersistenceCalls> {
  const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(10_000) })).text();
  const calls: PersistenceCalls = {};
  for (const line of text.split('\n')) {
    const match = /^(persistence_requests|persistence_latency_sum)\{([^}]*)\} (\S+)$/.exec(line);
    if (!match) continue;
    const operation = /operation="([^"]*)"/.exec(match[2] as string)?.[1] ?? 'unknown';
    const entry = (calls[operation] ??= { calls: 0, seconds: 0 });
    if (match[1] === 'persistence_requests') entry.calls += Number(match[3]);
    else entry.seconds += Number(match[3]);
  }
  return calls;
}

/** What happened between two readings, per unit of work (e.g. per workflow), busiest first. */
export function callsPer(before: PersistenceCalls, after: PersistenceCalls, units: number) {
  const rows = Object.entries(after)
    .map(([operation, { calls, seconds }]) => ({
      operation,
      calls: calls - (before[operation]?.calls ?? 0),
      seconds: seconds - (before[operation]?.seconds ?? 0),
    }))
    .filter((row) => row.calls > 0)
    .sort((a, b) => b.seconds - a.seconds);
  const total = rows.reduce((sum, row) => ({ calls: sum.calls + row.calls, seconds: sum.seconds + row.seconds }), { calls: 0, seconds: 0 });
  const per = (n: number) => Math.round((n / Math.max(units, 1)) * 100) / 100;
  return {
    callsPerUnit: per(total.calls),
    /** Summed latency of those calls; with one SQLite connection they queue, so this can exceed wall time. */
    latencySecondsPerUnit: Math.round((total.seconds / Math.max(units, 1)) * 10_000) / 10_000,
    byOperation: rows.slice(0, 12).map((row) => ({ operation: row.operation, perUnit: per(row.calls), ms: Math.round(row.seconds * 1000) })),
  };
}

/**
 * The server's timers that say where a workflow's time goes (Prometheus histograms, summed over labels):
 * persistence calls, the history shard's lock and semaphore waits, the history task queues' wait, and
 * matching's schedule-to-start.
 */
const BOUND_TIMERS = ['persistence_latency', 'lock_latency', 'semaphore_latency', 'task_latency_queue', 'task_schedule_to_start_latency'] as const;

export type TimerTotals = Record<string, { count: number; seconds: number }>;

async function scrape(metricsUrl: string): Promise<string> {
  return (await fetch(metricsUrl, { signal: AbortSignal.timeout(10_000) })).text();
}

export async function serverTimers(metricsUrl: string): Promise<TimerTotals> {
  const text = await scrape(metricsUrl);
  const totals: TimerTotals = {};
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)_(sum|count)(?:\{[^}]*\})? (\S+)$/.exec(line);
    if (!match || !(BOUND_TIMERS as readonly string[]).includes(match[1] as string)) continue;
    const entry = (totals[match[1] as string] ??= { count: 0, seconds: 0 });
    if (match[2] === 'count') entry.count += Number(match[3]);
    else entry.seconds += Number(match[3]);
  }
  return totals;
}

export function timersPer(before: TimerTotals, after: TimerTotals, units: number): Record<string, { callsPerUnit: number; avgMs: number }> {
  return Object.fromEntries(
    Object.entries(after)
      .map(([name, { count, seconds }]) => {
        const calls = count - (before[name]?.count ?? 0);
        const ms = (seconds - (before[name]?.seconds ?? 0)) * 1000;
        return [name, { callsPerUnit: Math.round((calls / Math.max(1, units)) * 100) / 100, avgMs: calls > 0 ? Math.round((ms / calls) * 100) / 100 : 0 }] as const;
      })
      .filter(([, t]) => t.callsPerUnit > 0),
  );
}

/** The largest task queue backlog the server reports now (approximate_backlog_count), or null if it reports none. */
export async function backlog(metricsUrl: string): Promise<number | null> {
  let max: number | null = null;
  for (const line of (await scrape(metricsUrl)).split('\n')) {
    const match = /^approximate_backlog_count(?:\{[^}]*\})? (\S+)$/.exec(line);
    if (match) max = Math.max(max ?? 0, Number(match[1]));
  }
  return max;
}
