import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Pool } from 'pg';
import type { Clock } from '../../src/tokenExpiry/contract';
import { loadConfig, taskQueueOf, type Config } from '../../src/config';
import { insertUser } from '../../src/registry/builtin';
import type { UserRow } from '../../src/registry/adapter';
import { createPostmarkMailer, type Mailer } from '../../src/email/postmarkMailer';
import { workerActivities, workerTuning } from '../../src/programs/worker';
import { createTokenService, type CreatedToken, type TokenService } from '../../src/tokens/service';
import { createPreferenceService, type PreferenceService } from '../../src/preferences/service';
import { createCalendarService, type CalendarService } from '../../src/calendar/service';
import { createWebhookService, type WebhookService } from '../../src/webhooks/service';
import type { Resolve } from '../../src/webhooks/address';
import { startFakePostmark, type FakePostmark } from '../../scripts/devtools/fakePostmark';
import { createTestDatabase, type TestDatabase } from './database';
import { createApiServer, type ApiDeps } from '../../src/api/server';
import { JsonLogger } from '../../src/log';
import { WorkflowHarness } from './workflowHarness';
import { registryAdapter } from '../../src/registry';

/**
 * Everything real but the clock's speed: test server, PostgreSQL, postmark client, fake Postmark.
 * The database and the fake live for a test file; each test gets its own time-skipping server,
 * because a server that has skipped 90 days no longer agrees with the database's now().
 */
export class TestSystem {
  private constructor(private readonly harness: WorkflowHarness) {}
  private opened: { database: TestDatabase; postmark: FakePostmark } | undefined;
  private users = 0;
  private readonly apiServers: Server[] = [];

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
    return this.harness.env;
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
    const system = new TestSystem(WorkflowHarness.use());
    beforeAll(async () => {
      const [database, postmark] = await Promise.all([createTestDatabase(), startFakePostmark()]);
      system.opened = { database, postmark };
    });
    beforeEach(() => system.postmark.reset());
    afterEach(() => {
      for (const server of system.apiServers.splice(0)) {
        server.closeAllConnections();
        server.close();
      }
    });
    afterAll(async () => {
      await Promise.allSettled([system.opened?.postmark.close(), system.opened?.database.drop()]);
    });
    return system;
  }

  get db() {
    return this.database.pool;
  }

  /** Config as the worker would load it (its instance the database's), on a task queue of the test's own. */
  config(env: Record<string, string> = {}): Config {
    return loadConfig({
      POSTMARK_SERVER_TOKEN: this.postmark.serverToken,
      POSTMARK_API_URL: this.postmark.url,
      REGISTRY_NAME: 'crates.io',
      REGISTRY_URL: 'https://crates.io',
      EMAIL_FROM: 'crates.io <noreply@crates.io>',
      TEMPORAL_TASK_QUEUE: this.harness.unique('token-expiry-test'),
      TOKEN_EXPIRY_INSTANCE: this.database.instance,
      // Short, so that a row held after an ambiguous send lapses within a test (leasesInRealTime).
      POSTMARK_SEARCH_LAG: '1s',
      // TEST_EXPIRY_DIGEST_WINDOW=0 runs any test file with digests off (issue 9: today's behaviour exactly).
      ...(process.env.TEST_EXPIRY_DIGEST_WINDOW ? { EXPIRY_DIGEST_WINDOW: process.env.TEST_EXPIRY_DIGEST_WINDOW } : {}),
      ...env,
    });
  }

  tokens(config: Config): TokenService {
    return createTokenService({ registry: registryAdapter(config), db: this.db, temporal: async () => this.env.client, config, now: () => new Date() });
  }

  preferences(config: Config): PreferenceService {
    return createPreferenceService({ registry: registryAdapter(config), db: this.db, temporal: async () => this.env.client, config });
  }

  calendar(config: Config): CalendarService {
    return createCalendarService({ registry: registryAdapter(config), db: this.db, config });
  }

  webhooks(config: Config, resolve?: Resolve): WebhookService {
    return createWebhookService({ db: this.db, config, resolve });
  }

  /** The HTTP API on these services, on a free port of 127.0.0.1 until the test ends; its base URL. */
  async api(config: Config, overrides: Partial<ApiDeps> = {}): Promise<string> {
    const server = createApiServer({
      tokens: this.tokens(config),
      preferences: this.preferences(config),
      calendar: this.calendar(config),
      webhooks: this.webhooks(config),
      db: this.db,
      temporal: async () => this.env.client,
      config,
      logger: new JsonLogger('WARN', () => undefined),
      ...overrides,
    });
    this.apiServers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  mailer(config: Config, timeoutSeconds = 5): Mailer {
    return createPostmarkMailer({
      serverToken: config.POSTMARK_SERVER_TOKEN ?? '',
      apiUrl: config.POSTMARK_API_URL,
      timeoutSeconds,
    });
  }

  /** Runs a worker as src/programs/worker.ts builds it (the real activities, the same tuning) while `fn` runs. */
  async withWorker<T>(
    config: Config,
    fn: () => Promise<T>,
    opts: { mailer?: Mailer; wrap?: WrapActivities; db?: Pool; resolve?: Resolve } = {},
  ): Promise<T> {
    const activities = workerActivities({
      db: opts.db ?? this.db,
      registry: registryAdapter(config),
      mailer: opts.mailer ?? this.mailer(config),
      client: this.env.client,
      clock: this.clock,
      config,
      resolve: opts.resolve,
    });
    const timed = leasesInRealTime(activities);
    return this.harness.withWorker(taskQueueOf(config), opts.wrap ? opts.wrap(timed) : timed, fn, workerTuning(config));
  }

  async addUser(login: string, email: string, verified = true): Promise<TestUser> {
    return { ...(await insertUser(this.db, { login, email, verified })), email };
  }

  /** A token named "ci" with no scopes, through the token service, as the registry makes them. */
  createToken(tokens: TokenService, user: UserRow, expiresInMs: number): Promise<CreatedToken> {
    return tokens.create(user, { name: 'ci', expiresAt: new Date(Date.now() + expiresInMs), crateScopes: null, endpointScopes: null });
  }

  /** A user with a login of their own (user1, user2, ...) and the address <login>@example.com. */
  newUser({ verified = true }: { verified?: boolean } = {}): Promise<TestUser> {
    const login = `user${++this.users}`;
    return this.addUser(login, `${login}@example.com`, verified);
  }
}

export type TestUser = UserRow & { email: string };

type Activities = ReturnType<typeof workerActivities>;
export type WrapActivities = (activities: Activities) => Activities;

/**
 * A claim's lease runs on the database's clock, which the time-skipping server does not skip: a send that asks
 * to be retried after a delay (ReminderBusy, an unknown outcome) waits that long in real time (at most 10 s)
 * before it fails, so that its retry, however soon in workflow time, finds the lease lapsed as it would.
 */
function leasesInRealTime<A extends Pick<Activities, 'sendReminder' | 'sendReminderFirstTry'>>(activities: A): A {
  const waitOut = <I, R>(fn: (input: I) => Promise<R>) => async (input: I): Promise<R> => {
    try {
      return await fn(input);
    } catch (err) {
      const delay = err instanceof ApplicationFailure ? Number(err.nextRetryDelay ?? 0) : 0;
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(delay, 10_000)));
      throw err;
    }
  };
  return { ...activities, sendReminder: waitOut(activities.sendReminder), sendReminderFirstTry: waitOut(activities.sendReminderFirstTry) };
}
