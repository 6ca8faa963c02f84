// `npm run bench -- --model [--from FILE]`: what N tokens cost per day, from the per-token costs the life
// scenario measured (and the crates.io scan's, from the baseline scenario), extrapolated linearly.
import { readFileSync } from 'node:fs';
import type { LifeResult } from '../scenarios/life';
import { formatNumber } from './report';

/** Assumed: tokens live 90 days (crates.io offers 30, 60, 90 days or a date) and get 7d, 1d and expired. */
const TOKEN_LIFETIME_DAYS = 90;
const EMAILS_PER_TOKEN = 3;
const SIZES = [10_000, 1_000_000, 10_000_000];
/** The crates.io scan at 1,000,000 rows, without and with a partial index (docs/performance.md, Latest figures; commit dc2fbf4). */
const SCAN_MS_PER_MILLION = { noIndex: 171, partialIndex: 2.5 };
/** Workflow wake-ups a second that the dev server's one SQLite-backed history shard drained here (fan-in). */
const WAKEUPS_PER_SHARD_SECOND = 50;
/** EXPIRY_SPREAD's default window: a day's expiries that share one second fall due over 15 minutes. */
const SPREAD_SECONDS = 900;

interface ModelRow {
  tokens: number;
  perDay: { created: number; emails: number; serverCpuSeconds: number; workerCpuSeconds: number; sweepServerCpuSeconds: number };
  storageGiB: number;
  historyGiB: number;
  crates: { scanMsNoIndex: number; scanMsPartialIndex: number; emails: number };
  plan: { serverCores: number; workerCores: number; peakPerSecond: number; shards: number; workers: number };
}

function capacityModel(life: LifeResult): ModelRow[] {
  const scan = SCAN_MS_PER_MILLION;
  return SIZES.map((tokens) => {
    const created = tokens / TOKEN_LIFETIME_DAYS;
    const serverCpuSeconds = (created * life.wholeLife.serverCpuMs) / 1000;
    const workerCpuSeconds = (created * life.wholeLife.workerCpuMs) / 1000;
    const sweepServerCpuSeconds = (tokens * life.sweepPass.serverCpuMs) / 1000;
    // Worst day: every token of the day shares one expiry; the spread spreads its warnings over 15 minutes.
    const peakPerSecond = created / SPREAD_SECONDS;
    const serverCores = (serverCpuSeconds + sweepServerCpuSeconds) / 86_400;
    const workerCores = workerCpuSeconds / 86_400;
    return {
      tokens,
      perDay: { created, emails: created * EMAILS_PER_TOKEN, serverCpuSeconds, workerCpuSeconds, sweepServerCpuSeconds },
      storageGiB: (tokens * (life.sleeping.storageBytesPerWorkflow ?? Number.NaN)) / 2 ** 30,
      historyGiB: (tokens * life.sleeping.historyBytes) / 2 ** 30,
      crates: { scanMsNoIndex: (tokens / 1e6) * scan.noIndex, scanMsPartialIndex: (tokens / 1e6) * scan.partialIndex, emails: created },
      plan: {
        serverCores,
        workerCores,
        peakPerSecond,
        shards: 2 ** Math.ceil(Math.log2(Math.max(1, peakPerSecond / WAKEUPS_PER_SHARD_SECOND))),
        // One worker process drained about 50 sends a second here; two at least, for restarts.
        workers: Math.max(2, Math.ceil(peakPerSecond / 50)),
      },
    };
  });
}

export function printModel(file: string): string {
  const report = JSON.parse(readFileSync(file, 'utf8')) as {
    git?: { commit?: string };
    startedAt?: string;
    scenarios?: { life?: { results?: LifeResult[] } };
  };
  const life = report.scenarios?.life?.results?.find((r) => r.path === 'delayed');
  if (!life) throw new Error(`${file} has no life scenario with the delayed start path: run npm run bench -- --only life first`);
  const rows = capacityModel(life);
  const n = (v: number) => formatNumber(Math.round(v * 100) / 100);
  const lines = [
    `Capacity model from ${file} (${report.startedAt ?? '?'}, ${report.git?.commit?.slice(0, 12) ?? '?'}): measured per token at ${life.tokens} tokens,`,
    `server ${life.wholeLife.serverCpuMs} ms and worker ${life.wholeLife.workerCpuMs} ms of CPU over a whole life, ${n((life.sleeping.storageBytesPerWorkflow ?? Number.NaN) / 1024)} KiB`,
    `of server storage while asleep (history ${life.sleeping.historyBytes} bytes); the sweep's pass ${life.sweepPass.serverCpuMs} ms of server CPU per token.`,
    `Assumed: ${TOKEN_LIFETIME_DAYS}-day tokens, ${EMAILS_PER_TOKEN} emails each (7d, 1d, expired), a daily sweep describing every token (an upper bound: it rechecks only tokens with a reminder within its horizon); costs scale linearly.`,
    '',
    '| tokens | created/day | emails/day (Postmark calls) | server CPU/day | worker CPU/day | sweep server CPU/day | server storage | crates.io scan/day (no index / partial index), its emails | worst-day peak | cores (server / worker) | history shards / workers |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${n(r.tokens)} | ${n(r.perDay.created)} | ${n(r.perDay.emails)} | ${n(r.perDay.serverCpuSeconds)} s | ${n(r.perDay.workerCpuSeconds)} s | ${n(r.perDay.sweepServerCpuSeconds)} s | ` +
        `${n(r.storageGiB)} GiB (history ${n(r.historyGiB)} GiB) | ${n(r.crates.scanMsNoIndex)} ms / ${n(r.crates.scanMsPartialIndex)} ms, ${n(r.crates.emails)} | ` +
        `${n(r.plan.peakPerSecond)} /s | ${n(r.plan.serverCores)} / ${n(r.plan.workerCores)} | ${r.plan.shards} / ${r.plan.workers} |`,
    ),
    '',
    `Peak: a day's expiries all in one second, spread over EXPIRY_SPREAD's 15 minutes. Shards: one per ${WAKEUPS_PER_SHARD_SECOND} wake-ups a second`,
    '(what the single SQLite shard drained here: a floor, a real cluster\'s shard does more), rounded up to a power of two; workers: one per 50 sends a second, two at least.',
    '',
  ];
  return lines.join('\n');
}
