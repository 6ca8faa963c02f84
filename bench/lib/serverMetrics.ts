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
