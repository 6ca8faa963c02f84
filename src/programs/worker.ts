import type { Client } from '@temporalio/client';
import { NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import type { Pool } from 'pg';
import { createActivities } from '../../activities/tokenExpiry';
import { createSweepActivities } from '../../activities/sweep';
import { refuseOtherInstances } from '../../activities/instance';
import { instanceOf, requirePostmarkToken, taskQueueOf, type Config } from '../config';
import { withInstance } from '../db/instance';
import { createPool } from '../db/pool';
import { runTokenDiscovery } from '../discovery/run';
import { createPostmarkMailer, type Mailer } from '../email/postmarkMailer';
import { createSendPacer } from '../email/sendPacer';
import { POSTMARK_CALL_MAX_MS } from '../tokenExpiry/lease';
import { logger } from '../log';
import { registryAdapter } from '../registry';
import type { RegistryAdapter } from '../registry/adapter';
import { checkRegistryAccess } from '../registry/grants';
import type { Clock } from '../tokenExpiry/contract';
import type { Resolve } from '../webhooks/address';
import { ensureSweepSchedule } from '../sweep/schedule';
import { ensureSearchAttributes, lazyClient, temporalConnectionOptions } from '../temporal/connection';

const systemClock: Clock = { now: async () => new Date() };

export interface WorkerDeps {
  db: Pool;
  mailer: Mailer;
  /** The sweep starts and describes workflows, which takes a client; a worker's NativeConnection can't. */
  client: Client;
  clock: Clock;
  config: Config;
  registry: RegistryAdapter;
  /** The resolver webhook deliveries check addresses from; the system's by default. */
  resolve?: Resolve;
}

/** Every activity the worker registers: the reminders' (refusing another instance's tokens) and the sweep's. */
export function workerActivities({ db, registry, mailer, client, clock, config, resolve }: WorkerDeps) {
  return {
    ...refuseOtherInstances(
      instanceOf(config),
      createActivities({ db, registry, mailer, pace: createSendPacer(config.EMAIL_MAX_PER_SECOND), clock, config, resolve }),
    ),
    ...createSweepActivities({ db, registry, client, clock, config }),
  };
}

/** The send cap and the tuning knobs (WORKER_*); the others are left to the SDK's defaults when unset. */
export function workerTuning(config: Config): Partial<WorkerOptions> {
  return {
    // Temporal enforces this across every worker on the queue; sends are nearly all of its activities.
    ...(config.EMAIL_MAX_PER_SECOND ? { maxTaskQueueActivitiesPerSecond: config.EMAIL_MAX_PER_SECOND } : {}),
    maxCachedWorkflows: config.WORKER_MAX_CACHED_WORKFLOWS,
    ...(config.WORKER_MAX_CONCURRENT_ACTIVITIES ? { maxConcurrentActivityTaskExecutions: config.WORKER_MAX_CONCURRENT_ACTIVITIES } : {}),
    ...(config.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS ? { maxConcurrentWorkflowTaskExecutions: config.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS } : {}),
    ...(config.WORKER_MAX_ACTIVITIES_PER_SECOND ? { maxActivitiesPerSecond: config.WORKER_MAX_ACTIVITIES_PER_SECOND } : {}),
    ...(config.WORKER_MAX_CONCURRENT_ACTIVITY_POLLS
      ? { activityTaskPollerBehavior: { type: 'simple-maximum' as const, maximum: config.WORKER_MAX_CONCURRENT_ACTIVITY_POLLS } }
      : {}),
  };
}

/** Polls the task queue until SIGINT or SIGTERM, then lets in-flight activities finish. */
export async function runWorker(environment: Config): Promise<void> {
  Runtime.install({
    logger,
    ...(environment.METRICS_PORT
      ? { telemetryOptions: { metrics: { prometheus: { bindAddress: `0.0.0.0:${environment.METRICS_PORT}` } } } }
      : {}),
  });
  const mailer = createPostmarkMailer({
    serverToken: requirePostmarkToken(environment),
    apiUrl: environment.POSTMARK_API_URL,
    // Below the send activity's start-to-close timeout (src/tokenExpiry/lease.ts); a send is bounded tighter still.
    timeoutSeconds: POSTMARK_CALL_MAX_MS / 1000,
  });
  const db = createPool(environment.DATABASE_URL, undefined, environment.TOKEN_EXPIRY_DB_SCHEMA);
  // Every workflow id, the task queue and the activities' check of their input carry this database's instance.
  const config = await withInstance(db, environment).catch(async (err: unknown) => {
    await db.end();
    throw err;
  });
  const connection = await NativeConnection.connect(temporalConnectionOptions(config));
  const temporal = lazyClient(config);
  const client = await temporal.get();
  const registry = registryAdapter(config);
  try {
    await checkRegistryAccess(db, registry);
    logger.info('search attributes ready', await ensureSearchAttributes(client, config.TEMPORAL_NAMESPACE));
    logger.info('sweep schedule ready', { schedule: await ensureSweepSchedule(client, config) });
    const worker = await Worker.create({
      connection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue: taskQueueOf(config),
      workflowsPath: require.resolve('../../workflows'),
      activities: workerActivities({ db, registry, mailer, client, clock: systemClock, config }),
      ...workerTuning(config),
      // On SIGTERM, sends already under way get this long to finish before they are handed back.
      shutdownGraceTime: '25 seconds',
    });
    // New tokens found without the registry calling us (docs/operations.md, Attach to your registry).
    const discovery = runTokenDiscovery({ db, registry, client, config, log: logger });
    try {
      await worker.run();
    } finally {
      await discovery.stop();
    }
  } finally {
    await temporal.close();
    await connection.close();
    await db.end();
  }
}
