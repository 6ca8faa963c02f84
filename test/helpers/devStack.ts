// A real dev server, a scratch database, the fake Postmark and an in-process worker with the real
// activities: for tests that need real time, start delays or visibility queries (the time-skipping
// server models neither the same way).
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { loadConfig, taskQueueOf, type Config } from '../../src/config';
import { createPostmarkMailer } from '../../src/email/postmarkMailer';
import { workerActivities, workerTuning } from '../../src/programs/worker';
import { startDevServer, type DevServer } from '../../scripts/devtools/devServer';
import { startFakePostmark, type FakePostmark } from '../../scripts/devtools/fakePostmark';
import { createTestDatabase, type TestDatabase } from './database';
import { workflowBundle } from './temporal';
import { registryAdapter } from '../../src/registry';

export interface DevStack {
  server: DevServer;
  database: TestDatabase;
  postmark: FakePostmark;
  client: Client;
  /** The worker's config; `settings()` gives the same with other variables. */
  config: Config;
  settings(env?: Record<string, string>): Config;
  stop(): Promise<void>;
}

/** Starts everything, the worker on `taskQueue` (with the instance appended) with `env` on top of the stack's own variables. */
export async function startDevStack(taskQueue: string, env: Record<string, string> = {}): Promise<DevStack> {
  const [server, database, postmark] = await Promise.all([startDevServer({ ui: false }), createTestDatabase(), startFakePostmark()]);
  const client = new Client({ connection: await Connection.connect({ address: server.address }) });
  const settings = (more: Record<string, string> = {}) =>
    loadConfig({
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_TASK_QUEUE: taskQueue,
      TOKEN_EXPIRY_INSTANCE: database.instance,
      POSTMARK_SERVER_TOKEN: postmark.serverToken,
      POSTMARK_API_URL: postmark.url,
      ...env,
      ...more,
    });
  const config = settings();
  const workerConnection = await NativeConnection.connect({ address: server.address });
  const mailer = createPostmarkMailer({ serverToken: postmark.serverToken, apiUrl: postmark.url, timeoutSeconds: 5 });
  const worker = await Worker.create({
    connection: workerConnection,
    taskQueue: taskQueueOf(config),
    workflowBundle: await workflowBundle(),
    activities: workerActivities({ registry: registryAdapter(config), db: database.pool, mailer, client, clock: { now: async () => new Date() }, config }),
    ...workerTuning(config),
  });
  const running = worker.run();
  return {
    server,
    database,
    postmark,
    client,
    config,
    settings,
    async stop() {
      worker.shutdown();
      await running.catch(() => undefined);
      await Promise.allSettled([workerConnection.close(), client.connection.close()]);
      await Promise.allSettled([server.stop(), postmark.close(), database.drop()]);
    },
  };
}
