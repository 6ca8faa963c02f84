// life: a token's whole life, per token, for each start path side by side in one run (--start-paths):
// "delayed" (EXPIRY_START_DELAY, the default) and "immediate" (the path before it). Tokens are created
// through the token service (what the API calls), sleep, get their two warnings and the expired notice,
// and close. For each phase: server and worker CPU, server persistence calls, PostgreSQL transactions;
// for the sleeping workflow: server storage and history size; and the sweep's daily pass over them.
import { temporal } from '@temporalio/proto';
import { loadConfig } from '../../src/config';
import { insertUser } from '../../src/registry/builtin';
import { warningOffsetMs } from '../../src/tokenExpiry/spread';
import { createTokenService } from '../../src/tokens/service';
import type { BenchOptions, StartPath } from '../lib/options';
import { cpuMeter } from '../lib/proc';
import { callsPer, persistenceCalls } from '../lib/serverMetrics';
import { judged, reported, type Figure } from '../lib/report';
import type { ScenarioResult } from '../lib/scenario';
import { withStack, type Stack } from '../lib/stack';
import { round } from '../lib/stats';
import { postgresTransactions, sleep, sleepingCount, startMissingWorkflows, waitForSends } from '../lib/workload';
import { registryAdapter } from '../../src/registry';

const SECOND = 1_000;
const DAY_MS = 86_400_000;
/** Tokens' expiries spread over N / 20 seconds, so that each reminder falls due at about 20 a second. */
const DUE_PER_SECOND = 20;
const CREATE_CONCURRENCY = 8;

interface PhaseCost {
  seconds: number;
  /** CPU ms per token (per email sent in the phase, for the reminders), server and worker. */
  serverCpuMs: number;
  workerCpuMs: number;
  /** Server persistence (SQLite) calls and PostgreSQL transactions, per token. */
  serverPersistenceCalls: number;
  postgresTransactions: number;
}

export interface LifeResult {
  path: StartPath;
  tokens: number;
  phases: Record<string, PhaseCost>;
  /** Create, reminders and close: a token's whole life (the sleep's own cost is the server's idle work). */
  wholeLife: PhaseCost;
  /** Per email, over the three reminder phases. */
  perEmail: { serverCpuMs: number; workerCpuMs: number };
  sleeping: { storageBytesPerWorkflow: number | null; historyEvents: number; historyBytes: number };
  sweepPass: PhaseCost & { describedPerSecond: number };
  sent: number;
}

export async function lifeScenario(options: BenchOptions): Promise<ScenarioResult> {
  const results: LifeResult[] = [];
  for (const path of options.startPaths) results.push(await oneLife(options, path));
  return { figures: lifeFigures(results), details: { results } };
}

async function oneLife(options: BenchOptions, path: StartPath): Promise<LifeResult> {
  const n = options.lifeTokens;
  const windowS = Math.ceil(n / DUE_PER_SECOND);
  const gapS = windowS + 20;
  const reminders = [2 * gapS, gapS];
  const env = {
    EXPIRY_REMINDERS: reminders.map((s) => `${s}s`).join(','),
    EXPIRED_NOTICE: 'true',
    EXPIRY_START_DELAY: path === 'delayed' ? 'true' : 'false',
  };
  return withStack(options, { scenario: `life-${path}`, env }, async (stack) => {
    const user = await insertUser(stack.db, { login: 'bench-life', email: 'bench-life@example.com', verified: true });
    const service = createTokenService({ registry: registryAdapter(stack.config), db: stack.db, temporal: async () => stack.client, config: stack.config });
    // Room to create them all (about 15 ms each here, CREATE_CONCURRENCY at a time) and to sleep a while.
    const createRoomS = 20 + Math.ceil((n * 15) / 1000 / 2);
    const firstExpiry = Date.now() + (createRoomS + 30 + reminders[0]!) * SECOND;
    const phases: Record<string, PhaseCost> = {};
    const meter = () => phaseMeter(stack);

    stack.log(`${path}: creating ${n} tokens through the token service; reminders ${env.EXPIRY_REMINDERS} and expired`);
    const storage0 = stack.server.storageBytes();
    let m = await meter();
    let next = 0;
    let failures = 0;
    await Promise.all(
      Array.from({ length: CREATE_CONCURRENCY }, async () => {
        for (let i = next++; i < n; i = next++) {
          const created = await service.create(user, {
            name: `life ${i}`,
            expiresAt: new Date(firstExpiry + Math.floor((i * windowS * SECOND) / n)),
            crateScopes: null,
            endpointScopes: null,
          });
          if (created.workflowError) failures++;
        }
      }),
    );
    // The immediate path's first workflow task is part of what a sleeping token cost.
    await waitUntil(async () => (await sleepingCount(stack.client)) >= n, firstExpiry - reminders[0]! * SECOND - 5 * SECOND);
    phases.create = await m.stop(n);
    const storage1 = stack.server.storageBytes();
    if (failures > 0) stack.log(`${failures} workflow starts failed`);
    const history = await historySize(stack, n);

    stack.log(`${path}: the sweep's pass over ${n} sleeping tokens`);
    m = await meter();
    const began = Date.now();
    const pass = await startMissingWorkflows(stack, { recheck: true });
    const sweepSeconds = (Date.now() - began) / 1000;
    const sweepPass = { ...(await m.stop(n)), describedPerSecond: pass.checked / Math.max(sweepSeconds, 0.001) };

    const firstDue = firstExpiry - reminders[0]! * SECOND - 2 * SECOND;
    m = await meter();
    await sleep(Math.max(0, firstDue - Date.now()));
    phases.sleep = await m.stop(n);

    let sent = 0;
    for (const [key, beforeS] of [...reminders.map((s) => [`${s}s`, s] as const), ['expired', 0] as const]) {
      const dueAt = firstExpiry - beforeS * SECOND;
      await sleep(Math.max(0, dueAt - 2 * SECOND - Date.now()));
      m = await meter();
      const before = stack.postmark.sent.length;
      sent += n;
      // Until the next reminder is due (the last: a while longer); a send left over is counted in the next phase.
      const deadline = key === 'expired' ? dueAt + (windowS + 2 * gapS) * SECOND : dueAt + gapS * SECOND - 3 * SECOND;
      const done = await waitForSends(stack.postmark, sent, deadline, stack.worker);
      if (key === 'expired') await waitUntil(async () => (await closedCount(stack)) >= n, deadline + 30 * SECOND);
      if (!done) stack.log(`${path}: reminder ${key}: only ${stack.postmark.sent.length} of ${sent} emails by the next one`);
      // Per email sent in the phase: on a loaded machine not every one goes out before the next is due.
      phases[key === 'expired' ? 'expired+close' : `reminder ${key}`] = await m.stop(Math.max(1, stack.postmark.sent.length - before));
    }

    const lifePhases = Object.entries(phases).filter(([name]) => name !== 'sleep').map(([, cost]) => cost);
    const wholeLife = sumCosts(lifePhases);
    const reminderPhases = Object.entries(phases).filter(([name]) => name.startsWith('reminder') || name.startsWith('expired'));
    const perEmail = {
      serverCpuMs: reminderPhases.reduce((sum, [, c]) => sum + c.serverCpuMs, 0) / 3,
      workerCpuMs: reminderPhases.reduce((sum, [, c]) => sum + c.workerCpuMs, 0) / 3,
    };
    const storageBytesPerWorkflow = storage0 === null || storage1 === null ? null : (storage1 - storage0) / n;
    return {
      path,
      tokens: n,
      phases,
      wholeLife,
      perEmail,
      sleeping: { storageBytesPerWorkflow, ...history },
      sweepPass,
      sent: stack.postmark.sent.length,
    };
  });
}

/** CPU, server persistence calls and PostgreSQL transactions between start and stop(), per unit. */
async function phaseMeter(stack: Stack) {
  const cpu = cpuMeter({ worker: stack.worker.pid, server: stack.server.pid });
  const calls0 = await persistenceCalls(stack.server.metricsUrl);
  const tx0 = await postgresTransactions(stack.db);
  const began = Date.now();
  return {
    async stop(units: number): Promise<PhaseCost> {
      const usage = cpu.stop();
      // PostgreSQL's statistics reach pg_stat_database within a second or so of each transaction.
      await sleep(1_500);
      const calls = callsPer(calls0, await persistenceCalls(stack.server.metricsUrl), units);
      // Less this meter's own two reads.
      const tx = (await postgresTransactions(stack.db)) - tx0 - 2;
      return {
        seconds: round((Date.now() - began) / 1000, 1),
        serverCpuMs: round(((usage.cpuSeconds.server ?? Number.NaN) * 1000) / units, 2),
        workerCpuMs: round(((usage.cpuSeconds.worker ?? Number.NaN) * 1000) / units, 2),
        serverPersistenceCalls: calls.callsPerUnit,
        postgresTransactions: round(tx / units, 2),
      };
    },
  };
}

/** Events and encoded bytes of a sleeping workflow's history, from the latest 20 tokens. */
async function historySize(stack: Stack, n: number) {
  const { rows } = await stack.db.query<{ id: string }>('SELECT id::text FROM api_tokens ORDER BY id DESC LIMIT $1', [Math.min(20, n)]);
  let events = 0;
  let bytes = 0;
  for (const { id } of rows) {
    const history = await stack.client.workflow.getHandle(`token-expiry-${id}`).fetchHistory();
    events += history.events?.length ?? 0;
    bytes += temporal.api.history.v1.History.encode(history).finish().length;
  }
  return { historyEvents: round(events / rows.length, 1), historyBytes: Math.round(bytes / rows.length) };
}

async function closedCount(stack: Stack): Promise<number> {
  const { count } = await stack.client.workflow.count('WorkflowType="tokenExpiryWorkflow" AND ExecutionStatus="Completed"');
  return count;
}

async function waitUntil(done: () => Promise<boolean>, deadline: number): Promise<boolean> {
  for (;;) {
    if (await done().catch(() => false)) return true;
    if (Date.now() > deadline) return false;
    await sleep(500);
  }
}

function sumCosts(costs: PhaseCost[]): PhaseCost {
  const sum = (pick: (c: PhaseCost) => number) => round(costs.reduce((total, c) => total + pick(c), 0), 2);
  return {
    seconds: sum((c) => c.seconds),
    serverCpuMs: sum((c) => c.serverCpuMs),
    workerCpuMs: sum((c) => c.workerCpuMs),
    serverPersistenceCalls: sum((c) => c.serverPersistenceCalls),
    postgresTransactions: sum((c) => c.postgresTransactions),
  };
}

function lifeFigures(results: LifeResult[]): Figure[] {
  const figures: Figure[] = [];
  for (const r of results) {
    const s = `life (${r.path})`;
    const per = (c: PhaseCost) => `worker ${c.workerCpuMs} ms, ${c.serverPersistenceCalls} server DB calls, ${c.postgresTransactions} PG tx`;
    const create = r.phases.create!;
    figures.push(
      r.path === 'delayed'
        ? judged(s, 'server CPU per sleeping token (created through the service, first task included)', create.serverCpuMs, 'ms', '<=', 15, per(create))
        : reported(s, 'server CPU per sleeping token (created through the service, first task included)', create.serverCpuMs, 'ms', per(create)),
    );
    for (const [name, cost] of Object.entries(r.phases)) {
      if (name === 'create') continue;
      figures.push(reported(s, `${name}: server CPU per token`, cost.serverCpuMs, 'ms', `${per(cost)}, ${cost.seconds} s`));
    }
    figures.push(reported(s, 'whole life: server CPU per token', r.wholeLife.serverCpuMs, 'ms', per(r.wholeLife)));
    figures.push(reported(s, 'CPU per email sent: server', r.perEmail.serverCpuMs, 'ms', `worker ${round(r.perEmail.workerCpuMs, 2)} ms`));
    const kib = r.sleeping.storageBytesPerWorkflow === null ? null : r.sleeping.storageBytesPerWorkflow / 1024;
    figures.push(
      judged(s, 'server storage per sleeping workflow (SQLite file growth)', kib, 'KiB', '<=', 10, `history ${r.sleeping.historyEvents} events, ${r.sleeping.historyBytes} bytes`),
    );
    figures.push(
      reported(s, "the sweep's pass: server CPU per token", r.sweepPass.serverCpuMs, 'ms', `${per(r.sweepPass)}, ${round(r.sweepPass.describedPerSecond)} described/s`),
    );
    figures.push(judged(s, 'emails sent of 3 per token', r.sent, '', '=', 3 * r.tokens));
  }
  // Computed, not sent: how EXPIRY_SPREAD's default spreads 10,000 1d warnings that share one expiry second.
  const spreadMs = loadConfig({}).EXPIRY_SPREAD;
  const perSecond = new Map<number, number>();
  for (let id = 1; id <= 10_000; id++) {
    const second = Math.floor(warningOffsetMs(String(id), DAY_MS, spreadMs) / SECOND);
    perSecond.set(second, (perSecond.get(second) ?? 0) + 1);
  }
  figures.push(
    reported('life', '10,000 1d warnings with one expiry second, default spread: most due in any 1 s', Math.max(...perSecond.values()), '', `over ${perSecond.size} s, computed from the spread (the fan-in drains ~50 /s)`),
  );
  const delayed = results.find((r) => r.path === 'delayed');
  const immediate = results.find((r) => r.path === 'immediate');
  if (delayed && immediate) {
    figures.push(
      judged('life', 'whole life: server CPU per token, delayed / immediate', (100 * delayed.wholeLife.serverCpuMs) / immediate.wholeLife.serverCpuMs, '%', '<=', 60, `${delayed.wholeLife.serverCpuMs} vs ${immediate.wholeLife.serverCpuMs} ms`),
      judged('life', 'worker CPU per email, delayed / immediate', (100 * delayed.perEmail.workerCpuMs) / immediate.perEmail.workerCpuMs, '%', '<=', 70, `${round(delayed.perEmail.workerCpuMs, 2)} vs ${round(immediate.perEmail.workerCpuMs, 2)} ms`),
    );
  }
  return figures;
}
