// crates-io-sweep: what the sweep's reads cost on crates.io's own api_tokens (int4 ids, no index on expired_at
// or user_id, none of ours allowed), at --scan-rows tokens: the page that finds new tokens (the newest 500,
// after every older one has its workflow: no high-water mark yet, so it walks the whole table) and the
// daily pass over tokens with a workflow on record.
import { randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import { migrate } from '../../src/db/migrate';
import { createPool } from '../../src/db/pool';
import { cratesIoRegistry } from '../../src/registry/cratesIo';
import { adminQuery } from '../../scripts/devtools/scratchDatabase';
import type { BenchOptions } from '../lib/options';
import { reported } from '../lib/report';
import type { ScenarioResult } from '../lib/scenario';
import { quantile, round } from '../lib/stats';

const RUNS = 5;
const NEW_TOKENS = 500;
/** The scheduled sweep's recheck horizon with the defaults: 7d + 2 x 1d. */
const HORIZON_MS = 9 * 86_400_000;

// The columns the adapter reads, with crates.io's types and indexes (and none more).
const REGISTRY_TABLES = `
  CREATE TABLE users (id serial PRIMARY KEY, gh_login varchar NOT NULL, gh_id integer NOT NULL, username varchar NOT NULL);
  CREATE TABLE emails (id serial PRIMARY KEY, user_id integer NOT NULL UNIQUE REFERENCES users (id), email varchar NOT NULL,
    verified boolean NOT NULL DEFAULT false, token text NOT NULL DEFAULT md5(random()::text));
  CREATE TABLE api_tokens (id serial PRIMARY KEY, user_id integer NOT NULL REFERENCES users (id), token bytea NOT NULL UNIQUE,
    name varchar NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), last_used_at timestamptz,
    revoked boolean NOT NULL DEFAULT false, crate_scopes text[], endpoint_scopes text[], expired_at timestamptz,
    expiry_notification_at timestamptz);`;

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  let value = await fn();
  const runs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    value = await fn();
    runs.push(performance.now() - started);
  }
  return { ms: round(quantile(runs, 0.5), 2), value };
}

async function fill(db: Pool, rows: number): Promise<void> {
  const users = Math.max(1, Math.ceil(rows / 100));
  await db.query(`INSERT INTO users (gh_login, gh_id, username) SELECT 'u' || g, g, 'u' || g FROM generate_series(1, $1) g`, [users]);
  await db.query(`INSERT INTO emails (user_id, email, verified) SELECT id, gh_login || '@example.com', true FROM users`);
  await db.query('SELECT setseed(0.42)');
  for (let from = 0; from < rows; from += 100_000) {
    await db.query(
      `INSERT INTO api_tokens (user_id, token, name, expired_at, revoked)
       SELECT 1 + (g % $3), sha256(convert_to('crates-' || g, 'UTF8')), 'bench ' || g,
              CASE WHEN random() < 0.2 THEN NULL ELSE now() + (random() * 395 - 30) * interval '1 day' END, random() < 0.02
         FROM generate_series($1::int, $2::int) g`,
      [from, Math.min(rows, from + 100_000) - 1, users],
    );
  }
  // Steady state: every token with an expiry has its workflow on record, revoked ones cancelled.
  await db.query(
    `INSERT INTO expiry_workflows (token_id, started_at, cancelled_at)
     SELECT id, now() - interval '1 day', CASE WHEN revoked THEN now() END FROM api_tokens WHERE expired_at IS NOT NULL`,
  );
  // Then the registry writes new tokens, which nothing has told us of.
  await db.query(
    `INSERT INTO api_tokens (user_id, token, name, expired_at)
     SELECT 1, sha256(convert_to('new-' || g, 'UTF8')), 'new', now() + interval '90 days' FROM generate_series(1, $1) g`,
    [NEW_TOKENS],
  );
  await db.query('VACUUM ANALYZE api_tokens, expiry_workflows');
}

export async function cratesIoSweepScenario(options: BenchOptions): Promise<ScenarioResult> {
  const name = `token_expiry_bench_crates_io_${randomBytes(6).toString('hex')}`;
  await adminQuery(options.adminUrl, `CREATE DATABASE ${name}`);
  const url = new URL(options.adminUrl);
  url.pathname = `/${name}`;
  const db = createPool(url.toString(), 2);
  try {
    await db.query(REGISTRY_TABLES);
    await migrate(db, { schema: 'token_expiry', registry: 'crates-io' });
    options.log(`[crates-io-sweep] filling api_tokens with ${options.scanRows.toLocaleString('en-US')} tokens`);
    await fill(db, options.scanRows);
    const now = new Date();
    const newPage = await timed(() => cratesIoRegistry.findTokensWithoutWorkflow(db, { afterId: null, limit: NEW_TOKENS, now }));
    const pass = await timed(async () => {
      let afterId: string | null = null;
      let pages = 0;
      let tokens = 0;
      const until = new Date(now.getTime() + HORIZON_MS);
      for (;;) {
        const page = await cratesIoRegistry.findStoppedCandidates(db, { afterId, limit: 500, now, until, recordedBefore: null });
        pages++;
        tokens += page.length;
        if (page.length < 500) return { pages, tokens };
        afterId = page[page.length - 1]?.id ?? null;
      }
    });
    const table = `${options.scanRows.toLocaleString('en-US')} crates.io-shaped tokens`;
    return {
      figures: [
        reported('crates-io-sweep', `finding the ${NEW_TOKENS} new tokens (one page, ${table})`, newPage.ms, 'ms', `${newPage.value.length} found; a walk of both primary keys`),
        reported('crates-io-sweep', 'the daily pass over recorded workflows, 9-day horizon', pass.ms, 'ms', `${pass.value.pages} pages, ${pass.value.tokens} tokens`),
      ],
      details: { rows: options.scanRows, newTokensPageMs: newPage.ms, found: newPage.value.length, dailyPass: { ms: pass.ms, ...pass.value }, method: `median of ${RUNS} warm runs` },
    };
  } finally {
    await db.end();
    if (!options.keepDatabases) await adminQuery(options.adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}
