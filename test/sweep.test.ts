import { Client, WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { createSweepActivities } from '../activities/sweep';
import { progressReporter, runBackfill, type BackfillProgress } from '../src/sweep/backfill';
import { taskQueueOf, type Config } from '../src/config';
import { tokenExpiryWorkflowId, type TokenExpiryStatus } from '../src/tokenExpiry/contract';
import { listNotifications } from '../src/db/notifications';
import { builtinRegistry } from '../src/registry/builtin';
import { recheckHorizonMs, sweepScheduleOptions } from '../src/sweep/schedule';
import { startMissingWorkflows } from '../src/sweep/pages';
import type { TokenBatchDeps } from '../src/tokenExpiry/batch';
import type { SweepInput, SweepResult } from '../src/sweep/contract';
import { startTokenExpiryWorkflow } from '../src/tokenExpiry/client';
import { TestSystem } from './helpers/system';
import { TEST_INSTANCE } from './helpers/database';
import { registryAdapter } from '../src/registry';

const DAY = 86_400_000;

const system = TestSystem.use();
let sweeps = 0;

beforeEach(async () => {
  // The test server is new for each test; workflows recorded by an earlier test don't exist in it.
  // Ids restart at 1, so mixedTokens' ten run from 1 to 10: pages must follow 9 with 10, not "10" with "9".
  await system.db.query('TRUNCATE api_tokens, expiry_workflows, expiry_notifications RESTART IDENTITY CASCADE');
});


/**
 * A token row written directly, as a registry that predates the system (or crashed mid-create) leaves it;
 * `recorded` ones are on record as started a day ago, well before any sweep in the test.
 */
async function insertToken(
  userId: string,
  { expiresInMs, revoked = false, recorded = false }: { expiresInMs: number | null; revoked?: boolean; recorded?: boolean },
): Promise<string> {
  const { rows } = await system.db.query<{ id: string }>(
    `INSERT INTO api_tokens (user_id, token, name, created_at, expired_at, revoked)
     VALUES ($1, sha256(gen_random_uuid()::text::bytea), 'ci', now() - interval '30 days', $2, $3)
     RETURNING id::text`,
    [userId, expiresInMs === null ? null : new Date(Date.now() + expiresInMs), revoked],
  );
  const id = rows[0]!.id;
  if (recorded) {
    await system.db.query(`INSERT INTO expiry_workflows (token_id, started_at) VALUES ($1, now() - interval '1 day')`, [id]);
  }
  return id;
}

/** One of each kind of token the sweep must tell apart. */
async function mixedTokens(config: Config) {
  const user = await system.newUser();
  const missing: string[] = [];
  for (let i = 1; i <= 5; i++) missing.push(await insertToken(user.id, { expiresInMs: (30 + i) * DAY }));
  const revoked = await insertToken(user.id, { expiresInMs: 30 * DAY, revoked: true });
  const expired = await insertToken(user.id, { expiresInMs: -DAY });
  const noExpiry = await insertToken(user.id, { expiresInMs: null });
  // Started by the registry a day ago, as usual: the sweep must leave its run alone.
  const running = await insertToken(user.id, { expiresInMs: 40 * DAY, recorded: true });
  const workflowId = await startTokenExpiryWorkflow(system.env.client, (await builtinRegistry.findToken(system.db, running))!, config);
  const runningRunId = (await system.env.client.workflow.getHandle(workflowId).describe()).runId;
  // Recorded as started, but Temporal has never heard of it (a lost namespace, a deleted workflow).
  const lost = await insertToken(user.id, { expiresInMs: 50 * DAY, recorded: true });
  return { missing, revoked, expired, noExpiry, running, runningRunId, lost };
}

async function execution(tokenId: string): Promise<{ status: string; runId?: string }> {
  try {
    const description = await system.env.client.workflow.getHandle(tokenExpiryWorkflowId(tokenId, TEST_INSTANCE)).describe();
    return { status: description.status.name, runId: description.runId };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { status: 'NOT_FOUND' };
    throw err;
  }
}

async function startedAt(tokenId: string): Promise<Date | null> {
  return (await builtinRegistry.findToken(system.db, tokenId))!.expiryWorkflowStartedAt;
}

/** Checks that exactly the tokens that should have a workflow have one, and are recorded as started. */
async function expectSweptState(tokens: Awaited<ReturnType<typeof mixedTokens>>): Promise<void> {
  for (const id of [...tokens.missing, tokens.lost]) {
    expect(await execution(id)).toMatchObject({ status: 'RUNNING' });
    expect(await startedAt(id)).toBeInstanceOf(Date);
  }
  for (const id of [tokens.revoked, tokens.expired, tokens.noExpiry]) {
    expect(await execution(id)).toEqual({ status: 'NOT_FOUND' });
    expect(await startedAt(id)).toBeNull();
  }
  expect(await execution(tokens.running)).toEqual({ status: 'RUNNING', runId: tokens.runningRunId });
}

/**
 * A worker with the reminder and the sweep activities, as src/programs/worker.ts builds it. With `tokenConfig`,
 * the sweep starts token workflows on a task queue of their own that no worker polls: they stay put,
 * so the test server has no reminder timers to skip ahead to while the sweep runs.
 */
async function withWorker<T>(
  config: Config,
  fn: () => Promise<T>,
  { client = system.env.client, tokenConfig = config }: { client?: Client; tokenConfig?: Config } = {},
): Promise<T> {
  return system.withWorker(config, fn, {
    wrap: (activities) => ({
      ...activities,
      ...createSweepActivities({ registry: registryAdapter(tokenConfig), db: system.db, client, clock: system.clock, config: tokenConfig }),
    }),
  });
}

async function sweep(config: Config, input: SweepInput) {
  const handle = await system.env.client.workflow.start('tokenExpirySweepWorkflow', {
    taskQueue: taskQueueOf(config),
    workflowId: `token-expiry-sweep-test-${++sweeps}`,
    args: [input],
  });
  const result: SweepResult = await handle.result();
  return { handle, result };
}

function backfillDeps(config: Config, client: Client = system.env.client): TokenBatchDeps {
  return { registry: registryAdapter(config), db: system.db, client, config, now: () => new Date(), log: { info: () => undefined, warn: () => undefined } };
}

describe('the sweep workflow', () => {
  test('starts exactly the missing workflows, in pages across continue-as-new; a second sweep starts none', async () => {
    const config = system.config();
    const tokenConfig = system.config();
    const tokens = await mixedTokens(tokenConfig);

    await withWorker(config, async () => {
      // Two tokens a page, two pages a run. The five it starts are not looked up again in the same sweep:
      // 3 pages of missing tokens and 2 of recorded ones (2, then none) make 3 runs.
      const first = await sweep(config, { pageSize: 2, pagesPerRun: 2 });
      expect(first.result).toEqual({ scanned: 5, started: 5, failed: 0, checked: 2, restarted: 1, runs: 3 });
      const firstRun = system.env.client.workflow.getHandle(first.handle.workflowId, first.handle.firstExecutionRunId);
      expect((await firstRun.describe()).status.name).toBe('CONTINUED_AS_NEW');
      await expectSweptState(tokens);

      const second = await sweep(config, { pageSize: 2, pagesPerRun: 2 });
      expect(second.result).toEqual({ scanned: 0, started: 0, failed: 0, checked: 7, restarted: 0, runs: 3 });
      await expectSweptState(tokens);
    }, { tokenConfig });
  });

  test('a terminated workflow is started again and does not send an email that was already sent', async () => {
    const config = system.config({ EXPIRY_REMINDERS: '7d,1d' });
    const tokens = system.tokens(config);
    const user = await system.newUser();
    const soon = await tokens.create(user, {
      name: 'ci',
      expiresAt: new Date(Date.now() + 10 * DAY),
      crateScopes: null,
      endpointScopes: null,
    });
    // Terminated too, but far from its first reminder: outside the horizon, so not looked at yet.
    const later = await tokens.create(user, {
      name: 'later',
      expiresAt: new Date(Date.now() + 60 * DAY),
      crateScopes: null,
      endpointScopes: null,
    });
    const handle = system.env.client.workflow.getHandle(soon.workflowId as string);
    const mail = () => system.postmark.sent.filter((m) => m.To === user.email).map((m) => m.Subject);

    await withWorker(config, async () => {
      await system.env.sleep(4 * DAY);
      expect(mail()).toEqual(['crates.io: your API token "ci" expires in 7 days']);
      await handle.terminate('by hand');
      await system.env.client.workflow.getHandle(later.workflowId as string).terminate('by hand');

      const { result } = await sweep(config, { recheckWithinMs: recheckHorizonMs(config) });
      expect(result).toMatchObject({ scanned: 0, started: 0, checked: 1, restarted: 1, failed: 0 });
      expect(await execution(soon.token.id)).toMatchObject({ status: 'RUNNING' });
      expect(await execution(later.token.id)).toMatchObject({ status: 'TERMINATED' });

      const status: TokenExpiryStatus = await handle.result();
      expect(status.reminders.map((r) => [r.key, r.outcome])).toEqual([
        ['7d', 'sent'],
        ['1d', 'sent'],
        ['expired', 'sent'],
      ]);
    });

    expect(mail()).toEqual([
      'crates.io: your API token "ci" expires in 7 days',
      'crates.io: your API token "ci" expires tomorrow',
      'crates.io: your API token "ci" has expired',
    ]);
    const rows = await listNotifications(system.db, soon.token.id);
    expect(rows.map((r) => [r.reminder, r.status, r.attempts])).toEqual([
      ['7d', 'sent', 1],
      ['1d', 'sent', 1],
      ['expired', 'sent', 1],
    ]);
  });

  test('a token revoked while the sweep starts its workflow gets that workflow cancelled', async () => {
    const config = system.config();
    const user = await system.newUser();
    const id = await insertToken(user.id, { expiresInMs: 30 * DAY });
    // The revocation lands between the sweep's read and its start, and finds no workflow to cancel.
    const racing = new Client({
      connection: system.env.connection,
      namespace: system.env.namespace ?? 'default',
      interceptors: {
        workflow: [
          {
            async startWithDetails(input, next) {
              await system.db.query('UPDATE api_tokens SET revoked = true WHERE id = $1', [id]);
              return next(input);
            },
          },
        ],
      },
    });

    await withWorker(
      config,
      async () => {
        const { result } = await sweep(config, {});
        expect(result).toMatchObject({ scanned: 1, started: 1, failed: 0 });
        const err = await system.env.client.workflow.getHandle(tokenExpiryWorkflowId(id, TEST_INSTANCE)).result().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(WorkflowFailedError);
        expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
      },
      { client: racing },
    );
  });

  test('a page where every start fails is retried, not skipped', async () => {
    const config = system.config();
    const user = await system.newUser();
    const id = await insertToken(user.id, { expiresInMs: 30 * DAY });
    let failures = 2;
    const flaky = new Client({
      connection: system.env.connection,
      namespace: system.env.namespace ?? 'default',
      interceptors: {
        workflow: [
          {
            async startWithDetails(input, next) {
              if (failures-- > 0) throw new Error('Temporal is away');
              return next(input);
            },
          },
        ],
      },
    });

    await withWorker(
      config,
      async () => {
        const { handle, result } = await sweep(config, {});
        expect(result).toMatchObject({ scanned: 1, started: 1, failed: 0 });
        // The page was tried three times, with the cursor where it was, before it went through.
        const history = await handle.fetchHistory();
        const pages = history.events?.filter((e) => e.activityTaskStartedEventAttributes) ?? [];
        expect(pages.map((e) => e.activityTaskStartedEventAttributes?.attempt)).toEqual([3, 1]);
      },
      { client: flaky },
    );
    expect(await execution(id)).toMatchObject({ status: 'RUNNING' });
  });
});

describe('the backfill', () => {
  test('starts exactly the missing workflows, without a worker; a second run starts none', async () => {
    const config = system.config();
    const tokens = await mixedTokens(config);
    const progress: BackfillProgress[] = [];

    const first = await runBackfill(backfillDeps(config), { pageSize: 2 }, (p) => progress.push(p));
    expect(first).toMatchObject({ scanned: 5, started: 5, failed: 0, checked: 2, restarted: 1, pages: 5, failures: [] });
    await expectSweptState(tokens);
    expect(progress.map((p) => [p.phase, p.done, p.total, p.phaseDone])).toEqual([
      ['missing', 2, 5, false],
      ['missing', 4, 5, false],
      ['missing', 5, 5, true],
      ['stopped', 2, 2, false],
      ['stopped', 2, 2, true],
    ]);

    const second = await runBackfill(backfillDeps(config), { pageSize: 2 });
    expect(second).toMatchObject({ scanned: 0, started: 0, failed: 0, checked: 7, restarted: 0 });
    await expectSweptState(tokens);
  });

  test('is safe to run twice at once, and while tokens are being created', async () => {
    const config = system.config();
    const user = await system.newUser();
    const legacy: string[] = [];
    for (let i = 0; i < 40; i++) legacy.push(await insertToken(user.id, { expiresInMs: (20 + i) * DAY }));
    const service = system.tokens(config);

    const [a, b, created] = await Promise.all([
      runBackfill(backfillDeps(config), { pageSize: 7 }),
      runBackfill(backfillDeps(config), { pageSize: 5 }),
      Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          service.create(user, {
            name: `new-${i}`,
            expiresAt: new Date(Date.now() + (30 + i) * DAY),
            crateScopes: null,
            endpointScopes: null,
          }),
        ),
      ),
    ]);

    expect(a.failed + b.failed).toBe(0);
    expect(created.every((c) => c.workflowError === undefined)).toBe(true);
    for (const id of [...legacy, ...created.map((c) => c.token.id)]) {
      expect(await execution(id)).toMatchObject({ status: 'RUNNING' });
      expect(await startedAt(id)).toBeInstanceOf(Date);
    }
    const again = await runBackfill(backfillDeps(config));
    expect(again).toMatchObject({ scanned: 0, started: 0, restarted: 0, failed: 0, checked: 50 });
  });

  test('a page starts its 500 workflows 50 at a time', async () => {
    const config = system.config();
    const user = await system.newUser();
    await system.db.query(
      `INSERT INTO api_tokens (user_id, token, name, expired_at)
       SELECT $1, sha256(gen_random_uuid()::text::bytea), 'bulk', now() + interval '30 days' FROM generate_series(1, 501)`,
      [user.id],
    );
    // Bounded concurrency is what makes hundreds of starts a second possible without flooding the server;
    // the rate itself depends on the server, so it is measured on the dev server, not asserted here.
    let inFlight = 0;
    let most = 0;
    const counting = new Client({
      connection: system.env.connection,
      namespace: system.env.namespace ?? 'default',
      interceptors: {
        workflow: [
          {
            async startWithDetails(input, next) {
              most = Math.max(most, ++inFlight);
              try {
                return await next(input);
              } finally {
                inFlight--;
              }
            },
          },
        ],
      },
    });

    const page = await startMissingWorkflows(backfillDeps(config, counting), { afterId: null, limit: 500 });

    expect(page.counts).toMatchObject({ scanned: 500, started: 500, failed: 0 });
    expect(most).toBe(50);
    const { rows } = await system.db.query<{ marked: string; last: string }>(
      'SELECT count(*) AS marked, max(token_id)::text AS last FROM expiry_workflows',
    );
    expect(rows[0]).toEqual({ marked: '500', last: page.nextAfterId });
  });
});

describe('backfill progress', () => {
  const progress = (done: number, phaseDone = false): BackfillProgress => ({
    phase: 'missing',
    done,
    total: 10,
    phaseDone,
    totals: { scanned: done, started: done - 1, failed: 1, checked: 0, restarted: 0 },
    elapsedMs: 1000,
  });

  test('plain lines when stderr is not a terminal', () => {
    const lines: string[] = [];
    const reporter = progressReporter({ write: (text: string) => lines.push(text) });
    reporter.update(progress(5));
    reporter.update(progress(10, true));
    reporter.finish();
    expect(lines).toEqual([
      'backfill: starting missing workflows: 5/10 tokens, 4 started, 1 failed\n',
      'backfill: starting missing workflows: 10/10 tokens, 9 started, 1 failed\n',
    ]);
  });

  test('a bar redrawn in place on a terminal', () => {
    let screen = '';
    const reporter = progressReporter({ write: (text: string) => (screen += text), isTTY: true, columns: 120 });
    reporter.update(progress(5));
    reporter.update(progress(10, true));
    reporter.finish();
    const frames = screen.split('\r\x1b[K').filter(Boolean);
    expect(frames).toHaveLength(2);
    expect(frames[0]).toMatch(/^\[#+-+\] starting missing workflows 5\/10 50% 4 started, 1 failed 5\/s$/);
    expect(frames[1]).toMatch(/^\[#+\] starting missing workflows 10\/10 100% 9 started, 1 failed 10\/s\n$/);
  });
});

test('the schedule runs the sweep every SWEEP_INTERVAL, one at a time, looking far enough ahead', () => {
  // The time-skipping test server has no schedules (CreateSchedule fails), so ensureSweepSchedule
  // itself runs against the dev server; this checks what it asks for.
  const config = system.config({ SWEEP_INTERVAL: '12h', EXPIRY_REMINDERS: '30d,7d' });
  const options = sweepScheduleOptions(config);
  // One schedule per instance: another instance's worker never takes it over.
  expect(options.scheduleId).toBe('token-expiry-sweep-test');
  expect(options.spec.intervals).toEqual([{ every: 12 * 3_600_000 }]);
  expect(options.policies).toEqual({ overlap: 'SKIP', catchupWindow: 12 * 3_600_000 });
  expect(options.action).toMatchObject({
    workflowType: 'tokenExpirySweepWorkflow',
    taskQueue: taskQueueOf(config),
    args: [{ recheckWithinMs: 31 * DAY }],
  });
});
