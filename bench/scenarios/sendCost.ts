// send-cost: what one email costs, per email, on the dev server (send-cost) or on the production-shaped
// cluster (send-cost-cluster: the real server on PostgreSQL, --cluster-shards, 512 as in compose). --tokens
// tokens of as many users fall due in the same second (spread 0, digests off, one reminder, no expired
// notice), so every workflow wakes once, sends one email and completes. From a second before the due time
// until every workflow has completed it reads: the CPU of the Temporal server, of the PostgreSQL backends
// serving this run's databases (the app's and, on the cluster, Temporal's two) and of the worker; the
// transactions of each database (pg_stat_database); the worker's SQL statements (counted in the worker:
// queryCounter.ts); and, from a sample of histories, the workflow tasks, activity tasks and events per
// workflow. `npm run bench -- --only send-cost-cluster --tokens 1000`.
import { temporal } from '@temporalio/proto';
import { createScratchDatabase } from '../../scripts/devtools/scratchDatabase';
import { tokenExpiryWorkflowId } from '../../src/tokenExpiry/contract';
import { startClusterBenchServer, waitForSearchAttributes } from '../lib/clusterServer';
import { DUE_TOGETHER_ENV, scheduleDueTogether } from '../lib/dueTogether';
import type { BenchOptions } from '../lib/options';
import { commitsOf, postgresCpuMeter } from '../lib/postgresCpu';
import { cpuMeter } from '../lib/proc';
import { QUERY_COUNTER_ARGS, queriesPer, queryCounts } from '../lib/queryCounts';
import { judged, reported, type Figure } from '../lib/report';
import type { ScenarioResult } from '../lib/scenario';
import { withStack, type Stack } from '../lib/stack';
import { round } from '../lib/stats';
import { reconcile, sleep, waitForSends } from '../lib/workload';

const DAY_MS = 86_400_000;
const GIVE_UP_AFTER_MS = 600_000;
/** Histories read for the per-workflow counts (each read is a call to the server, outside the measured window). */
const HISTORY_SAMPLE = 50;
/** Quiet seconds measured just before the due time: what the server and its database cost doing nothing. */
const IDLE_SECONDS = 5;
const DATABASE_PREFIX = 'te_cpu_send_cost';
const SETTLED_COMMITS_PER_SECOND = 50;
const SETTLE_TIMEOUT_MS = 300_000;

export async function sendCostScenario(options: BenchOptions): Promise<ScenarioResult> {
  return measure(options, 'send-cost', 'dev server');
}

export async function sendCostClusterScenario(options: BenchOptions): Promise<ScenarioResult> {
  return measure(options, 'send-cost-cluster', `cluster, ${options.clusterShards} shards`);
}

async function measure(options: BenchOptions, scenario: 'send-cost' | 'send-cost-cluster', engine: string): Promise<ScenarioResult> {
  const onCluster = scenario === 'send-cost-cluster';
  const clusterPrefix = `${DATABASE_PREFIX}_t`;
  let temporalDatabases: string[] = [];
  const benchOptions = { ...options, workerNodeArgs: [...options.workerNodeArgs, ...QUERY_COUNTER_ARGS] };
  return withStack(
    benchOptions,
    {
      scenario,
      env: DUE_TOGETHER_ENV,
      database: () => createScratchDatabase(options.adminUrl, DATABASE_PREFIX),
      server: onCluster
        ? async () => {
            const server = await startClusterBenchServer(options.adminUrl, options.clusterShards, clusterPrefix);
            temporalDatabases = server.databases;
            return server;
          }
        : undefined,
    },
    async (stack) => {
      if (onCluster) {
        await waitForSearchAttributes(stack.client);
        await settle(stack, temporalDatabases[0] as string);
      }
      const n = options.tokens;
      const due = await scheduleDueTogether(stack, n, options.fanInLeadSeconds * 1000, { beforeExpiryMs: DAY_MS, earlyMs: 0, tokensPerUser: 1 });
      const databases = [stack.database.name, ...temporalDatabases];

      // The quiet seconds before the due time: the engine's cost of doing nothing, per second.
      await sleep(Math.max(0, due.dueAt - (IDLE_SECONDS + 2) * 1000 - Date.now()));
      const idle = await window(stack, databases, async () => {
        await sleep(IDLE_SECONDS * 1000);
      });

      await sleep(Math.max(0, due.dueAt - 1_000 - Date.now()));
      stack.log(`waiting for ${n} emails and their workflows to complete`);
      const run = await window(stack, databases, async () => {
        const sent = await waitForSends(stack.postmark, n, due.dueAt + GIVE_UP_AFTER_MS, stack.worker);
        if (!sent) throw new Error(`only ${stack.postmark.sent.length} of ${n} emails were sent`);
        await waitForCompleted(stack, n, due.dueAt + GIVE_UP_AFTER_MS);
      });
      const check = await reconcile(stack.db, stack.postmark);
      const emails = stack.postmark.sent.length;
      const history = await historyCounts(stack, [...due.dueOf.keys()].slice(0, HISTORY_SAMPLE));

      const per = (x: number) => round((x * 1000) / Math.max(1, emails), 2);
      const cpu = { server: per(run.cpu.server ?? NaN), postgres: per(run.postgres.cpuSeconds), worker: per(run.cpu.worker ?? NaN) };
      const total = round(cpu.server + cpu.postgres + cpu.worker, 2);
      // Less what the engine spent doing nothing over as long (a cluster's background work varies from run to run).
      const idleShare = run.seconds / IDLE_SECONDS;
      const net = {
        server: per((run.cpu.server ?? NaN) - (idle.cpu.server ?? NaN) * idleShare),
        postgres: per(run.postgres.cpuSeconds - idle.postgres.cpuSeconds * idleShare),
        worker: per((run.cpu.worker ?? NaN) - (idle.cpu.worker ?? NaN) * idleShare),
      };
      const netTotal = round(net.server + net.postgres + net.worker, 2);
      const commitsPer = Object.fromEntries(Object.entries(run.commits).map(([db, c]) => [db === stack.database.name ? 'app' : db.endsWith('_visibility') ? 'temporal_visibility' : 'temporal', round(c / Math.max(1, emails), 2)]));
      const s = `send cost (${engine})`;
      const figures: Figure[] = [
        reported(s, 'CPU per email: server + PostgreSQL + worker', total, 'ms',
          `server ${cpu.server}, PostgreSQL ${cpu.postgres} (${run.postgres.backends} backends), worker ${cpu.worker}; ${emails} emails in ${round(run.seconds, 1)} s, machine ${run.machineBusyPercent} % busy; idle: server ${round(idle.cpu.server ?? NaN, 2)} s, PostgreSQL ${idle.postgres.cpuSeconds} s in ${IDLE_SECONDS} s`),
        reported(s, 'CPU per email less the idle rate', netTotal, 'ms', `server ${net.server}, PostgreSQL ${net.postgres}, worker ${net.worker}`),
        reported(s, 'CPU per email: server', cpu.server, 'ms'),
        reported(s, 'CPU per email: PostgreSQL', cpu.postgres, 'ms',
          onCluster ? `the app's database ${per(run.postgres.byDatabase[stack.database.name] ?? 0)} ms, Temporal's two the rest` : "the app's database only (the dev server's SQLite is in the server)"),
        reported(s, 'CPU per email: worker', cpu.worker, 'ms'),
        reported(s, 'PostgreSQL transactions per email', round(Object.values(commitsPer).reduce((a, b) => a + b, 0), 2), '',
          Object.entries(commitsPer).map(([db, c]) => `${db} ${c}`).join(', ')),
        reported(s, "worker's SQL statements per email", run.queries.perUnit, '', 'each a round trip to PostgreSQL'),
        reported(s, 'workflow tasks per workflow', history.workflowTasks, '', `activity tasks ${history.activityTasks}, local activities ${history.markers}; from ${history.sampled} histories`),
        reported(s, 'history events per workflow', history.events, '', `${history.bytes} bytes of history`),
        judged(s, 'reminders not sent', n - check.distinctReminders, '', '=', 0, due.asleepBeforeDue ? undefined : 'NOT all workflows were asleep before the due time'),
        judged(s, 'duplicate emails', check.duplicates, '', '=', 0),
      ];
      return {
        figures,
        details: {
          engine,
          tokens: n,
          emails,
          windowSeconds: round(run.seconds, 1),
          cpuMsPerEmail: { ...cpu, total },
          cpuMsPerEmailLessIdle: { ...net, total: netTotal },
          idle: { seconds: IDLE_SECONDS, cpuSeconds: idle.cpu, postgresCpuSeconds: idle.postgres.cpuSeconds, commits: idle.commits },
          machineBusyPercent: run.machineBusyPercent,
          postgresCpuMsPerEmailByDatabase: Object.fromEntries(Object.entries(run.postgres.byDatabase).map(([db, cpu]) => [db, per(cpu)])),
          postgresTransactionsPerEmail: commitsPer,
          workerStatementsPerEmail: run.queries,
          history,
          reconciliation: check,
        },
      };
    },
  );
}

/** CPU, PostgreSQL backends' CPU, transactions and the worker's statements while `work` runs. */
async function window(stack: Stack, databases: string[], work: () => Promise<void>) {
  const cpu = cpuMeter({ worker: stack.worker.pid, server: stack.server.pid });
  const postgres = postgresCpuMeter(databases);
  const commits0 = await commitsOf(stack.db, databases);
  const queries0 = queryCounts(stack.worker.pid);
  await work();
  const usage = cpu.stop();
  const postgresUsage = postgres.stop();
  // The worker writes its counts every second; pg_stat_database is updated within a second or so.
  await sleep(2_000);
  const queries = queryCounts(stack.worker.pid);
  const commits1 = await commitsOf(stack.db, databases);
  const emails = Math.max(1, stack.postmark.sent.length);
  return {
    seconds: usage.seconds,
    cpu: usage.cpuSeconds,
    machineBusyPercent: usage.machineBusyPercent,
    postgres: postgresUsage,
    // Less the two readings' own transactions in the bench's database.
    commits: Object.fromEntries(Object.keys(commits1).map((db) => [db, (commits1[db] ?? 0) - (commits0[db] ?? 0) - (db === stack.database.name ? 1 : 0)])),
    queries: queriesPer(queries0, queries, emails),
  };
}

/**
 * A new cluster works hard for its first minutes (measured: 260-780 PostgreSQL transactions a second against 14
 * once settled, with 512 shards): waits until its main database's rate falls below SETTLED_COMMITS_PER_SECOND.
 */
async function settle(stack: Stack, database: string): Promise<void> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  let before = (await commitsOf(stack.db, [database]))[database] ?? 0;
  for (;;) {
    await sleep(5_000);
    const now = (await commitsOf(stack.db, [database]))[database] ?? 0;
    const rate = (now - before) / 5;
    before = now;
    if (rate < SETTLED_COMMITS_PER_SECOND) return stack.log(`cluster settled: ${rate.toFixed(0)} transactions/s`);
    if (Date.now() > deadline) return stack.log(`cluster still at ${rate.toFixed(0)} transactions/s after ${SETTLE_TIMEOUT_MS / 1000} s: measuring anyway`);
  }
}

/** Waits until `n` token workflows have completed (visibility), polling once a second. */
async function waitForCompleted(stack: Stack, n: number, deadline: number): Promise<void> {
  for (;;) {
    const { count } = await stack.client.workflow.count('WorkflowType="tokenExpiryWorkflow" AND ExecutionStatus="Completed"').catch(() => ({ count: -1 }));
    if (count >= n) return;
    if (Date.now() > deadline) throw new Error(`only ${count} of ${n} workflows completed`);
    await sleep(1_000);
  }
}

const { EventType } = temporal.api.enums.v1;

/** Events, workflow tasks, activity tasks and local activities (markers) per workflow, averaged over `tokenIds`. */
async function historyCounts(stack: Stack, tokenIds: string[]) {
  const totals = { events: 0, workflowTasks: 0, activityTasks: 0, markers: 0, bytes: 0 };
  const byType: Record<string, number> = {};
  for (const tokenId of tokenIds) {
    const history = await stack.client.workflow.getHandle(tokenExpiryWorkflowId(tokenId, stack.database.instance)).fetchHistory();
    const events = history.events ?? [];
    totals.events += events.length;
    totals.bytes += temporal.api.history.v1.History.encode(history).finish().length;
    for (const event of events) {
      const type = EventType[event.eventType ?? 0]?.replace('EVENT_TYPE_', '') ?? String(event.eventType);
      byType[type] = (byType[type] ?? 0) + 1;
      if (event.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) totals.workflowTasks++;
      if (event.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) totals.activityTasks++;
      if (event.eventType === EventType.EVENT_TYPE_MARKER_RECORDED) totals.markers++;
    }
  }
  const per = (x: number) => round(x / Math.max(1, tokenIds.length), 2);
  return {
    sampled: tokenIds.length,
    events: per(totals.events),
    workflowTasks: per(totals.workflowTasks),
    activityTasks: per(totals.activityTasks),
    markers: per(totals.markers),
    bytes: per(totals.bytes),
    eventsByType: Object.fromEntries(Object.entries(byType).map(([type, count]) => [type, per(count)])),
  };
}
