// What one phase of a scenario (the backfill's starts, a fan-in's sends) cost each part of the engine, and
// what bounded it: CPU seconds of the server, the worker and the PostgreSQL backends (from /proc/<pid>/stat),
// PostgreSQL commits and row writes (pg_stat_database), PostgreSQL's wait events (pg_stat_activity, sampled),
// the server's own metrics (persistence latency, shard lock and semaphore waits, task queue backlog) and the
// machine's CPU use. Per unit of work (a start, a send), so that runs on a busy machine stay comparable.
import { Client as PgClient } from 'pg';
import { cpuMeter, cpuSecondsOf } from './proc';
import { serverTimers, timersPer, backlog, type TimerTotals } from './serverMetrics';
import { reported, type Figure } from './report';
import type { Stack } from './stack';

const SAMPLE_EVERY_MS = 250;

interface DatabaseCounters {
  commits: number;
  /** Rows inserted, updated and deleted. */
  writes: number;
}

export interface EngineUsage {
  seconds: number;
  units: number;
  machineBusyPercent: number;
  /** Milliseconds of CPU per unit. */
  cpuMsPerUnit: { server: number; worker: number; postgresTemporal: number | null; postgresApp: number };
  /** Backends measured, and how many of them ended during the phase (their last CPU is lost). */
  postgresBackends: { temporal: number; app: number; ended: number };
  commitsPerUnit: { temporal: number | null; app: number };
  writesPerUnit: { temporal: number | null; app: number };
  /** Share of sampled active backends (Temporal's and ours) in each wait; "CPU" is active with no wait. */
  waitEvents: { event: string; share: number }[];
  waitSamples: number;
  /** The server's timers per unit: calls and milliseconds summed (persistence, lock, semaphore...). */
  serverTimers: Record<string, { callsPerUnit: number; avgMs: number }>;
  /** The highest task queue backlog the server reported while sampled (approximate_backlog_count). */
  maxBacklog: number | null;
}

export async function meterEngine(stack: Stack, adminUrl: string) {
  const temporalDbs = stack.server.databases ?? [];
  const appDb = stack.database.name;
  const pg = new PgClient({ connectionString: adminUrl, connectionTimeoutMillis: 10_000, application_name: 'bench-meter' });
  await pg.connect();
  const backends = async () => {
    const { rows } = await pg.query<{ pid: number; datname: string }>(
      `SELECT pid, datname FROM pg_stat_activity WHERE datname = ANY($1) AND backend_type = 'client backend'`,
      [[...temporalDbs, appDb]],
    );
    return new Map(rows.map((r) => [r.pid, r.datname]));
  };
  const counters = async (): Promise<Record<string, DatabaseCounters>> => {
    const { rows } = await pg.query<{ datname: string; commits: string; writes: string }>(
      `SELECT datname, xact_commit AS commits, tup_inserted + tup_updated + tup_deleted AS writes FROM pg_stat_database WHERE datname = ANY($1)`,
      [[...temporalDbs, appDb]],
    );
    return Object.fromEntries(rows.map((r) => [r.datname, { commits: Number(r.commits), writes: Number(r.writes) }]));
  };
  // Backends come and go (pools open connections under load): every one seen while sampling is counted from
  // its first sighting, or from 0 if first seen after the start (a backend born in the phase did all its work in it).
  const seen = new Map<number, { datname: string; cpuAtStart: number }>();
  for (const [pid, datname] of await backends()) seen.set(pid, { datname, cpuAtStart: cpuSecondsOf(pid) });
  const lastCpu = new Map<number, number>();
  const counters0 = await counters();
  const timers0 = await serverTimers(stack.server.metricsUrl).catch(() => ({}) as TimerTotals);
  const waits = new Map<string, number>();
  let waitSamples = 0;
  let maxBacklog: number | null = null;
  let waitRounds = 0;
  const cpu = cpuMeter({ server: stack.server.pid, worker: stack.worker.pid });

  let sampling = Promise.resolve();
  let stopped = false;
  const sample = async () => {
    const { rows } = await pg.query<{ pid: number; datname: string; wait: string | null }>(
      `SELECT pid, datname, CASE WHEN state = 'active' THEN coalesce(wait_event_type || ':' || wait_event, 'CPU') END AS wait
         FROM pg_stat_activity WHERE datname = ANY($1) AND backend_type = 'client backend' AND pid <> pg_backend_pid()`,
      [[...temporalDbs, appDb]],
    );
    for (const row of rows) {
      if (!seen.has(row.pid)) seen.set(row.pid, { datname: row.datname, cpuAtStart: 0 });
      lastCpu.set(row.pid, cpuSecondsOf(row.pid));
      if (row.wait) {
        waits.set(row.wait, (waits.get(row.wait) ?? 0) + 1);
        waitSamples++;
      }
    }
    // A 512-shard server's metrics page is large: read the backlog every 2 s, not at every sample.
    if (waitRounds++ % 8 === 0) {
      const queued = await backlog(stack.server.metricsUrl).catch(() => null);
      if (queued !== null) maxBacklog = Math.max(maxBacklog ?? 0, queued);
    }
  };
  const timer = setInterval(() => {
    if (stopped) return;
    sampling = sampling.then(sample).catch(() => undefined);
  }, SAMPLE_EVERY_MS);

  return {
    async stop(units: number): Promise<EngineUsage> {
      const usage = cpu.stop();
      stopped = true;
      clearInterval(timer);
      await sampling;
      let ended = 0;
      const cpuBy = { temporal: 0, app: 0 };
      const count = { temporal: 0, app: 0 };
      for (const [pid, { datname, cpuAtStart }] of seen) {
        let now = cpuSecondsOf(pid);
        if (Number.isNaN(now)) {
          ended++;
          now = lastCpu.get(pid) ?? cpuAtStart;
        }
        const group = datname === appDb ? 'app' : 'temporal';
        cpuBy[group] += Math.max(0, now - cpuAtStart);
        count[group]++;
      }
      // pg_stat_database lags by up to a second (PGSTAT_MIN_INTERVAL): let it catch up.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const counters1 = await counters();
      const timers1 = await serverTimers(stack.server.metricsUrl).catch(() => ({}) as TimerTotals);
      await pg.end();
      const sum = (dbs: string[], field: keyof DatabaseCounters) =>
        dbs.reduce((total, db) => total + ((counters1[db]?.[field] ?? 0) - (counters0[db]?.[field] ?? 0)), 0);
      const per = (n: number, digits = 2) => Math.round((n / Math.max(1, units)) * 10 ** digits) / 10 ** digits;
      const cluster = temporalDbs.length > 0;
      const totalWaits = [...waits.values()].reduce((a, b) => a + b, 0);
      return {
        seconds: usage.seconds,
        units,
        machineBusyPercent: usage.machineBusyPercent,
        cpuMsPerUnit: {
          server: per((usage.cpuSeconds.server ?? Number.NaN) * 1000),
          worker: per((usage.cpuSeconds.worker ?? Number.NaN) * 1000),
          postgresTemporal: cluster ? per(cpuBy.temporal * 1000) : null,
          postgresApp: per(cpuBy.app * 1000),
        },
        postgresBackends: { temporal: count.temporal, app: count.app, ended },
        commitsPerUnit: { temporal: cluster ? per(sum(temporalDbs, 'commits'), 1) : null, app: per(sum([appDb], 'commits'), 1) },
        writesPerUnit: { temporal: cluster ? per(sum(temporalDbs, 'writes'), 1) : null, app: per(sum([appDb], 'writes'), 1) },
        waitEvents: [...waits.entries()]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 6)
          .map(([event, n]) => ({ event, share: Math.round((n / Math.max(1, totalWaits)) * 100) / 100 })),
        waitSamples,
        serverTimers: timersPer(timers0, timers1, units),
        maxBacklog,
      };
    },
  };
}

/** One line naming what the figures say bounded the phase, from the measurements above. */
function boundOf(usage: EngineUsage, cores: number): string {
  const parts: string[] = [];
  if (usage.machineBusyPercent >= 90) parts.push(`the ${cores} cores (machine ${usage.machineBusyPercent} % busy)`);
  const lock = usage.serverTimers.lock_latency;
  const semaphore = usage.serverTimers.semaphore_latency;
  const persistence = usage.serverTimers.persistence_latency;
  const queued = usage.serverTimers.task_schedule_to_start_latency;
  if (persistence) parts.push(`persistence ${persistence.callsPerUnit} calls x ${persistence.avgMs} ms`);
  // The shard's lock, and its IO semaphore (history.shardIOConcurrency writes at a time, 1 by default).
  if (lock) parts.push(`shard lock ${lock.callsPerUnit} x ${lock.avgMs} ms`);
  if (semaphore) parts.push(`shard IO semaphore ${semaphore.callsPerUnit} x ${semaphore.avgMs} ms`);
  // Matching: how long a task waited in its queue for a worker's poll.
  if (queued) parts.push(`task schedule-to-start ${queued.callsPerUnit} x ${queued.avgMs} ms`);
  const top = usage.waitEvents[0];
  if (top) parts.push(`PG mostly ${top.event} (${Math.round(top.share * 100)} %)`);
  if (usage.maxBacklog) parts.push(`task backlog up to ${usage.maxBacklog}`);
  return parts.join('; ');
}

/** The usage as rows of the table, named the same in every scenario ("CPU per send: server"...). */
export function usageFigures(scenario: string, unit: 'start' | 'send', usage: EngineUsage, cores: number): Figure[] {
  const cpu = usage.cpuMsPerUnit;
  return [
    reported(scenario, `CPU per ${unit}: server`, cpu.server, 'ms'),
    reported(scenario, `CPU per ${unit}: worker`, cpu.worker, 'ms'),
    reported(scenario, `CPU per ${unit}: PostgreSQL, Temporal's databases`, cpu.postgresTemporal, 'ms', `${usage.postgresBackends.temporal} backends`),
    reported(scenario, `CPU per ${unit}: PostgreSQL, the app's database`, cpu.postgresApp, 'ms', `${usage.postgresBackends.app} backends`),
    reported(scenario, `PG commits per ${unit}: Temporal's databases`, usage.commitsPerUnit.temporal, ''),
    reported(scenario, `PG commits per ${unit}: the app's database`, usage.commitsPerUnit.app, ''),
    reported(scenario, `PG row writes per ${unit}: Temporal's databases`, usage.writesPerUnit.temporal, ''),
    reported(scenario, `PG row writes per ${unit}: the app's database`, usage.writesPerUnit.app, ''),
    reported(scenario, 'machine CPU busy', usage.machineBusyPercent, '%', `of ${cores} cores, everyone's processes`),
    reported(scenario, 'bound', null, '', boundOf(usage, cores)),
  ];
}
