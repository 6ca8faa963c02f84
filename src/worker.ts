import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities, systemClock } from '../activities';
import { requirePostmarkToken, type Config } from './config';
import { createPool } from './db/pool';
import { createPostmarkMailer } from './email/postmarkMailer';
import { temporalConnectionOptions } from './temporal';

/** Polls the task queue until SIGINT or SIGTERM, then lets in-flight activities finish. */
export async function runWorker(config: Config): Promise<void> {
  const mailer = createPostmarkMailer({
    serverToken: requirePostmarkToken(config),
    apiUrl: config.POSTMARK_API_URL,
    // Below the activity's 30 s start-to-close timeout, so the activity sees the timeout itself.
    timeoutSeconds: 20,
  });
  const db = createPool(config.DATABASE_URL);
  const connection = await NativeConnection.connect(temporalConnectionOptions(config));
  try {
    const worker = await Worker.create({
      connection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      workflowsPath: require.resolve('../workflows'),
      activities: createActivities({ db, mailer, clock: systemClock, config }),
    });
    await worker.run();
  } finally {
    await connection.close();
    await db.end();
  }
}
