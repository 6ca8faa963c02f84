// idle: many workflows asleep until a far-off reminder. Grows their number step by step and reads,
// at each step once the worker has put them all to sleep, the worker's and the server's memory and
// the size of the server's SQLite file.
import type { BenchOptions } from '../lib/options';
import { memoryOf } from '../lib/proc';
import { assessed, reported } from '../lib/report';
import type { ScenarioResult } from '../lib/scenario';
import { insertTokens, seedUsers } from '../lib/seed';
import { withStack } from '../lib/stack';
import { round } from '../lib/stats';
import { sleep, startMissingWorkflows, waitUntilSleeping } from '../lib/workload';

const DAY_MS = 86_400_000;
/** After the last start, the worker's memory is read only once it has been quiet for this long. */
const SETTLE_MS = 5_000;
/**
 * "Flat": from the first step to the last, the worker's RSS grows by less than this share, while
 * the number of sleeping workflows grows by 5 to 10 times.
 */
const FLAT_GROWTH = 0.1;

interface Step {
  workflows: number;
  workerRssMiB: number;
  workerPeakRssMiB: number;
  serverRssMiB: number | null;
  storageBytes: number | null;
  startsPerSecond: number;
  untilAsleepSeconds: number | null;
}

export async function idleScenario(options: BenchOptions): Promise<ScenarioResult> {
  return withStack(options, { scenario: 'idle' }, async (stack) => {
    const users = await seedUsers(stack.db, Math.max(1, Math.ceil(options.idle / 10)));
    const read = (workflows: number, startsPerSecond: number, untilAsleepSeconds: number | null): Step => {
      const worker = stack.worker.memory();
      const server = stack.server.pid ? memoryOf(stack.server.pid) : null;
      return {
        workflows,
        workerRssMiB: round(worker?.rssMiB ?? Number.NaN),
        workerPeakRssMiB: round(worker?.peakRssMiB ?? Number.NaN),
        serverRssMiB: server ? round(server.rssMiB) : null,
        storageBytes: stack.server.storageBytes(),
        startsPerSecond: round(startsPerSecond),
        untilAsleepSeconds,
      };
    };
    const steps: Step[] = [read(0, 0, 0)];
    let done = 0;
    for (const target of options.idleSteps) {
      // Expiries 60 to 120 days out: nothing falls due during the run.
      await insertTokens(stack.db, { count: target - done, users, firstExpiry: new Date(Date.now() + 60 * DAY_MS), spreadMs: 60 * DAY_MS });
      const startedAt = Date.now();
      const summary = await startMissingWorkflows(stack);
      const startSeconds = (Date.now() - startedAt) / 1000;
      const asleepAt = await waitUntilSleeping(stack.client, target, Date.now() + 90 * 60_000);
      await sleep(options.quick ? SETTLE_MS / 2 : SETTLE_MS);
      done = target;
      const step = read(target, summary.started / startSeconds, asleepAt === null ? null : round((asleepAt - startedAt) / 1000, 1));
      steps.push(step);
      stack.log(
        `${target} asleep: worker RSS ${step.workerRssMiB} MiB, server RSS ${step.serverRssMiB} MiB, ` +
          `server file ${step.storageBytes === null ? 'n/a' : round(step.storageBytes / 2 ** 20)} MiB`,
      );
    }

    const first = steps[1] as Step;
    const last = steps[steps.length - 1] as Step;
    const growth = (last.workerRssMiB - first.workerRssMiB) / first.workerRssMiB;
    const empty = steps[0] as Step;
    const perWorkflow = (key: 'storageBytes' | 'serverRssMiB', scale: number) => {
      const a = empty[key];
      const b = last[key];
      return a === null || b === null ? null : ((b - a) * scale) / last.workflows;
    };
    const figures = [
      ...steps.slice(1).map((s) =>
        reported('idle', `worker RSS with ${s.workflows.toLocaleString('en-US')} asleep`, s.workerRssMiB, 'MiB'),
      ),
      assessed(
        'idle',
        `worker RSS growth, ${first.workflows.toLocaleString('en-US')} -> ${last.workflows.toLocaleString('en-US')} asleep`,
        growth * 100,
        '%',
        `flat (< ${FLAT_GROWTH * 100} %)`,
        Number.isNaN(growth) ? null : growth < FLAT_GROWTH,
      ),
      reported('idle', 'server storage per sleeping workflow', perWorkflow('storageBytes', 1 / 1024), 'KiB', `SQLite file, ${options.serverStorage}`),
      reported('idle', 'server RSS per sleeping workflow', perWorkflow('serverRssMiB', 1024), 'KiB'),
      reported('idle', 'workflow starts per second at this scale', last.startsPerSecond, '/s'),
    ];
    return { figures, details: { steps, serverStorage: options.serverStorage } };
  });
}
