// Several instances in one Temporal namespace, set up as docs/design.md, Ids and instances, says (each its own database, the default
// TEMPORAL_TASK_QUEUE, a worker each), with overlapping token ids: nothing of one reaches the other. In real
// time on a real server, because replan lists workflows through the visibility store; written once, run on
// the dev server (test/instances.test.ts) and on the production-shaped cluster (test/instances.cluster.test.ts).
import { Client, Connection, type WorkflowExecutionDescription } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { Pool } from 'pg';
import { loadConfig, taskQueueOf, type Config } from '../../src/config';
import { withInstance } from '../../src/db/instance';
import { createPostmarkMailer } from '../../src/email/postmarkMailer';
import { insertUser } from '../../src/registry/builtin';
import { runBackfill } from '../../src/sweep/backfill';
import { statusQuery, tokenExpiryWorkflowId, WRONG_INSTANCE, type TokenExpiryInput, type TokenExpiryStatus } from '../../src/tokenExpiry/contract';
import { runReplan, waitingWorkflowsQuery } from '../../src/tokenExpiry/replan';
import { createTokenService } from '../../src/tokens/service';
import { workerActivities, workerTuning } from '../../src/programs/worker';
import { startFakePostmark, type FakePostmark } from '../../scripts/devtools/fakePostmark';
import { createScratchDatabase, type ScratchDatabase } from '../../scripts/devtools/scratchDatabase';
import { adminDatabaseUrl } from './database';
import { readyForOurWorkflows, startEngine, type Engine, type EngineServer } from './engine';
import { eventually } from './poll';
import { workflowBundle } from './temporal';
import { registryAdapter } from '../../src/registry';

const SECOND = 1_000;

/** The suite, on a server of `engine`'s kind of its own. */
export function instancesSuite(engine: Engine): void {
  let server: EngineServer;
  let postmark: FakePostmark;
  let client: Client;
  let databases: ScratchDatabase[] = [];

  beforeAll(async () => {
    [server, postmark] = await Promise.all([startEngine(engine), startFakePostmark()]);
    client = new Client({ connection: await Connection.connect({ address: server.address }) });
    await readyForOurWorkflows(client);
  }, 120_000);
  afterAll(async () => {
    await client?.connection.close();
    await Promise.allSettled([server?.stop(), postmark?.close()]);
  }, 60_000);
  beforeEach(() => postmark.reset());
  afterEach(async () => {
    await Promise.all(databases.map((d) => d.drop()));
    databases = [];
  });

  /** A database of its own; its instance id made by its first migrate (a random one unless named). */
  async function database(instance?: string): Promise<ScratchDatabase> {
    const created = await createScratchDatabase(adminDatabaseUrl(), 'token_expiry_test_instance', 4, instance);
    databases.push(created);
    return created;
  }

  /** The config a program of this database runs with: docs/operations.md's defaults (one task queue name for all), its instance read from it. */
  function configOf(db: ScratchDatabase, env: Record<string, string> = {}): Promise<Config> {
    return withInstance(
      db.pool,
      loadConfig({
        DATABASE_URL: db.url,
        TEMPORAL_ADDRESS: server.address,
        POSTMARK_SERVER_TOKEN: postmark.serverToken,
        POSTMARK_API_URL: postmark.url,
        REGISTRY_NAME: 'crates.io',
        // Seconds apart, in real time: a warning 20 s before expiry, the notice at it; one email per token.
        EXPIRY_REMINDERS: '20s',
        EXPIRY_SPREAD: '0',
        EXPIRY_START_DELAY: 'false',
        EXPIRY_DIGEST_WINDOW: '0',
        ...env,
      }),
    );
  }

  /** The worker as src/programs/worker.ts builds it, on its instance's task queue, while `fn` runs. */
  async function withWorker<T>(db: Pool, config: Config, fn: () => Promise<T>): Promise<T> {
    const connection = await NativeConnection.connect({ address: server.address });
    try {
      const mailer = createPostmarkMailer({ serverToken: postmark.serverToken, apiUrl: postmark.url, timeoutSeconds: 5 });
      const worker = await Worker.create({
        connection,
        taskQueue: taskQueueOf(config),
        workflowBundle: await workflowBundle(),
        activities: workerActivities({ registry: registryAdapter(config), db, mailer, client, clock: { now: async () => new Date() }, config }),
        ...workerTuning(config),
      });
      return await worker.runUntil(fn);
    } finally {
      await connection.close();
    }
  }

  /** Everything one could see change in a workflow: its run, status, history length and its own status. */
  async function snapshot(workflowId: string): Promise<{ description: Partial<WorkflowExecutionDescription>; status: TokenExpiryStatus }> {
    const handle = client.workflow.getHandle(workflowId);
    const { runId, status, historyLength, taskQueue } = await handle.describe();
    return { description: { runId, status, historyLength, taskQueue }, status: await handle.query(statusQuery) };
  }

  test('two instances on the default task queue name, the same token ids: each user gets their own emails, and a replan, a sweep and a revoke in one leave the other as it was', async () => {
    const [a, b] = await Promise.all([database(), database()]);
    const [aConfig, bConfig] = await Promise.all([configOf(a), configOf(b)]);
    // Made by migrate, different by default; the one default TEMPORAL_TASK_QUEUE becomes two queues.
    expect(aConfig.TOKEN_EXPIRY_INSTANCE).not.toBe(bConfig.TOKEN_EXPIRY_INSTANCE);
    expect(aConfig.TEMPORAL_TASK_QUEUE).toBe(bConfig.TEMPORAL_TASK_QUEUE);
    expect(taskQueueOf(aConfig)).not.toBe(taskQueueOf(bConfig));

    const expiresAt = new Date(Date.now() + 60 * SECOND);
    const pat = await insertUser(a.pool, { login: 'pat', email: 'pat@example.com', verified: true });
    const sam = await insertUser(b.pool, { login: 'sam', email: 'sam@example.com', verified: true });
    const aTokens = createTokenService({ registry: registryAdapter(aConfig), db: a.pool, temporal: async () => client, config: aConfig });
    const bTokens = createTokenService({ registry: registryAdapter(bConfig), db: b.pool, temporal: async () => client, config: bConfig });
    const create = (tokens: typeof aTokens, owner: typeof pat, name: string) =>
      tokens.create(owner, { name, expiresAt, crateScopes: null, endpointScopes: null });

    await withWorker(a.pool, aConfig, () =>
      withWorker(b.pool, bConfig, async () => {
        // Tokens 1 and 2 in both; a's token 3 without a workflow yet (made in the registry's table, for the sweep).
        const aCreated = [await create(aTokens, pat, 'pat-1'), await create(aTokens, pat, 'pat-2')];
        const bCreated = [await create(bTokens, sam, 'sam-1'), await create(bTokens, sam, 'sam-2'), await create(bTokens, sam, 'sam-3')];
        await a.pool.query(
          `INSERT INTO api_tokens (user_id, token, name, expired_at) VALUES ($1, sha256('pat-3'::bytea), 'pat-3', $2)`,
          [pat.id, expiresAt],
        );
        expect(aCreated.map((c) => c.token.id)).toEqual(['1', '2']);
        expect(bCreated.map((c) => c.token.id)).toEqual(['1', '2', '3']);
        expect([...aCreated, ...bCreated].map((c) => c.workflowError)).toEqual([undefined, undefined, undefined, undefined, undefined]);
        const bIds = bCreated.map((c) => c.workflowId as string);
        for (const id of [...aCreated.map((c) => c.workflowId as string), ...bIds]) {
          await eventually('the workflow answers', () => client.workflow.getHandle(id).query(statusQuery));
        }
        const before = await Promise.all(bIds.map(snapshot));

        // In a: a new plan, replanned; a sweep; a revoke. All before the first reminder is due (30 s before expiry).
        await eventually('a\'s two listed as waiting', async () => (await client.workflow.count(waitingWorkflowsQuery(taskQueueOf(aConfig)))).count === 2);
        const replanned = await configOf(a, { EXPIRY_REMINDERS: '30s' });
        const summary = await runReplan(client, replanned);
        expect(summary).toMatchObject({ matched: 2, replanned: 2, failed: 0 });
        const quiet = { info: () => undefined, warn: () => undefined };
        const swept = await runBackfill({ registry: registryAdapter(replanned), db: a.pool, client, config: replanned, now: () => new Date(), log: quiet });
        expect(swept).toMatchObject({ scanned: 1, started: 1, failed: 0, restarted: 0 });
        expect(await aTokens.revoke('2')).toMatchObject({ workflowCancelled: true });
        expect(Date.now()).toBeLessThan(expiresAt.getTime() - 30 * SECOND);

        // b's workflows with the same ids: the same runs, not one event more.
        expect(await Promise.all(bIds.map(snapshot))).toEqual(before);

        // Every token's last reminder has gone out (or been recorded) once each workflow has ended.
        const ended = [1, 3].map((id) => tokenExpiryWorkflowId(String(id), replanned.TOKEN_EXPIRY_INSTANCE as string));
        for (const id of [...ended, ...bIds]) await client.workflow.getHandle(id).result();
      }),
    );

    const sent = (to: string) => postmark.sent.filter((m) => m.To === to).map((m) => m.Subject).sort();
    expect(sent('pat@example.com')).toEqual([
      'crates.io: your API token "pat-1" expires in 1 minute',
      'crates.io: your API token "pat-1" has expired',
      'crates.io: your API token "pat-3" expires in 1 minute',
      'crates.io: your API token "pat-3" has expired',
    ]);
    expect(sent('sam@example.com')).toEqual(
      ['sam-1', 'sam-2', 'sam-3'].flatMap((name) => [`crates.io: your API token "${name}" expires in 1 minute`, `crates.io: your API token "${name}" has expired`]).sort(),
    );
    expect(postmark.sent).toHaveLength(10);
    const log = async (db: ScratchDatabase) =>
      (await db.pool.query('SELECT token_id, reminder, status FROM expiry_notifications ORDER BY token_id, reminder')).rows.map(
        (r) => `${r.token_id}:${r.reminder}:${r.status}`,
      );
    // The replan recorded the 20 s warnings it dropped; the revoked token's workflow was cancelled before anything else.
    expect(await log(a)).toEqual(['1:20s:skipped', '1:30s:sent', '1:expired:sent', '2:20s:skipped', '3:30s:sent', '3:expired:sent']);
    expect(await log(b)).toEqual(['1:20s:sent', '1:expired:sent', '2:20s:sent', '2:expired:sent', '3:20s:sent', '3:expired:sent']);
  }, 150_000);

  test("a workflow of another instance on this instance's queue is refused by its activities, which read nothing", async () => {
    const a = await database();
    const config = await configOf(a);
    const user = await insertUser(a.pool, { login: 'pat', email: 'pat@example.com', verified: true });
    await a.pool.query(`INSERT INTO api_tokens (user_id, token, name, expired_at) VALUES ($1, sha256('x'::bytea), 'pat-1', now() + interval '1 day')`, [user.id]);
    const now = Date.now();
    // As if another instance's worker config pointed at this queue: its input names its own instance.
    const input: TokenExpiryInput = {
      instance: 'elsewhere',
      tokenId: '1',
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + 2 * SECOND).toISOString(),
      reminders: [],
      expiredNotice: true,
    };
    const status = await withWorker(a.pool, config, () =>
      client.workflow.execute('tokenExpiryWorkflow', {
        taskQueue: taskQueueOf(config),
        workflowId: tokenExpiryWorkflowId('1', 'elsewhere'),
        args: [input],
      }),
    );
    expect(status.reminders).toEqual([
      expect.objectContaining({ key: 'expired', outcome: 'failed', reason: expect.stringMatching(new RegExp(`^${WRONG_INSTANCE}: sendReminderFirstTry for instance "elsewhere" reached a worker of instance "${config.TOKEN_EXPIRY_INSTANCE}"`)) }),
    ]);
    expect(postmark.sent).toEqual([]);
    expect((await a.pool.query('SELECT 1 FROM expiry_notifications')).rowCount).toBe(0);
  }, 60_000);

  test("a database copied from another's carries its instance: a start that finds the other's token under its id says so instead of taking it", async () => {
    const [a, copy] = await Promise.all([database('copied'), database('copied')]);
    const [aConfig, copyConfig] = await Promise.all([configOf(a), configOf(copy)]);
    const owner = async (db: ScratchDatabase, login: string) => insertUser(db.pool, { login, email: `${login}@example.com`, verified: true });
    const request = (days: number) => ({ name: 'ci', expiresAt: new Date(Date.now() + days * 86_400_000), crateScopes: null, endpointScopes: null });
    const first = await createTokenService({ registry: registryAdapter(aConfig), db: a.pool, temporal: async () => client, config: aConfig }).create(await owner(a, 'pat'), request(90));
    const second = await createTokenService({ registry: registryAdapter(copyConfig), db: copy.pool, temporal: async () => client, config: copyConfig }).create(await owner(copy, 'sam'), request(20));
    expect(first.workflowId).toBe('token-expiry-copied-1');

    expect(second.workflowError).toMatch(/running for another token.*same instance id/);
    // The other database's workflow is left as it was, with its own token's creation time; the second token
    // stays unmarked, for the sweep to try again (and report again) once it is fixed.
    const description = await client.workflow.getHandle(first.workflowId as string).describe();
    expect(description.status.name).toBe('RUNNING');
    expect(description.memo).toEqual({ tokenCreatedAt: first.token.createdAt.toISOString() });
    expect(second.token.expiryWorkflowStartedAt).toBeNull();
    await client.workflow.getHandle(first.workflowId as string).terminate('test over');
  });

  test('TOKEN_EXPIRY_INSTANCE names the instance at the first migrate, and must match it afterwards', async () => {
    const named = await database('staging');
    expect(named.instance).toBe('staging');
    expect((await configOf(named)).TOKEN_EXPIRY_INSTANCE).toBe('staging');
    await expect(configOf(named, { TOKEN_EXPIRY_INSTANCE: 'prod' })).rejects.toThrow(
      'TOKEN_EXPIRY_INSTANCE: is "prod", but this database\'s instance is "staging" (made by its first migrate, and in every workflow id since): unset it, or set it to that',
    );
    const random = await database();
    expect(random.instance).toMatch(/^[0-9a-f]{8}$/);
  });
}
