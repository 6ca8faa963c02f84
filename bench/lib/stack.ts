// One scenario's stack: a dev server, a fresh database, the fake Postmark and the worker process,
// started together and always torn down, whatever the scenario throws.
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { loadConfig, type Config } from '../../src/config';
import { startFakePostmark, type FakePostmark } from '../../scripts/devtools/fakePostmark';
import { createScratchDatabase, type ScratchDatabase } from '../../scripts/devtools/scratchDatabase';
import type { BenchOptions } from './options';
import { startBenchServer, type BenchServer } from './server';
import { startWorker, type WorkerProcess } from './worker';

export interface Stack<D extends ScratchDatabase = ScratchDatabase> {
  server: BenchServer;
  client: Client;
  database: D;
  db: Pool;
  postmark: FakePostmark;
  worker: WorkerProcess;
  /** The configuration the worker runs with, as the bench's own token service and backfill see it. */
  config: Config;
  log(message: string): void;
}

export interface StackSettings<D extends ScratchDatabase = ScratchDatabase> {
  scenario: string;
  /** Worker variables beyond the connection: EXPIRY_REMINDERS, EXPIRED_NOTICE, EMAIL_MAX_PER_SECOND... */
  env?: Record<string, string>;
  /** Connections in the bench's own pool (the worker has its own). */
  poolSize?: number;
  /** Another database than a fresh builtin one (crates.io's shape); the worker connects to its `url`. */
  database?: () => Promise<D>;
  /** Another Temporal than the bench's dev server (the real server on PostgreSQL: clusterServer.ts). */
  server?: () => Promise<BenchServer>;
}

export async function withStack<T, D extends ScratchDatabase = ScratchDatabase>(
  options: BenchOptions,
  settings: StackSettings<D>,
  run: (stack: Stack<D>) => Promise<T>,
): Promise<T> {
  const log = (message: string) => options.log(`[${settings.scenario}] ${message}`);
  const cleanups: (() => Promise<void>)[] = [];
  try {
    // A scenario's own Temporal (send-cost-cluster) first, else the engine's shared cluster, else a dev server.
    const shared = settings.server ? undefined : options.sharedServer;
    const where = settings.server ? 'starting Temporal' : shared ? `on the cluster at ${shared.address}` : `starting the dev server (${options.serverStorage})`;
    log(`${where}, a database and the fake Postmark (${options.latencyMs} ms)`);
    const [server, database, postmark] = await Promise.all([
      settings.server?.() ?? shared ?? startBenchServer(options.serverStorage, options.serverConfig),
      settings.database?.() ??
        // Without a database of its own, D is ScratchDatabase (the default type argument).
        (createScratchDatabase(options.adminUrl, `${options.databasePrefix}_${settings.scenario}`, settings.poolSize) as Promise<D>),
      startFakePostmark(),
    ]);
    // A shared cluster outlives the scenario: run.ts stops it after the engine's last one.
    cleanups.push(() => (shared ? Promise.resolve() : server.stop()), () => (options.keepDatabases ? Promise.resolve() : database.drop()), () => postmark.close());
    postmark.latencyMs = options.latencyMs;
    const taskQueue = `token-expiry-bench-${settings.scenario}`;
    // No discovery passes: the scenarios start their own workflows and time them (a pass would start some of a backfill's).
    const env = { EXPIRY_REMINDERS: '7d,1d', EXPIRED_NOTICE: 'true', TOKEN_DISCOVERY_INTERVAL: '0', ...options.workerEnv, ...settings.env };
    const config = loadConfig({
      ...env,
      DATABASE_URL: database.url,
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_TASK_QUEUE: taskQueue,
      TOKEN_EXPIRY_INSTANCE: database.instance,
      POSTMARK_API_URL: postmark.url,
      POSTMARK_SERVER_TOKEN: postmark.serverToken,
    });
    log('starting the worker');
    const worker = await startWorker({
      client: server.client,
      temporalAddress: server.address,
      taskQueue,
      instance: database.instance,
      databaseUrl: database.url,
      postmarkUrl: postmark.url,
      postmarkToken: postmark.serverToken,
      env,
      nodeArgs: options.workerNodeArgs,
    });
    cleanups.push(() => worker.stop());
    log(`worker ${worker.pid} ready (log: ${worker.logPath})`);
    return await run({ server, client: server.client, database, db: database.pool, postmark, worker, config, log });
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((err: unknown) => log(`cleanup failed: ${String(err)}`));
  }
}
