// discovery: how long a token the registry inserts by plain SQL waits for its workflow, on a crates.io-shaped
// database attached as docs/operations.md, "Attach to your registry", says (registry-sql through psql, the restricted role),
// with the worker as production runs it (it runs discovery itself). Twice: with the change trigger and passes
// off (TOKEN_DISCOVERY_INTERVAL=0), then without the trigger, passes every --discovery-interval. Latency is
// token_expiry.expiry_workflows.started_at - api_tokens.created_at, both the database's clock.
import { TOKEN_CHANGE_CHANNEL } from '../../src/registry/tokenChanges';
import { parseDuration } from '../../src/duration';
import { instanceOf } from '../../src/config';
import { tokenExpiryWorkflowId } from '../../src/tokenExpiry/contract';
import { createCratesIoDatabase, type CratesIoDatabase } from '../lib/cratesIoDatabase';
import type { BenchOptions } from '../lib/options';
import { judged, reported, type Figure } from '../lib/report';
import type { ScenarioResult } from '../lib/scenario';
import { withStack, type Stack } from '../lib/stack';
import { quantile, round } from '../lib/stats';
import { sleep } from '../lib/workload';

/** With the trigger: one insert every this often, as a busy registry's users make tokens. */
const TRIGGER_SPACING_MS = 200;
/**
 * Without it: inserts this fraction of an interval apart, so that they land at every phase of the pass timer
 * (0.17 of an interval does not divide it) and their waits sample the whole interval.
 */
const POLLED_SPACING = 0.17;
/** After the last insert, how long the last token may take: a pass interval or two and a slow start. */
const SETTLE_MS = 60_000;

interface Run {
  mode: 'trigger' | 'polled';
  tokens: number;
  spacingMs: number;
  intervalMs: number;
  /** Per token, ms from its insert to its workflow's start on record. */
  latenciesMs: number[];
  /** Of the tokens inserted, how many workflows describe says are running. */
  running: number;
}

async function waitUntil(what: string, deadline: number, check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function measure(options: BenchOptions, mode: Run['mode']): Promise<Run> {
  const trigger = mode === 'trigger';
  const interval = trigger ? '0' : options.discoveryInterval;
  const intervalMs = parseDuration(interval) ?? 0;
  const tokens = trigger ? options.triggerTokens : options.polledTokens;
  const spacingMs = trigger ? TRIGGER_SPACING_MS : Math.round(intervalMs * POLLED_SPACING);
  return withStack(
    options,
    {
      scenario: `discovery-${mode}`,
      env: { REGISTRY_SCHEMA: 'crates-io', TOKEN_DISCOVERY_INTERVAL: interval },
      database: () => createCratesIoDatabase(options.adminUrl, `${options.databasePrefix}_discovery_${mode}`, { trigger }),
    },
    async (stack: Stack<CratesIoDatabase>) => {
      const registry = stack.database.registry;
      const { rows: users } = await registry.query<{ id: number }>(
        `INSERT INTO users (gh_login, gh_id, username) VALUES ('bench', 1, 'bench') RETURNING id`,
      );
      const userId = users[0]?.id;
      await registry.query(`INSERT INTO emails (user_id, email, verified) VALUES ($1, 'bench@example.com', true)`, [userId]);
      // The worker LISTENs in both runs; a notification before it does would be lost, and so not measured.
      await waitUntil('the worker to LISTEN', Date.now() + 30_000, async () => {
        const { rowCount } = await registry.query(
          'SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND usename = $2 AND query = $3',
          [stack.database.name, stack.database.role, `LISTEN ${TOKEN_CHANGE_CHANNEL}`],
        );
        return rowCount === 1;
      });

      stack.log(`inserting ${tokens} tokens by plain SQL, one every ${spacingMs} ms (${trigger ? 'trigger' : `passes every ${interval}`})`);
      const ids: string[] = [];
      const began = Date.now();
      for (let i = 0; i < tokens; i++) {
        await sleep(Math.max(0, began + i * spacingMs - Date.now()));
        const { rows } = await registry.query<{ id: string }>(
          `INSERT INTO api_tokens (user_id, token, name, expired_at, endpoint_scopes)
           VALUES ($1, sha256(gen_random_uuid()::text::bytea), 'publish', now() + interval '90 days', '{publish-update}')
           RETURNING id::text`,
          [userId],
        );
        ids.push(rows[0]?.id as string);
      }
      const latency = async () =>
        (
          await registry.query<{ ms: string }>(
            `SELECT extract(epoch FROM w.started_at - t.created_at) * 1000 AS ms
               FROM api_tokens t JOIN expiry_workflows w ON w.token_id = t.id WHERE t.id = ANY($1::int[])`,
            [ids],
          )
        ).rows.map((row) => Number(row.ms));
      await waitUntil(`${tokens} workflows on record`, Date.now() + 2 * intervalMs + SETTLE_MS, async () => (await latency()).length === tokens);
      const latenciesMs = await latency();
      let running = 0;
      for (const id of ids) {
        const { status } = await stack.client.workflow.getHandle(tokenExpiryWorkflowId(id, instanceOf(stack.config))).describe();
        if (status.name === 'RUNNING') running++;
      }
      return { mode, tokens, spacingMs, intervalMs, latenciesMs, running };
    },
  );
}

function figuresOf(run: Run): Figure[] {
  const what = run.mode === 'trigger' ? 'with the trigger' : `without the trigger, passes every ${run.intervalMs / 1000} s`;
  const p95 = quantile(run.latenciesMs, 0.95);
  const max = Math.max(...run.latenciesMs);
  const bound =
    run.mode === 'trigger'
      ? 'NOTIFY, a 50 ms batch, the start and its record'
      : `expected: a wait of up to one interval (${run.intervalMs / 1000} s), then the pass`;
  return [
    reported('discovery', `insert to workflow started, ${what}, p50`, quantile(run.latenciesMs, 0.5), 'ms', `p95 ${round(p95)} ms, max ${round(max)} ms; ${bound}`),
    judged('discovery', `${what}: workflows running, of ${run.tokens} inserted one every ${run.spacingMs} ms`, run.running, '', '=', run.tokens),
  ];
}

export async function discoveryScenario(options: BenchOptions): Promise<ScenarioResult> {
  const runs = [await measure(options, 'trigger'), await measure(options, 'polled')];
  return {
    figures: runs.flatMap(figuresOf),
    details: Object.fromEntries(
      runs.map((run) => [
        run.mode,
        {
          tokens: run.tokens,
          spacingMs: run.spacingMs,
          intervalMs: run.intervalMs,
          running: run.running,
          p50Ms: round(quantile(run.latenciesMs, 0.5)),
          p95Ms: round(quantile(run.latenciesMs, 0.95)),
          maxMs: round(Math.max(...run.latenciesMs)),
          latenciesMs: run.latenciesMs.map((ms) => round(ms)),
        },
      ]),
    ),
  };
}
