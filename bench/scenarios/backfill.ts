// backfill: how fast the sweep's code starts missing workflows. Tokens are inserted with no workflow
// on record, then runBackfill (what `token-expiry backfill` and the scheduled sweep run, page by page)
// starts them all and then describes each one, with the worker taking the new workflows meanwhile.
import type { BackfillProgress } from '../../src/sweep/backfill';
import type { BenchOptions } from '../lib/options';
import os from 'node:os';
import { meterEngine, usageFigures, type EngineUsage } from '../lib/engineMeter';
import { cpuMeter } from '../lib/proc';
import { callsPer, persistenceCalls } from '../lib/serverMetrics';
import { judged, reported } from '../lib/report';
import type { ScenarioResult } from '../lib/scenario';
import { insertTokens, seedUsers } from '../lib/seed';
import { withStack, type Stack } from '../lib/stack';
import { round } from '../lib/stats';
import { startMissingWorkflows, waitUntilSleeping } from '../lib/workload';

const DAY_MS = 86_400_000;

export async function backfillScenario(options: BenchOptions): Promise<ScenarioResult> {
  return withStack(options, { scenario: 'backfill' }, async (stack) => {
    const n = options.backfill;
    const users = await seedUsers(stack.db, Math.max(1, Math.ceil(n / 10)));
    // Expiries 30 to 90 days out: every reminder lies ahead, so each workflow starts and sleeps.
    await insertTokens(stack.db, { count: n, users, firstExpiry: new Date(Date.now() + 30 * DAY_MS), spreadMs: 60 * DAY_MS });
    stack.log(`${n} tokens without a workflow; running the backfill`);

    const calls0 = await persistenceCalls(stack.server.metricsUrl);
    const storage0 = await storageBytes(stack);
    const meter = await meterEngine(stack, options.adminUrl);
    const started = Date.now();
    const cpu = cpuMeter({ worker: stack.worker.pid, server: stack.server.pid, bench: process.pid });
    let missingDoneMs = Number.NaN;
    let missingCpu: ReturnType<ReturnType<typeof cpuMeter>['stop']> | undefined;
    let missingUsage: Promise<EngineUsage> | undefined;
    const summary = await startMissingWorkflows(stack, {
      concurrency: options.backfillConcurrency,
      onProgress: (p: BackfillProgress) => {
        if (p.phase === 'missing' && p.phaseDone) {
          missingDoneMs = p.elapsedMs;
          missingCpu = cpu.stop();
          missingUsage = meter.stop(n);
        }
      },
    });
    const usage = await (missingUsage ?? meter.stop(n));
    const calls1 = await persistenceCalls(stack.server.metricsUrl);
    const drainCpu = cpuMeter({ worker: stack.worker.pid, server: stack.server.pid, bench: process.pid });
    const sleepingAt = await waitUntilSleeping(stack.client, n, Date.now() + 600_000);
    const drainUsage = drainCpu.stop();
    const storage1 = await storageBytes(stack);
    const storagePerWorkflow = storage0 === null || storage1 === null ? null : (storage1 - storage0) / n;
    const calls2 = await persistenceCalls(stack.server.metricsUrl);
    // Run again, as after a crash or by hand: nothing is missing now, and every recorded workflow is described.
    const again = await startMissingWorkflows(stack, { recheck: true, concurrency: options.backfillConcurrency });
    const startsPerSecond = summary.started / (missingDoneMs / 1000);
    const checksPerSecond = again.checked / again.seconds;
    return {
      figures: [
        judged('backfill', 'workflow starts per second', startsPerSecond, '/s', '>=', 300, `${summary.started} of ${n}, ${options.backfillConcurrency} at a time`),
        judged('backfill', 'starts that failed', summary.failed, '', '=', 0),
        reported('backfill', 'server CPU per start', ((missingCpu?.cpuSeconds.server ?? Number.NaN) * 1000) / n, 'ms', `machine ${missingCpu?.machineBusyPercent} % busy`),
        reported('backfill', 'a second run: recorded workflows described per second', checksPerSecond, '/s', `${again.checked} checked, ${again.restarted} restarted`),
        ...usageFigures('backfill', 'start', usage, os.cpus().length),
        reported('backfill', 'storage per sleeping workflow', storagePerWorkflow === null ? null : storagePerWorkflow / 1024, 'KiB',
          stack.server.databases ? `growth of ${stack.server.databases.join(' + ')} (pg_database_size)` : 'growth of the SQLite file with its WAL'),
        reported(
          'backfill',
          'until the worker had all of them asleep',
          sleepingAt === null ? null : (sleepingAt - started) / 1000,
          's',
        ),
      ],
      details: {
        tokens: n,
        concurrency: options.backfillConcurrency,
        summary: { ...summary, failures: summary.failures.slice(0, 5) },
        missingPhaseSeconds: round(missingDoneMs / 1000, 2),
        secondRun: { ...again, failures: again.failures.slice(0, 5) },
        untilAllAsleepSeconds: sleepingAt === null ? null : round((sleepingAt - started) / 1000, 1),
        engineDuringStarts: usage,
        storageBytes: { before: storage0, afterAllAsleep: storage1 },
        duringStarts: { ...missingCpu, serverPersistencePerStart: callsPer(calls0, calls1, n) },
        afterStartsUntilAllAsleep: { ...drainUsage, serverPersistencePerWorkflow: callsPer(calls1, calls2, n) },
        workerMemoryMiB: stack.worker.memory(),
      },
    };
  });
}

/** What the engine stores: the dev server's SQLite file, or the cluster's two PostgreSQL databases. */
async function storageBytes(stack: Stack): Promise<number | null> {
  const databases = stack.server.databases;
  if (!databases) return stack.server.storageBytes();
  // A relation's file grows when a page is added (not at checkpoint), so the size is current without one.
  const { rows } = await stack.db.query<{ bytes: string }>('SELECT sum(pg_database_size(d))::bigint AS bytes FROM unnest($1::text[]) AS d', [databases]);
  return Number(rows[0]?.bytes ?? Number.NaN);
}
