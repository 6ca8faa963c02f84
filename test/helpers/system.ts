import { Context } from '@temporalio/activity';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createActivities, type Clock } from '../../activities';
import { loadConfig, type Config } from '../../src/config';
import { insertUser } from '../../src/db/tokens';
import { createPostmarkMailer, type Mailer } from '../../src/email/postmarkMailer';
import { createTokenService, type TokenService } from '../../src/tokens';
import { startFakePostmark, type FakePostmark } from '../fakePostmark';
import { createTestDatabase, type TestDatabase } from './database';
import { startTimeSkippingEnv, workflowBundle } from './temporal';

let queues = 0;

/**
 * Everything real but the clock's speed: test server, PostgreSQL, postmark client, fake Postmark.
 * The database and the fake live for a test file; each test gets its own time-skipping server,
 * because a server that has skipped 90 days no longer agrees with the database's now().
 */
export class TestSystem {
  private server: TestWorkflowEnvironment | undefined;
  private opened: { database: TestDatabase; postmark: FakePostmark } | undefined;

  /**
   * The server's notion of now: under the time-skipping server months pass in seconds, so "expires in
   * 7 days" must come from the server's time. A queued activity carries the time it was scheduled; a
   * local one, run inside a workflow task, asks the server.
   */
  get clock(): Clock {
    const env = this.env;
    return {
      now: async () => {
        const { info } = Context.current();
        return new Date(info.isLocal ? await env.currentTimeMs() : info.currentAttemptScheduledTimestampMs);
      },
    };
  }

  get env(): TestWorkflowEnvironment {
    if (!this.server) throw new Error('the test server runs only inside a test');
    return this.server;
  }

  get postmark(): FakePostmark {
    return this.open().postmark;
  }

  get database(): TestDatabase {
    return this.open().database;
  }

  private open() {
    if (!this.opened) throw new Error('useTestSystem() must be called at the top of the test file');
    return this.opened;
  }

  /** Registers the hooks that start and stop everything; call at the top of a test file. */
  static use(): TestSystem {
    const system = new TestSystem();
    beforeAll(async () => {
      const [database, postmark] = await Promise.all([createTestDatabase(), startFakePostmark()]);
      system.opened = { database, postmark };
    });
    beforeEach(async () => {
      system.postmark.reset();
      system.server = await startTimeSkippingEnv();
    });
    afterEach(async () => {
      await system.server?.teardown();
      system.server = undefined;
    });
    afterAll(async () => {
      await Promise.allSettled([system.opened?.postmark.close(), system.opened?.database.drop()]);
    });
    return system;
  }

  get db() {
    return this.database.pool;
  }

  /** Config as the worker would load it, on a task queue of the test's own. */
  config(env: Record<string, string> = {}): Config {
    return loadConfig({
      POSTMARK_SERVER_TOKEN: this.postmark.serverToken,
      POSTMARK_API_URL: this.postmark.url,
      REGISTRY_NAME: 'crates.io',
      REGISTRY_URL: 'https://crates.io',
      EMAIL_FROM: 'crates.io <noreply@crates.io>',
      TEMPORAL_TASK_QUEUE: `token-expiry-test-${process.pid}-${++queues}`,
      ...env,
    });
  }

  tokens(config: Config): TokenService {
    return createTokenService({ db: this.db, temporal: async () => this.env.client, config, now: () => new Date() });
  }

  mailer(config: Config, timeoutSeconds = 5): Mailer {
    return createPostmarkMailer({
      serverToken: config.POSTMARK_SERVER_TOKEN ?? '',
      apiUrl: config.POSTMARK_API_URL,
      timeoutSeconds,
    });
  }

  /** Runs a worker with the real activities while `fn` runs. */
  async withWorker<T>(config: Config, fn: () => Promise<T>, opts: { mailer?: Mailer; wrap?: WrapActivities } = {}): Promise<T> {
    const activities = createActivities({
      db: this.db,
      mailer: opts.mailer ?? this.mailer(config),
      clock: this.clock,
      config,
    });
    const worker = await Worker.create({
      connection: this.env.nativeConnection,
      namespace: this.env.namespace ?? 'default',
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      workflowBundle: await workflowBundle(),
      activities: opts.wrap ? opts.wrap(activities) : activities,
    });
    return worker.runUntil(fn);
  }

  async addUser(login: string, email: string, verified = true): Promise<string> {
    return (await insertUser(this.db, { login, email, verified })).id;
  }
}

type Activities = ReturnType<typeof createActivities>;
export type WrapActivities = (activities: Activities) => Activities;
