// crates-io-sweep: what the service's reads cost on crates.io's own api_tokens (int4 ids, no index on expired_at
// or user_id, none of ours allowed), at --scan-rows tokens, as the restricted role: a discovery pass's reads
// (the mark's row, the newest id, the pages from the mark less the margin), the page that finds new tokens
// with no mark (a walk of the whole table), the daily pass over tokens with a workflow on record, and a
// digest's query for a user's tokens falling due together (by our own index on expiry_workflows).
import type { Pool } from 'pg';
import { withDiscoveryMark } from '../../src/db/discovery';
import { DISCOVERY_ID_MARGIN } from '../../src/discovery/pass';
import type { TokenRow } from '../../src/registry/adapter';
import { cratesIoRegistry } from '../../src/registry/cratesIo';
import { SWEEP_PAGE_SIZE } from '../../src/sweep/contract';
import { candidateExpiries } from '../../src/tokenExpiry/digest';
import { createCratesIoDatabase } from '../lib/cratesIoDatabase';
import type { BenchOptions } from '../lib/options';
import { reported } from '../lib/report';
import type { ScenarioResult } from '../lib/scenario';
import { medianOfWarmRuns } from '../lib/stats';

const RUNS = 5;
/** Tokens the registry wrote since the last discovery pass. */
const NEW_TOKENS = 500;
/** The scheduled sweep's recheck horizon with the defaults: 7d + 2 x 1d. */
const HORIZON_MS = 9 * 86_400_000;
/** A digest's user: tokens made together (one per CI job), all expiring in 30 days. */
const DIGEST_USER = 2;
const DIGEST_BATCH = 5;
const DAY_MS = 86_400_000;

const timed = <T>(fn: () => Promise<T>) => medianOfWarmRuns(fn, RUNS);

/** Reads pages of SWEEP_PAGE_SIZE in id order from `afterId` until a short one, as the sweep and discovery do. */
async function readPages(
  afterId: string | null,
  page: (afterId: string | null) => Promise<TokenRow[]>,
): Promise<{ pages: number; tokens: number }> {
  for (let pages = 1, tokens = 0; ; pages++) {
    const rows = await page(afterId);
    tokens += rows.length;
    if (rows.length < SWEEP_PAGE_SIZE) return { pages, tokens };
    afterId = rows[rows.length - 1]?.id ?? null;
  }
}

/** As the registry's owner: its tokens, then our bookkeeping as it stands after a day of running. */
async function fill(registry: Pool, rows: number): Promise<void> {
  const users = Math.max(DIGEST_USER, Math.ceil(rows / 100));
  await registry.query(`INSERT INTO users (gh_login, gh_id, username) SELECT 'u' || g, g, 'u' || g FROM generate_series(1, $1) g`, [users]);
  await registry.query(`INSERT INTO emails (user_id, email, verified) SELECT id, gh_login || '@example.com', true FROM users`);
  await registry.query('SELECT setseed(0.42)');
  for (let from = 0; from < rows - DIGEST_BATCH; from += 100_000) {
    await registry.query(
      `INSERT INTO api_tokens (user_id, token, name, expired_at, revoked)
       SELECT 1 + (g % $3), sha256(convert_to('crates-' || g, 'UTF8')), 'bench ' || g,
              CASE WHEN random() < 0.2 THEN NULL ELSE now() + (random() * 395 - 30) * interval '1 day' END, random() < 0.02
         FROM generate_series($1::int, $2::int) g`,
      [from, Math.min(rows - DIGEST_BATCH, from + 100_000) - 1, users],
    );
  }
  await registry.query(
    `INSERT INTO api_tokens (user_id, token, name, expired_at)
     SELECT $1, sha256(convert_to('batch-' || g, 'UTF8')), 'ci ' || g, date_trunc('minute', now()) + interval '30 days'
       FROM generate_series(1, $2) g`,
    [DIGEST_USER, DIGEST_BATCH],
  );
  // Steady state: every token with an expiry has its workflow on record (owner and expiry too, for digests),
  // revoked ones cancelled, and the last discovery pass saw every token so far.
  await registry.query(
    `INSERT INTO expiry_workflows (token_id, user_id, expires_at, started_at, cancelled_at)
     SELECT id, user_id, expired_at, now() - interval '1 day', CASE WHEN revoked THEN now() END
       FROM api_tokens WHERE expired_at IS NOT NULL`,
  );
  await registry.query('UPDATE token_discovery SET high_water = (SELECT max(id) FROM api_tokens), passed_at = now()');
  // Then the registry writes new tokens, which nothing has told us of.
  await registry.query(
    `INSERT INTO api_tokens (user_id, token, name, expired_at)
     SELECT 1, sha256(convert_to('new-' || g, 'UTF8')), 'new', now() + interval '90 days' FROM generate_series(1, $1) g`,
    [NEW_TOKENS],
  );
  await registry.query('VACUUM ANALYZE api_tokens, expiry_workflows');
}

export async function cratesIoSweepScenario(options: BenchOptions): Promise<ScenarioResult> {
  const database = await createCratesIoDatabase(options.adminUrl, `${options.databasePrefix}_crates_io`, { poolSize: 2 });
  const db = database.pool;
  try {
    options.log(`[crates-io-sweep] filling api_tokens with ${options.scanRows.toLocaleString('en-US')} tokens`);
    await fill(database.registry, options.scanRows);
    const now = new Date();
    const findNew = (afterId: string | null) => cratesIoRegistry.findTokensWithoutWorkflow(db, { afterId, limit: SWEEP_PAGE_SIZE, now });

    // A discovery pass without its starts: the mark's row lock, the newest id, then the pages from the mark less
    // the margin (src/discovery/pass.ts). It keeps the mark where it is, so that every run reads the same range.
    const discovery = await timed(async () =>
      withDiscoveryMark(db, async (mark) => {
        const throughId = await cratesIoRegistry.maxTokenId(db);
        const afterId = String(BigInt(mark ?? '0') - DISCOVERY_ID_MARGIN);
        return { value: { afterId, throughId, ...(await readPages(afterId, findNew)) }, mark: mark ?? '0' };
      }),
    );
    if (!discovery.value || discovery.value.tokens !== NEW_TOKENS) {
      throw new Error(`the discovery pass found ${JSON.stringify(discovery.value)}, expected ${NEW_TOKENS} tokens`);
    }
    const noMark = await timed(() => findNew(null));

    const pass = await timed(() => {
      const until = new Date(now.getTime() + HORIZON_MS);
      return readPages(null, (afterId) =>
        cratesIoRegistry.findStoppedCandidates(db, { afterId, limit: SWEEP_PAGE_SIZE, now, until, recordedBefore: null }),
      );
    });

    // The first of the batch's 7d warnings falls due: which of the user's tokens does its email cover?
    const { rows: batch } = await db.query<{ id: string; createdAt: Date; expiredAt: Date }>(
      `SELECT id::text, created_at AS "createdAt", expired_at AS "expiredAt" FROM api_tokens
        WHERE user_id = $1 AND name LIKE 'ci %' ORDER BY id LIMIT 1`,
      [DIGEST_USER],
    );
    const leader = batch[0];
    if (!leader) throw new Error('the digest batch is missing');
    const beforeExpiryMs = 7 * DAY_MS;
    const range = candidateExpiries(
      { tokenId: leader.id, createdAt: leader.createdAt.getTime(), expiresAt: leader.expiredAt.getTime() },
      { kind: 'warning', beforeExpiryMs },
      3_600_000,
      leader.expiredAt.getTime() - beforeExpiryMs,
    );
    const digest = await timed(() =>
      cratesIoRegistry.findTokensOfUserExpiringBetween(db, {
        userId: String(DIGEST_USER),
        excludeTokenId: leader.id,
        from: new Date(range.from),
        to: new Date(range.to),
      }),
    );

    const table = `${options.scanRows.toLocaleString('en-US')} crates.io-shaped tokens`;
    const d = discovery.value;
    return {
      figures: [
        reported(
          'crates-io-sweep',
          `a discovery pass's reads, ${NEW_TOKENS} new tokens since its mark (${table})`,
          discovery.ms,
          'ms',
          `${d.tokens} found in ${d.pages} pages, ids ${d.afterId}..${d.throughId}: the mark less ${DISCOVERY_ID_MARGIN} ids, a primary-key range`,
        ),
        reported('crates-io-sweep', `finding the ${NEW_TOKENS} new tokens with no mark (one page)`, noMark.ms, 'ms', `${noMark.value.length} found; a walk of both primary keys`),
        reported('crates-io-sweep', 'the daily pass over recorded workflows, 9-day horizon', pass.ms, 'ms', `${pass.value.pages} pages, ${pass.value.tokens} tokens`),
        reported(
          'crates-io-sweep',
          "a digest's candidates: one user's tokens falling due together",
          digest.ms,
          'ms',
          `${digest.value.length} found; by expiry_workflows (user_id, expires_at), then api_tokens by id`,
        ),
      ],
      details: {
        rows: options.scanRows,
        discoveryPass: { ms: discovery.ms, ...d },
        noMarkPage: { ms: noMark.ms, found: noMark.value.length },
        dailyPass: { ms: pass.ms, ...pass.value },
        digestCandidates: { ms: digest.ms, found: digest.value.length, from: new Date(range.from), to: new Date(range.to) },
        method: `median of ${RUNS} warm runs, as the restricted role from registry-sql`,
      },
    };
  } finally {
    if (options.keepDatabases) await Promise.allSettled([database.pool.end(), database.registry.end()]);
    else await database.drop();
  }
}
