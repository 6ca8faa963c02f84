// baseline: the crates.io design side by side with ours. (1) What one scan costs on a table of
// --scan-rows tokens, with and without a partial index, against what our sweep's queries cost on the
// same table. (2) Its lateness: the same "many due in one second" load, found by a scan every
// --baseline-interval seconds and sent one at a time; and what that means for their daily scan.
import type { Pool } from 'pg';
import { builtinRegistry } from '../../src/registry/builtin';
import { createPostmarkMailer } from '../../src/email/postmarkMailer';
import { startFakePostmark } from '../../scripts/devtools/fakePostmark';
import { createScratchDatabase } from '../../scripts/devtools/scratchDatabase';
import type { BenchOptions } from '../lib/options';
import { reported, type Figure } from '../lib/report';
import type { ScenarioResult } from '../lib/scenario';
import { insertTokens, seedUsers } from '../lib/seed';
import { quantile, round, summarize, medianOfWarmRuns } from '../lib/stats';
import { sleep } from '../lib/workload';
import { CRATES_IO_SCAN, CRATES_IO_SCAN_INDEX, scanAndSend } from './baselineScan';

const DAY_MS = 86_400_000;
const RUNS = 5;
/** Our scheduled sweep looks for stopped workflows among tokens expiring within 7d + 2 x 1d (src/schedule.ts). */
const RECHECK_HORIZON_MS = 9 * DAY_MS;

export async function baselineScenario(options: BenchOptions): Promise<ScenarioResult> {
  const cost = await scanCost(options);
  const lateness = await scanLateness(options);
  return { figures: [...cost.figures, ...lateness.figures], details: { scanCost: cost.details, lateness: lateness.details } };
}

async function scanCost(options: BenchOptions): Promise<ScenarioResult> {
  const log = (m: string) => options.log(`[baseline] ${m}`);
  const database = await createScratchDatabase(options.adminUrl, `${options.databasePrefix}_baseline-scan`);
  try {
    const db = database.pool;
    const rows = options.scanRows;
    log(`filling api_tokens with ${rows.toLocaleString('en-US')} tokens`);
    await fillRegistry(db, rows);
    const { rows: sizeRows } = await db.query<{ bytes: string; due: string }>(
      `SELECT pg_total_relation_size('api_tokens')::text AS bytes, (SELECT count(*) FROM (${CRATES_IO_SCAN}) s)::text AS due`,
    );
    const tableMiB = Number(sizeRows[0]?.bytes) / 2 ** 20;
    const dueRows = Number(sizeRows[0]?.due);

    const without = await explain(db, CRATES_IO_SCAN);
    await db.query(CRATES_IO_SCAN_INDEX);
    await db.query('ANALYZE api_tokens');
    const withIndex = await explain(db, CRATES_IO_SCAN);

    // Ours: a sweep page of tokens without a workflow (partial index), and the whole recheck pass.
    const now = new Date();
    const missingPage = await timed(() => builtinRegistry.findTokensWithoutWorkflow(db, { afterId: null, limit: 500, now }));
    const recheck = await timed(async () => {
      let afterId: string | null = null;
      let pages = 0;
      let tokens = 0;
      const until = new Date(now.getTime() + RECHECK_HORIZON_MS);
      for (;;) {
        const page = await builtinRegistry.findStoppedCandidates(db, { afterId, limit: 500, now, until, recordedBefore: null });
        pages++;
        tokens += page.length;
        if (page.length < 500) return { pages, tokens };
        afterId = page[page.length - 1]?.id ?? null;
      }
    });
    const table = `${rows.toLocaleString('en-US')} tokens`;
    const figures: Figure[] = [
      reported('baseline', `crates.io scan, no index (EXPLAIN ANALYZE, ${table})`, without.ms, 'ms', `${scanKind(without.plan)}, ${dueRows} due`),
      reported('baseline', 'crates.io scan, with a partial index', withIndex.ms, 'ms', scanKind(withIndex.plan)),
      reported('baseline', 'ours: a sweep page of tokens without a workflow', missingPage.ms, 'ms', 'partial index, round trip'),
      reported('baseline', 'ours: the daily recheck pass, 9-day horizon', recheck.ms, 'ms', `${recheck.value.pages} pages, ${recheck.value.tokens} tokens, round trips`),
    ];
    return {
      figures,
      details: {
        rows,
        tableMiB: round(tableMiB),
        dueInScan: dueRows,
        cratesIoScan: { withoutIndex: without, withPartialIndex: withIndex },
        ours: { missingPageMs: missingPage.ms, recheckPass: { ms: recheck.ms, ...recheck.value } },
        method: `median of ${RUNS} warm runs`,
      },
    };
  } finally {
    if (!options.keepDatabases) await database.drop();
  }
}

/**
 * A registry in steady state: 20 % of tokens never expire, the rest expire from 30 days ago to a year
 * ahead, 2 % are revoked; the daily scan has already notified everything expiring within 2 days, so
 * one day's worth is due. Every token with an expiry has its workflow on record (ours).
 */
async function fillRegistry(db: Pool, rows: number): Promise<void> {
  const users = await seedUsers(db, Math.max(1, Math.ceil(rows / 100)));
  const client = await db.connect();
  try {
    await client.query('SELECT setseed(0.42)');
    for (let from = 0; from < rows; from += 100_000) {
      await client.query(
        `INSERT INTO api_tokens (user_id, token, name, expired_at, revoked, expiry_notification_at)
         SELECT $3 + (g % $4), sha256(convert_to('scan-' || g, 'UTF8')), 'bench ' || g, e, r,
                CASE WHEN e < now() + interval '2 days' THEN e - interval '3 days' END
           FROM (SELECT g, random() < 0.02 AS r,
                        CASE WHEN random() < 0.2 THEN NULL ELSE now() + (random() * 395 - 30) * interval '1 day' END AS e
                   FROM generate_series($1::int, $2::int) g) s`,
        [from, Math.min(rows, from + 100_000) - 1, users.firstId, users.count],
      );
    }
    await client.query(
      `INSERT INTO expiry_workflows (token_id, started_at, cancelled_at)
       SELECT id, now() - interval '1 day', CASE WHEN revoked THEN now() - interval '1 day' END
         FROM api_tokens WHERE expired_at IS NOT NULL`,
    );
  } finally {
    client.release();
  }
  await db.query('VACUUM ANALYZE api_tokens, expiry_workflows');
}

interface Explained {
  ms: number;
  plan: string;
  runsMs: number[];
}

/** Planning + execution time of the median of RUNS warm runs (one cold run first), and the plan's shape. */
async function explain(db: Pool, sql: string): Promise<Explained> {
  const runsMs: number[] = [];
  let plan = '';
  for (let i = 0; i <= RUNS; i++) {
    const { rows } = await db.query<{ 'QUERY PLAN': [{ Plan: PlanNode; 'Planning Time': number; 'Execution Time': number }] }>(
      `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${sql}`,
    );
    const result = rows[0]?.['QUERY PLAN'][0];
    if (!result) throw new Error('EXPLAIN returned nothing');
    if (i > 0) runsMs.push(round(result['Planning Time'] + result['Execution Time'], 2));
    plan = shape(result.Plan);
  }
  return { ms: quantile(runsMs, 0.5), plan, runsMs };
}

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

/** "Seq Scan" or "Bitmap Index Scan on ..." : the leaf that reads the table. */
function scanKind(plan: string): string {
  return plan.split(' > ').pop() ?? plan;
}

function shape(node: PlanNode): string {
  const self = node['Index Name'] ? `${node['Node Type']} on ${node['Index Name']}` : node['Node Type'];
  const children = (node.Plans ?? []).map(shape);
  return children.length === 0 ? self : `${self} > ${children.join(', ')}`;
}

const timed = <T>(fn: () => Promise<T>) => medianOfWarmRuns(fn, RUNS);

async function scanLateness(options: BenchOptions): Promise<ScenarioResult> {
  const log = (m: string) => options.log(`[baseline] ${m}`);
  const [database, postmark] = await Promise.all([createScratchDatabase(options.adminUrl, `${options.databasePrefix}_baseline-sim`), startFakePostmark()]);
  try {
    const db = database.pool;
    postmark.latencyMs = options.latencyMs;
    const mailer = createPostmarkMailer({ serverToken: postmark.serverToken, apiUrl: postmark.url, timeoutSeconds: 20 });
    const n = options.baselineTokens;
    const intervalMs = options.baselineIntervalSeconds * 1000;
    const users = await seedUsers(db, Math.max(1, Math.ceil(n / 10)));
    // Due (3 days before expiry) within one second, a moment from now, like the fan-in.
    const dueAt = Math.ceil((Date.now() + 2_000) / 1000) * 1000;
    await insertTokens(db, { count: n, users, firstExpiry: new Date(dueAt + 3 * DAY_MS), spreadMs: 1_000 });
    const { rows } = await db.query<{ id: string; due: Date }>(`SELECT id::text, expired_at - interval '3 days' AS due FROM api_tokens`);
    const dueOf = new Map(rows.map((r) => [r.id, r.due.getTime()]));

    // The scan's phase against the due time is anyone's guess: draw it, and say which it was.
    const phaseMs = Math.round(Math.random() * intervalMs);
    let nextScan = dueAt + 1_000 + phaseMs;
    log(`${n} tokens due at ${new Date(dueAt).toISOString()}; scanning every ${intervalMs / 1000} s, first at +${(phaseMs + 1000) / 1000} s`);
    const scans: { at: number; found: number; sent: number; seconds: number }[] = [];
    while (postmark.sent.length < n) {
      await sleep(Math.max(0, nextScan - Date.now()));
      const started = Date.now();
      const result = await scanAndSend(db, mailer);
      scans.push({ at: started - dueAt, found: result.found, sent: result.sent, seconds: (Date.now() - started) / 1000 });
      // A run still going when the next is due delays it (their job queue deduplicates).
      nextScan = Math.max(nextScan + intervalMs, Date.now());
      if (scans.length > 1_000) throw new Error('the baseline scan is not getting through its tokens');
    }
    const late = postmark.sent.map((m) => (m.receivedAt.getTime() - (dueOf.get(m.Metadata.token_id ?? '') ?? Number.NaN)) / 1000);
    const lateness = summarize(late);
    const busy = scans.filter((s) => s.sent > 0);
    const sendSeconds = busy.reduce((sum, s) => sum + s.seconds, 0);
    const sendRate = n / Math.max(sendSeconds, 0.001);
    // The same job run daily, as crates.io does: the phase is uniform over the day, then the queue.
    const daySeconds = DAY_MS / 1000;
    const queueSeconds = n / sendRate;
    const note = `scan every ${options.baselineIntervalSeconds} s, ${n} due in one second`;
    const figures: Figure[] = [
      reported('baseline', 'lateness p50', lateness.p50, 's', note),
      reported('baseline', 'lateness p99', lateness.p99, 's', note),
      reported('baseline', 'lateness max', lateness.max, 's', note),
      reported('baseline', 'sends per second, one at a time as theirs', sendRate, '/s'),
      reported('baseline', 'lateness with their daily scan, p50', (daySeconds / 2 + queueSeconds / 2) / 3600, 'h', 'derived'),
      reported('baseline', 'lateness with their daily scan, max', (daySeconds + queueSeconds) / 3600, 'h', 'derived'),
    ];
    return {
      figures,
      details: {
        tokens: n,
        intervalSeconds: options.baselineIntervalSeconds,
        firstScanAfterDueSeconds: (phaseMs + 1000) / 1000,
        scans,
        latenessSeconds: Object.fromEntries(Object.entries(lateness).map(([k, v]) => [k, round(v, 2)])),
        sendsPerSecond: round(sendRate, 1),
      },
    };
  } finally {
    await postmark.close();
    if (!options.keepDatabases) await database.drop();
  }
}
