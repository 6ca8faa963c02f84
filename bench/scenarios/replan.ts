// replan: how fast `token-expiry replan` (runReplan, what the command runs) brings waiting workflows onto
// a new plan. The tokens are backfilled (each workflow in its start delay), then three runs: a 30d warning
// added (each update ends a start delay: the run's first workflow task), the same plan again (every update
// refused as unchanged), and the 30d warning taken out again (accepted by running workflows, each recording
// the dropped reminder).
import { instanceOf, loadConfig, taskQueueOf } from '../../src/config';
import { runReplan, waitingWorkflowsQuery, type ReplanSummary } from '../../src/tokenExpiry/replan';
import type { BenchOptions } from '../lib/options';
import { cpuMeter } from '../lib/proc';
import { judged, reported } from '../lib/report';
import type { ScenarioResult } from '../lib/scenario';
import { insertTokens, seedUsers } from '../lib/seed';
import { withStack, type Stack } from '../lib/stack';
import { startMissingWorkflows, sleep } from '../lib/workload';

const DAY_MS = 86_400_000;

export async function replanScenario(options: BenchOptions): Promise<ScenarioResult> {
  return withStack(options, { scenario: 'replan' }, async (stack) => {
    const n = options.replan;
    const users = await seedUsers(stack.db, Math.max(1, Math.ceil(n / 10)));
    // Expiries 40 to 100 days out: a 30d warning added later still lies ahead.
    await insertTokens(stack.db, { count: n, users, firstExpiry: new Date(Date.now() + 40 * DAY_MS), spreadMs: 60 * DAY_MS });
    const backfill = await startMissingWorkflows(stack, { concurrency: 50 });
    stack.log(`${backfill.started} workflows started (in their start delay); waiting for visibility to list them`);
    const query = waitingWorkflowsQuery(taskQueueOf(stack.config));
    const deadline = Date.now() + 300_000;
    while ((await stack.client.workflow.count(query)).count < backfill.started && Date.now() < deadline) await sleep(1000);

    const added = await measuredRun(stack, options, '30d,7d,1d');
    const again = await measuredRun(stack, options, '30d,7d,1d');
    const removed = await measuredRun(stack, options, '7d,1d');
    const rate = (run: MeasuredRun) => run.summary.matched / run.summary.seconds;
    const cpuMs = (run: MeasuredRun, of: 'server' | 'worker') => ((run.cpu.cpuSeconds[of] ?? Number.NaN) * 1000) / Math.max(run.summary.matched, 1);
    const serverMs = (run: MeasuredRun) => cpuMs(run, 'server');
    return {
      figures: [
        reported('replan', 'a warning added: workflows per second', rate(added), '/s', `${added.summary.replanned} of ${n} replanned, ${added.summary.delayed} ended a start delay, ${options.replanConcurrency} in flight`),
        judged('replan', 'failed', added.summary.failed + again.summary.failed + removed.summary.failed, '', '=', 0),
        reported('replan', 'the same plan again: workflows per second', rate(again), '/s', `${again.summary.unchanged} unchanged`),
        reported('replan', 'the warning removed: workflows per second', rate(removed), '/s', `${removed.summary.replanned} replanned, each recording the drop`),
        reported('replan', 'server CPU per workflow, a warning added', serverMs(added), 'ms', `the same plan again ${serverMs(again).toFixed(1)} ms, the warning removed ${serverMs(removed).toFixed(1)} ms; machine ${added.cpu.machineBusyPercent} % busy`),
        reported('replan', 'worker CPU per workflow, a warning added', cpuMs(added, 'worker'), 'ms', `the same plan again ${cpuMs(again, 'worker').toFixed(1)} ms, the warning removed ${cpuMs(removed, 'worker').toFixed(1)} ms`),
      ],
      details: {
        workflows: n,
        concurrency: options.replanConcurrency,
        runs: { added, again, removed },
        workerMemoryMiB: stack.worker.memory(),
      },
    };
  });
}

interface MeasuredRun {
  summary: ReplanSummary;
  cpu: ReturnType<ReturnType<typeof cpuMeter>['stop']>;
}

async function measuredRun(stack: Stack, options: BenchOptions, reminders: string): Promise<MeasuredRun> {
  const settings = loadConfig({ TEMPORAL_TASK_QUEUE: stack.config.TEMPORAL_TASK_QUEUE, TOKEN_EXPIRY_INSTANCE: instanceOf(stack.config), EXPIRY_REMINDERS: reminders, EXPIRED_NOTICE: 'true' });
  const cpu = cpuMeter({ worker: stack.worker.pid, server: stack.server.pid, bench: process.pid });
  const summary = await runReplan(stack.client, settings, { concurrency: options.replanConcurrency });
  const usage = cpu.stop();
  stack.log(`replan to ${reminders}: ${JSON.stringify({ ...summary, failures: summary.failures.slice(0, 3) })}`);
  return { summary: { ...summary, failures: summary.failures.slice(0, 5) }, cpu: usage };
}
