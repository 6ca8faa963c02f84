// preferences-replan: how fast a change of one user's preferences re-plans that user's waiting workflows (the
// preference service, as the API and the CLI call it). One user with N tokens, backfilled (each in its start
// delay); then three changes: 3d,12h in Berlin office hours (every run takes a new plan: each update ends a start
// delay), the same again (each refused as unchanged), and a reset to the operator's plan (each replanned again).
import { createPreferenceService } from '../../src/preferences/service';
import type { ReplanSummary } from '../../src/tokenExpiry/replan';
import type { BenchOptions } from '../lib/options';
import { cpuMeter } from '../lib/proc';
import { judged, reported } from '../lib/report';
import type { ScenarioResult } from '../lib/scenario';
import { insertTokens, seedUsers } from '../lib/seed';
import { withStack } from '../lib/stack';
import { startMissingWorkflows } from '../lib/workload';
import { registryAdapter } from '../../src/registry';

const DAY_MS = 86_400_000;

export async function preferencesReplanScenario(options: BenchOptions): Promise<ScenarioResult> {
  return withStack(options, { scenario: 'preferences-replan' }, async (stack) => {
    const n = options.preferencesReplan;
    const users = await seedUsers(stack.db, 1);
    await insertTokens(stack.db, { count: n, users, firstExpiry: new Date(Date.now() + 40 * DAY_MS), spreadMs: 60 * DAY_MS });
    const backfill = await startMissingWorkflows(stack, { concurrency: 50 });
    stack.log(`${backfill.started} workflows of one user started (in their start delay)`);
    const preferences = createPreferenceService({ registry: registryAdapter(stack.config), db: stack.db, temporal: async () => stack.client, config: stack.config });
    const user = { id: String(users.firstId), login: 'bench' };

    const measured = async (what: string, change: () => ReturnType<typeof preferences.update>) => {
      const cpu = cpuMeter({ worker: stack.worker.pid, server: stack.server.pid, bench: process.pid });
      const started = performance.now();
      const { replan } = await change();
      const seconds = (performance.now() - started) / 1000;
      const usage = cpu.stop();
      const summary = replan as ReplanSummary;
      stack.log(`${what}: ${seconds.toFixed(2)} s, ${JSON.stringify({ ...summary, failures: summary.failures.slice(0, 3) })}`);
      return { what, seconds, summary: { ...summary, failures: summary.failures.slice(0, 5) }, cpu: usage };
    };
    const chosen = await measured('3d,12h in Berlin office hours', () =>
      preferences.update(user, { reminders: ['3d', '12h'], timeZone: 'Europe/Berlin', wakingHours: '09:00-18:00', workingDays: ['mon', 'tue', 'wed', 'thu', 'fri'] }),
    );
    const again = await measured('the same change again', () => preferences.update(user, { timeZone: 'Europe/Berlin' }));
    const reset = await measured('reset to the operator\'s plan', () => preferences.reset(user));
    const runs = [chosen, again, reset];
    return {
      figures: [
        reported('preferences-replan', 'a change: seconds until every run has it', chosen.seconds, 's', `${chosen.summary.replanned} of ${n} replanned, ${chosen.summary.delayed} ended a start delay; machine ${chosen.cpu.machineBusyPercent} % busy`),
        reported('preferences-replan', 'the same change again: seconds', again.seconds, 's', `${again.summary.unchanged} unchanged`),
        reported('preferences-replan', 'reset: seconds', reset.seconds, 's', `${reset.summary.replanned} replanned`),
        judged('preferences-replan', 'failed', runs.reduce((sum, run) => sum + run.summary.failed, 0), '', '=', 0),
      ],
      details: { workflows: n, runs },
    };
  });
}
