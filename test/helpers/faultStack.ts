/**
 * The whole system for one fault-scenario file, for real and in real time: a `temporal server start-dev`
 * persisted to a SQLite file (UI off), or with `engine: 'cluster'` the production-shaped cluster of
 * docker-compose.yml (scripts/devtools/cluster.ts, its databases dropped afterwards; its services in one
 * process, or apart so that one can be killed); a PostgreSQL database
 * of its own, the fake Postmark behind a tap that notes which reminder each request was for, and the worker
 * (and API) as child processes running the built command, so that a test can kill -9 them. Reminders come
 * in seconds (EXPIRY_REMINDERS).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { Pool } from 'pg';
import { loadConfig, type Config } from '../../src/config';
import { searchAttributes, tokenExpiryWorkflowId } from '../../src/tokenExpiry/contract';
import { createPool } from '../../src/db/pool';
import { insertUser } from '../../src/registry/builtin';
import { createTokenService, type TokenService } from '../../src/tokens/service';
import { startFakePostmark, type FakePostmark } from '../../scripts/devtools/fakePostmark';
import { childEnv, CliProcess, requireBuiltCli } from './cliProcess';
import { adminDatabaseUrl, createTestDatabase, type TestDatabase } from './database';
import { dropClusterDatabases, startCluster, type Cluster, type ServiceLayout } from '../../scripts/devtools/cluster';
import { createScratchDatabase } from '../../scripts/devtools/scratchDatabase';
import { startOwnPostgres, type OwnPostgres } from './ownPostgres';
import { freePort, startDevServer, type DevServer } from '../../scripts/devtools/devServer';
import { eventually } from './poll';
import { startPostmarkTap, type PostmarkTap } from './postmarkTap';
import { findNeedles, needlesFor, temporalCorpus } from './privacyScan';
import { describeRows, reconcile, type Reconciliation, type TokenUnderTest } from './reconcile';
import { TEST_INSTANCE } from './database';
import { registryAdapter } from '../../src/registry';

export interface FaultStackOptions {
  /** EXPIRY_REMINDERS for the tokens made here, e.g. "20s,10s". */
  reminders: string;
  /** EXPIRED_NOTICE (default true). */
  expiredNotice?: boolean;
  /** The dev server (default), or the real server on PostgreSQL with `shards` history shards (default 4: quick to start). */
  engine?: 'dev' | 'cluster';
  shards?: number;
  /** With engine 'cluster': all services in one process (default), or each in its own (a fault test kills one). */
  services?: ServiceLayout;
  /** EXPIRY_DIGEST_WINDOW (default 0, or TEST_EXPIRY_DIGEST_WINDOW): these scenarios are mostly about one email per token. */
  digestWindow?: string;
  /**
   * EXPIRY_SPREAD when set. A digest writes the rows of the tokens it covers with due times that differ from
   * their own workflows' spread ones (by up to 0.15 s in the cluster fan-ins), which reconcile() counts as a
   * mismatch: a fan-in with digests turns the spread off.
   */
  spread?: string;
  /**
   * Everything (the app's database and the cluster's) on a PostgreSQL server of the file's own, which the
   * test may restart (`stack.postgres.restart()`); otherwise on the tests' shared server.
   */
  ownPostgres?: boolean;
}

/** What the scenarios do with either engine's server. */
export type TemporalServer = Pick<DevServer, 'address' | 'running' | 'start' | 'stop' | 'restart' | 'output'>;

export interface TestUser {
  id: string;
  login: string;
  email: string;
  verified: boolean;
}

export interface TestToken {
  id: string;
  secret: string;
  createdAt: Date;
  expiresAt: Date;
  user: TestUser;
}

/** Application names that tell the test's own database connections from the system's (scenario 4 kills the latter). */
export const TEST_APPLICATION_NAME = 'fault-test';

const REPORTS = path.resolve(__dirname, '../../.data/faults');

function withApplicationName(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('application_name', name);
  return parsed.toString();
}

export class FaultStack {
  server!: TemporalServer;
  /** The same server as `server` with engine 'cluster', with its processes one by one. */
  cluster: Cluster | undefined;
  /** With `ownPostgres`: the PostgreSQL server under everything. */
  postgres: OwnPostgres | undefined;
  /** Where this stack's databases are made. */
  private adminUrl = adminDatabaseUrl();
  database!: TestDatabase;
  /** The test's own pool (application_name fault-test). */
  db!: Pool;
  postmark!: FakePostmark;
  tap!: PostmarkTap;
  client!: Client;
  config!: Config;
  tokens!: TokenService;
  readonly workers: CliProcess[] = [];
  readonly apis: CliProcess[] = [];
  readonly users: TestUser[] = [];
  readonly created: TestToken[] = [];
  /** What the scenario did when, for its report. */
  readonly timeline: { at: string; event: string }[] = [];
  /** Temporal's main database with engine 'cluster' (its visibility one is named after it). */
  private readonly clusterDatabase = `temporal_test_${randomBytes(6).toString('hex')}`;
  private dir = '';
  private readonly taskQueue = `faults-${randomBytes(4).toString('hex')}`;

  private constructor(
    readonly name: string,
    private readonly opts: FaultStackOptions,
  ) {}

  /** Registers the hooks that start and stop everything; call at the top of a test file. */
  static use(name: string, opts: FaultStackOptions): FaultStack {
    const stack = new FaultStack(name, opts);
    beforeAll(() => stack.open(), 120_000);
    afterAll(() => stack.close(), 120_000);
    return stack;
  }

  private async open(): Promise<void> {
    requireBuiltCli();
    this.dir = await mkdtemp(path.join(tmpdir(), `token-expiry-${this.name}-`));
    if (this.opts.ownPostgres) {
      this.postgres = await startOwnPostgres();
      this.adminUrl = this.postgres.adminUrl;
    }
    const started = await Promise.allSettled([
      this.opts.engine === 'cluster'
        ? startCluster({
            adminUrl: this.adminUrl,
            shards: this.opts.shards ?? 4,
            database: this.clusterDatabase,
            services: this.opts.services,
            uiPort: false,
            // Inside the hook's 120 s, so that a failed start says why.
            startTimeoutMs: 90_000,
          })
        : startDevServer({ ui: false, dbFilename: path.join(this.dir, 'temporal.db') }),
      this.opts.ownPostgres ? createScratchDatabase(this.adminUrl, 'token_expiry_test', 10, TEST_INSTANCE) : createTestDatabase(),
      startFakePostmark(),
    ] as const);
    // What did start is kept, so that close() stops it when another part failed (or jest would never exit).
    const [server, database, postmark] = started.map((result) => (result.status === 'fulfilled' ? result.value : undefined)) as [
      TemporalServer | undefined,
      TestDatabase | undefined,
      FakePostmark | undefined,
    ];
    Object.assign(this, { server, database, postmark });
    if (this.opts.engine === 'cluster') this.cluster = server as Cluster | undefined;
    const failed = started.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    if (!server || !database || !postmark) throw new Error('unreachable: every part started');
    this.db = createPool(withApplicationName(database.url, TEST_APPLICATION_NAME), 4);
    this.tap = await startPostmarkTap(postmark.url);
    this.client = new Client({ connection: await Connection.connect({ address: server.address }) });
    this.config = loadConfig({
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_TASK_QUEUE: this.taskQueue,
      TOKEN_EXPIRY_INSTANCE: database.instance,
      EXPIRY_REMINDERS: this.opts.reminders,
      EXPIRED_NOTICE: String(this.opts.expiredNotice ?? true),
      EXPIRY_DIGEST_WINDOW: this.digestWindow,
      ...(this.opts.spread === undefined ? {} : { EXPIRY_SPREAD: this.opts.spread }),
    });
    this.tokens = createTokenService({ registry: registryAdapter(this.config), db: this.db, temporal: async () => this.client, config: this.config });
  }

  private async close(): Promise<void> {
    // Workers and the API first: they stop cleanly only while the server still answers.
    await Promise.allSettled([...this.workers, ...this.apis].map((child) => child.stop(30_000)));
    await Promise.allSettled([this.client?.connection.close(), this.server?.stop()]);
    await Promise.allSettled([this.tap?.close(), this.postmark?.close(), this.db?.end()]);
    await this.database?.drop();
    // Made by the schema step even when the server then failed to start.
    if (this.opts.engine === 'cluster') await dropClusterDatabases(this.adminUrl, this.clusterDatabase).catch(() => undefined);
    await this.postgres?.close();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }

  private get digestWindow(): string {
    return this.opts.digestWindow ?? process.env.TEST_EXPIRY_DIGEST_WINDOW ?? '0';
  }

  note(event: string): void {
    this.timeline.push({ at: new Date().toISOString(), event });
  }

  /** The environment of the system's processes: this stack's server, database, Postmark and reminders. */
  env(application: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return childEnv({
      DATABASE_URL: withApplicationName(this.database.url, application),
      TEMPORAL_ADDRESS: this.server.address,
      TEMPORAL_TASK_QUEUE: this.taskQueue,
      POSTMARK_SERVER_TOKEN: this.postmark.serverToken,
      POSTMARK_API_URL: this.tap.url,
      EMAIL_FROM: 'crates.io <noreply@crates.io>',
      REGISTRY_NAME: 'crates.io',
      REGISTRY_URL: 'https://crates.io',
      EXPIRY_REMINDERS: this.opts.reminders,
      EXPIRED_NOTICE: String(this.opts.expiredNotice ?? true),
      // The fake's search finds a message at once, and these tokens live for seconds: a crashed send's lease
      // (its send time plus this lag) must end before the token expires, as a 2-minute one would not.
      POSTMARK_SEARCH_LAG: '2s',
      // Reminders here come seconds apart: an hour's digest window would hold every "expired" notice of a
      // user with two tokens for that hour. Most scenarios are about one email per token; a fan-in asks for seconds.
      EXPIRY_DIGEST_WINDOW: this.digestWindow,
      ...(this.opts.spread === undefined ? {} : { EXPIRY_SPREAD: this.opts.spread }),
      LOG_LEVEL: 'INFO',
      ...extra,
    });
  }

  /** The worker now running (the latest one started). */
  get worker(): CliProcess {
    const worker = this.workers[this.workers.length - 1];
    if (!worker) throw new Error('no worker started yet');
    return worker;
  }

  /** `token-expiry worker` as a child process; resolves once it polls. */
  async startWorker(): Promise<CliProcess> {
    const worker = CliProcess.start(`worker#${this.workers.length + 1}`, ['worker'], this.env('token-expiry-worker'));
    this.workers.push(worker);
    await worker.waitForLog('polling', (line) => line.message === 'Worker state changed' && line.state === 'RUNNING', 90_000);
    this.note(`${worker.name} running (pid ${worker.pid})`);
    return worker;
  }

  /** kill -9 of the current worker. */
  async killWorker(why: string): Promise<void> {
    const worker = this.worker;
    await worker.kill();
    this.note(`${worker.name} killed with SIGKILL ${why}`);
  }

  /** `token-expiry api` as a child process on a free port; resolves once it listens. */
  async startApi(): Promise<{ process: CliProcess; url: string; serviceToken: string }> {
    const port = await freePort();
    const serviceToken = `svc-${randomBytes(16).toString('hex')}`;
    const api = CliProcess.start(
      `api#${this.apis.length + 1}`,
      ['api'],
      this.env('token-expiry-api', { API_PORT: String(port), API_AUTH_TOKEN: serviceToken }),
    );
    this.apis.push(api);
    await api.waitForLog('listening', (line) => line.message === 'api listening', 60_000);
    return { process: api, url: `http://127.0.0.1:${port}`, serviceToken };
  }

  /** Every exit of the worker or API that the test did not cause. */
  crashes(): string[] {
    return [...this.workers, ...this.apis]
      .filter((child) => child.crashed)
      .map((child) => `${child.name} exited on its own (${JSON.stringify(child.crashed)}):\n${child.tail()}`);
  }

  async addUser({ verified = true }: { verified?: boolean } = {}): Promise<TestUser> {
    const tag = randomBytes(4).toString('hex');
    const login = `user${this.users.length + 1}-${tag}`;
    // Unlike the login, so that finding the address (or its local part) anywhere means the address leaked.
    const email = `inbox.${tag}.${this.users.length + 1}@mail.example`;
    const { id } = await insertUser(this.db, { login, email, verified });
    const user = { id, login, email, verified };
    this.users.push(user);
    return user;
  }

  /** A token through the token service, as the registry makes them: row, then workflow. */
  async createToken(user: TestUser, expiresInMs: number, name = 'publish from CI'): Promise<TestToken> {
    const created = await this.tokens.create(user, {
      name,
      expiresAt: new Date(Date.now() + expiresInMs),
      crateScopes: null,
      endpointScopes: null,
    });
    if (created.workflowError) throw new Error(`token ${created.token.id}: ${created.workflowError}`);
    const token = {
      id: created.token.id,
      secret: created.secret,
      createdAt: created.token.createdAt,
      expiresAt: created.token.expiredAt as Date,
      user,
    };
    this.created.push(token);
    return token;
  }

  /** Remembers a secret (or address) made elsewhere, e.g. through the API, for the privacy scan. */
  remember(token: TestToken): void {
    this.created.push(token);
  }

  private abortOnCrash = () => {
    const crashes = this.crashes();
    return crashes.length > 0 ? crashes.join('\n') : undefined;
  };

  /** Until each workflow has run its first task and sleeps towards its next reminder. */
  async waitUntilWaiting(tokenIds: string[], timeoutMs = 60_000): Promise<void> {
    await eventually(
      `workflows of tokens ${tokenIds.join(', ')} waiting`,
      async () => {
        for (const id of tokenIds) {
          const description = await this.client.workflow.getHandle(tokenExpiryWorkflowId(id, TEST_INSTANCE)).describe();
          if (description.typedSearchAttributes.get(searchAttributes.state) !== 'waiting') return false;
        }
        return true;
      },
      { timeoutMs, abort: this.abortOnCrash },
    );
  }

  /** Until each workflow has closed (completed, or cancelled for a revoked token). */
  async waitUntilClosed(tokenIds: string[], timeoutMs = 240_000): Promise<void> {
    await eventually(
      `workflows of tokens ${tokenIds.join(', ')} closed`,
      async () => {
        for (const id of tokenIds) {
          const description = await this.client.workflow.getHandle(tokenExpiryWorkflowId(id, TEST_INSTANCE)).describe();
          if (description.status.name === 'RUNNING') return false;
        }
        return true;
      },
      { timeoutMs, intervalMs: 500, abort: this.abortOnCrash },
    );
    this.note('every workflow closed');
  }

  /** The notification rows of some tokens, as the scenario polls them. */
  async rows(tokenIds: string[]): Promise<{ tokenId: string; reminder: string; status: string; attempts: number; claimed: boolean; reason: string | null; lastError: string | null }[]> {
    const { rows } = await this.db.query(
      `SELECT token_id::text AS "tokenId", reminder, status, attempts, claimed_until IS NOT NULL AS claimed,
              reason, last_error AS "lastError"
         FROM expiry_notifications WHERE token_id = ANY($1::bigint[]) ORDER BY token_id, due_at`,
      [tokenIds],
    );
    return rows;
  }

  /**
   * The end of every scenario: the fake's log, the table and the workflows reconcile; no worker or API
   * died on its own; and no address or secret appears in any history, search attribute, memo, workflow ID
   * or captured log line. Writes .data/faults/<name>.json for the record.
   */
  async finish(tokens: TokenUnderTest[], extra: Record<string, unknown> = {}): Promise<Reconciliation> {
    const reconciliation = await reconcile({ db: this.db, client: this.client, sent: this.postmark.sent, tokens });
    const corpus = await temporalCorpus(this.client);
    const logSources = [...this.workers, ...this.apis].map((child) => ({
      label: `${child.name} output`,
      text: child.lines.map((line) => line.text).join('\n'),
    }));
    logSources.push({ label: 'Temporal server output', text: this.server.output() });
    const needles = needlesFor({ emails: this.users.map((u) => u.email), secrets: this.created.map((t) => t.secret) });
    const leaks = findNeedles([...corpus.sources, ...logSources], needles);

    await mkdir(REPORTS, { recursive: true });
    await writeFile(
      path.join(REPORTS, `${this.name}.json`),
      JSON.stringify(
        {
          scenario: this.name,
          timeline: this.timeline,
          rows: describeRows(reconciliation.rows),
          problems: reconciliation.problems,
          messagesAccepted: reconciliation.messages,
          postmarkRequests: this.tap.log.map((e) => ({ ...e, to: e.to ? '(owner)' : undefined })),
          privacy: {
            workflows: corpus.workflows,
            schedules: corpus.schedules,
            historyEvents: corpus.events,
            decodedPayloads: corpus.decodedPayloads.length,
            logLines: logSources.reduce((n, s) => n + s.text.split('\n').length, 0),
            needles: needles.length,
            leaks,
          },
          processes: [...this.workers, ...this.apis].map((c) => ({ name: c.name, pid: c.pid, crashed: c.crashed ?? null })),
          ...extra,
        },
        null,
        2,
      ),
    );

    expect(this.crashes()).toEqual([]);
    expect(reconciliation.problems).toEqual([]);
    // Not a vacuous scan: every token's workflow was read, and its payloads decoded to show its id.
    expect(corpus.workflows).toBeGreaterThanOrEqual(tokens.length);
    for (const token of tokens) {
      expect(corpus.decodedPayloads.some((text) => text.includes(`"tokenId":"${token.id}"`))).toBe(true);
    }
    expect(leaks).toEqual([]);
    return reconciliation;
  }
}

/** The token as reconcile() sees it. */
export function underTest(token: TestToken, expectation: TokenUnderTest['expect']): TokenUnderTest {
  return { id: token.id, email: token.user.email, createdAt: token.createdAt, expiresAt: token.expiresAt, expect: expectation };
}

/** The dedupe key's prefix for one reminder of a token (the key ends with the due second). */
export function keyPrefix(token: { id: string }, reminder: string): string {
  return `token-expiry:${token.id}:${reminder}:`;
}
