// The worker's SQL statements as queryCounter.ts (preloaded into it) counts them: where they are, and reading them.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const queryCountFile = (pid: number) => path.join(os.tmpdir(), `token-expiry-bench-queries-${pid}.json`);

/** The node flag that preloads the counter into a worker. */
export const QUERY_COUNTER_ARGS = ['--require', path.join(__dirname, 'queryCounter.js')];

/** Statements so far by label; empty when the worker runs without the counter. */
export function queryCounts(pid: number): Record<string, number> {
  try {
    return JSON.parse(readFileSync(queryCountFile(pid), 'utf8')) as Record<string, number>;
  } catch {
    return {};
  }
}

/** Statements between two readings, per unit, busiest first. */
export function queriesPer(before: Record<string, number>, after: Record<string, number>, units: number) {
  const rows = Object.entries(after)
    .map(([statement, n]) => ({ statement, n: n - (before[statement] ?? 0) }))
    .filter((row) => row.n > 0)
    .sort((a, b) => b.n - a.n);
  const per = (n: number) => Math.round((n / Math.max(units, 1)) * 100) / 100;
  return {
    perUnit: per(rows.reduce((sum, row) => sum + row.n, 0)),
    byStatement: rows.slice(0, 15).map((row) => ({ statement: row.statement, perUnit: per(row.n) })),
  };
}
