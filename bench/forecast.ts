// `node dist/bench/forecast.js [--tokens 1000000] [--days 30] [--runs 5]`: how long `token-expiry forecast`
// takes on a registry of that many tokens (expiries spread over a year, a tenth of those due in the
// range already notified). Prints the timings and the plan PostgreSQL chose, as JSON.
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config';
import { createScratchDatabase } from '../scripts/devtools/scratchDatabase';
import { forecast } from '../src/tokenExpiry/forecast';
import { insertTokens, seedUsers } from './lib/seed';
import { quantile, round } from './lib/stats';

const DAY_MS = 86_400_000;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { tokens: { type: 'string' }, days: { type: 'string' }, runs: { type: 'string' } } });
  const tokens = Number(values.tokens ?? 1_000_000);
  const days = Number(values.days ?? 30);
  const runs = Number(values.runs ?? 5);
  const adminUrl = process.env.BENCH_DATABASE_ADMIN_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
  const database = await createScratchDatabase(adminUrl, 'token_expiry_bench_forecast');
  try {
    const db = database.pool;
    const now = new Date();
    const users = await seedUsers(db, Math.max(1, Math.round(tokens / 10)));
    await insertTokens(db, { count: tokens, users, firstExpiry: now, spreadMs: 365 * DAY_MS });
    // Some reminders in the range are already final: the forecast must look each one up.
    await db.query(
      `INSERT INTO expiry_notifications (token_id, reminder, due_at, dedupe_key, status)
       SELECT id, '7d', expired_at - interval '7 days', 'bench:' || id, 'sent' FROM api_tokens
        WHERE expired_at < $1::timestamptz + $2 * interval '1 day' AND id % 10 = 0`,
      [now, days + 7],
    );
    await db.query('ANALYZE');
    const settings = loadConfig({ EXPIRY_REMINDERS: '7d,1d', EXPIRED_NOTICE: 'true' });
    const timings: number[] = [];
    let result: Awaited<ReturnType<typeof forecast>> = [];
    for (let i = 0; i < runs; i++) {
      const started = performance.now();
      result = await forecast(db, settings, { now, days });
      timings.push(performance.now() - started);
    }
    const { rows } = await db.query<{ n: string }>('SELECT count(*)::text AS n FROM expiry_notifications');
    process.stdout.write(
      `${JSON.stringify(
        {
          tokens,
          days,
          notificationRows: Number(rows[0]?.n),
          remindersInRange: result.reduce((sum, d) => sum + d.warnings + d.expired, 0),
          emailsInRange: result.reduce((sum, d) => sum + d.emails, 0),
          firstDays: result.slice(0, 3),
          ms: { runs: timings.map((t) => round(t, 1)), p50: round(quantile(timings, 0.5), 1), max: round(Math.max(...timings), 1) },
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await database.drop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
