// fan-in: many reminders fall due in the same second. Measures each send's lateness (the fake
// Postmark's receive time minus the reminder's due time), the time until all are sent, the worker's
// memory, and reconciles the fake's log with expiry_notifications (no duplicates, nothing missing).
import type { BenchOptions } from '../lib/options';
import os from 'node:os';
import { meterEngine, usageFigures } from '../lib/engineMeter';
import { cpuMeter, memoryOf } from '../lib/proc';
import { callsPer, persistenceCalls } from '../lib/serverMetrics';
import { judged, reported } from '../lib/report';
import type { ScenarioResult } from '../lib/scenario';
import { DUE_TOGETHER_ENV, latenesses, scheduleDueTogether } from '../lib/dueTogether';
import { withStack } from '../lib/stack';
import { round, summarize } from '../lib/stats';
import { memorySampler, reconcile, sleep, waitForSends } from '../lib/workload';

/** How long after the due second the bench waits for the last email before it gives up. */
const GIVE_UP_AFTER_MS = 600_000;

export async function fanInScenario(options: BenchOptions): Promise<ScenarioResult> {
  return withStack(options, { scenario: 'fan-in', env: DUE_TOGETHER_ENV }, async (stack) => {
    const n = options.tokens;
    const due = await scheduleDueTogether(stack, n, options.fanInLeadSeconds * 1000);

    await sleep(Math.max(0, due.dueAt - 1_000 - Date.now()));
    const workerBefore = stack.worker.memory();
    const sampler = memorySampler(() => stack.worker.memory());
    const serverSampler = memorySampler(() => (stack.server.pid ? memoryOf(stack.server.pid) : null));
    const cpu = cpuMeter({ worker: stack.worker.pid, server: stack.server.pid, bench: process.pid });
    const calls0 = await persistenceCalls(stack.server.metricsUrl);
    const meter = await meterEngine(stack, options.adminUrl);
    stack.log(`waiting for ${n} emails`);
    const allSent = await waitForSends(stack.postmark, n, due.dueAt + GIVE_UP_AFTER_MS, stack.worker);
    const usage = cpu.stop();
    const engineUsage = await meter.stop(n);
    const calls1 = await persistenceCalls(stack.server.metricsUrl);
    // A duplicate would arrive after the last first copy: give one a moment to show up.
    await sleep(3_000);
    const memory = sampler.stop();
    const serverMemory = serverSampler.stop();
    const workerAfter = stack.worker.memory();
    const check = await reconcile(stack.db, stack.postmark);

    const messages = stack.postmark.sent;
    const lateness = summarize(latenesses(messages, due.dueOf).map((ms) => ms / 1000));
    const lastAt = Math.max(...messages.map((m) => m.receivedAt.getTime()));
    const allSentAfterS = (lastAt - due.dueAt) / 1000;
    const peakRss = Math.max(memory.peakMiB, workerAfter?.peakRssMiB ?? 0);
    const setupNote = due.asleepBeforeDue ? undefined : 'NOT all workflows were asleep before the due time';
    const sendWindowS = (lastAt - Math.min(...messages.map((m) => m.receivedAt.getTime()))) / 1000;
    return {
      figures: [
        judged('fan-in', 'all sent within', allSent ? allSentAfterS : null, 's', '<', 60, `${messages.length} of ${n}`),
        judged('fan-in', 'lateness p99', lateness.p99, 's', '<', 45, setupNote),
        reported('fan-in', 'lateness p50', lateness.p50, 's'),
        reported('fan-in', 'lateness max', lateness.max, 's'),
        reported('fan-in', 'sends per second', n / Math.max(sendWindowS, 0.001), '/s', 'EXPIRY_SPREAD=0: all due in one second'),
        reported('fan-in', 'CPU per send: server / worker', (usage.cpuSeconds.server ?? Number.NaN) * 1000 / n, 'ms', `worker ${round(((usage.cpuSeconds.worker ?? Number.NaN) * 1000) / n)} ms, machine ${usage.machineBusyPercent} % busy`),
        ...usageFigures('fan-in', 'send', engineUsage, os.cpus().length),
        judged('fan-in', 'worker peak RSS', peakRss, 'MiB', '<', 500, 'VmHWM, start-up included'),
        judged('fan-in', 'duplicate emails', check.duplicates, '', '=', 0),
        judged('fan-in', 'reminders not sent', n - check.distinctReminders, '', '=', 0),
        judged('fan-in', 'sends not recorded as sent (or the reverse)', check.unrecorded + check.unsent, '', '=', 0),
      ],
      details: {
        tokens: n,
        dueAt: new Date(due.dueAt).toISOString(),
        setup: { startSeconds: round(due.startSeconds, 1), probeMsPerWorkflow: round(due.setupMsPerWorkflow, 1), asleepBeforeDue: due.asleepBeforeDue, secondsToSpare: round(due.secondsToSpare, 1) },
        latenessSeconds: Object.fromEntries(Object.entries(lateness).map(([k, v]) => [k, round(v, 3)])),
        allSentAfterSeconds: round(allSentAfterS, 2),
        sendWindowSeconds: round(sendWindowS, 2),
        worker: { beforeMiB: workerBefore, afterMiB: workerAfter, sampledPeakMiB: round(memory.peakMiB), samples: thin(memory.samples) },
        server: { sampledPeakMiB: round(serverMemory.peakMiB), storageBytes: stack.server.storageBytes() },
        cpuDuringSends: usage,
        engineDuringSends: engineUsage,
        serverPersistencePerSend: callsPer(calls0, calls1, n),
        reconciliation: check,
      },
    };
  });
}

/** At most ~60 samples for the JSON. */
function thin<T>(samples: T[]): T[] {
  const step = Math.max(1, Math.ceil(samples.length / 60));
  return samples.filter((_, i) => i % step === 0);
}
