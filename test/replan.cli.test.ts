// `token-expiry replan` as an operator runs it (the built command), against a real dev server (its
// visibility query, start delays, the update ending a delay) and a worker with the real activities.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { loadConfig, type Config } from '../src/config';
import { listNotifications } from '../src/db/notifications';
import { insertUser, type UserRow } from '../src/db/users';
import { createPostmarkMailer } from '../src/email/postmarkMailer';
import { statusQuery, tokenExpiryWorkflowId } from '../src/tokenExpiry/contract';
import { waitingWorkflowsQuery } from '../src/tokenExpiry/replan';
import { createTokenService } from '../src/tokens/service';
import { workerActivities, workerTuning } from '../src/worker';
import { startDevServer, type DevServer } from '../scripts/devtools/devServer';
import { startFakePostmark, type FakePostmark } from '../scripts/devtools/fakePostmark';
import { CLI_PATH, childEnv, requireBuiltCli } from './helpers/cliProcess';
import { createTestDatabase, type TestDatabase } from './helpers/database';
import { eventually } from './helpers/poll';
import { workflowBundle } from './helpers/temporal';

const HOUR = 3_600_000;
const execFileAsync = promisify(execFile);

let server: DevServer;
let database: TestDatabase;
let postmark: FakePostmark;
let client: Client;
let workerConnection: NativeConnection;
let worker: Worker;
let running: Promise<void>;
let user: UserRow;
const taskQueue = `replan-cli-${process.pid}`;

/** Config as the registry had it when the tokens were made: `EXPIRY_REMINDERS` in hours, so nothing falls due here. */
function settings(env: Record<string, string>): Config {
  return loadConfig({
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_TASK_QUEUE: taskQueue,
    POSTMARK_SERVER_TOKEN: postmark.serverToken,
    POSTMARK_API_URL: postmark.url,
    ...env,
  });
}

beforeAll(async () => {
  requireBuiltCli();
  [server, database, postmark] = await Promise.all([startDevServer({ ui: false }), createTestDatabase(), startFakePostmark()]);
  client = new Client({ connection: await Connection.connect({ address: server.address }) });
  workerConnection = await NativeConnection.connect({ address: server.address });
  const config = settings({});
  const mailer = createPostmarkMailer({ serverToken: postmark.serverToken, apiUrl: postmark.url, timeoutSeconds: 5 });
  worker = await Worker.create({
    connection: workerConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: workerActivities({ db: database.pool, mailer, client, clock: { now: async () => new Date() }, config }),
    ...workerTuning(config),
  });
  running = worker.run();
  user = await insertUser(database.pool, { login: 'replan', email: 'replan@example.com', verified: true });
}, 120_000);

afterAll(async () => {
  worker?.shutdown();
  await running?.catch(() => undefined);
  await Promise.allSettled([workerConnection?.close(), client?.connection.close()]);
  await Promise.allSettled([server?.stop(), postmark?.close(), database?.drop()]);
}, 60_000);

async function createTokens(count: number, env: Record<string, string>): Promise<string[]> {
  const tokens = createTokenService({ db: database.pool, temporal: async () => client, config: settings(env) });
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const created = await tokens.create(user, { name: `ci-${i}`, expiresAt: new Date(Date.now() + 6 * HOUR), crateScopes: null, endpointScopes: null });
    ids.push(created.token.id);
  }
  return ids;
}

async function replan(env: Record<string, string>) {
  const { stdout, stderr } = await execFileAsync(process.execPath, [CLI_PATH, 'replan', '--concurrency', '4'], {
    env: childEnv({ DATABASE_URL: database.url, TEMPORAL_ADDRESS: server.address, TEMPORAL_TASK_QUEUE: taskQueue, ...env }),
  });
  return { summary: JSON.parse(stdout), stderr };
}

const historyLength = async (tokenId: string) => (await client.workflow.getHandle(tokenExpiryWorkflowId(tokenId)).fetchHistory()).events?.length;
const plan = async (tokenId: string) =>
  (await client.workflow.getHandle(tokenExpiryWorkflowId(tokenId)).query(statusQuery)).reminders.map((r) => [r.key, r.outcome ?? null, r.reason ?? null]);

test('replan adds a warning to every waiting run (delayed or not), a second run changes nothing, and a drop is recorded', async () => {
  // Three in their start delay, two started at once and asleep on a timer: all on the 1h plan.
  const delayed = await createTokens(3, { EXPIRY_REMINDERS: '1h' });
  const asleep = await createTokens(2, { EXPIRY_REMINDERS: '1h', EXPIRY_START_DELAY: 'false' });
  const all = [...delayed, ...asleep];
  await eventually('all five listed as waiting', async () => (await client.workflow.count(waitingWorkflowsQuery(taskQueue))).count === 5);
  expect(await historyLength(delayed[0]!)).toBe(1);

  const first = await replan({ EXPIRY_REMINDERS: '2h,1h' });
  expect(first.summary).toMatchObject({
    matched: 5, replanned: 5, delayed: 3, unchanged: 0, predatesReplan: 0, gone: 0, failed: 0, added: { '2h': 5 }, dropped: {}, failures: [],
  });
  expect(first.stderr).toContain('replan: 5/5: 5 replanned, 0 unchanged, 0 failed');
  for (const id of all) expect(await plan(id)).toEqual([['2h', null, null], ['1h', null, null], ['expired', null, null]]);

  // A token made meanwhile under the new plan is unchanged and stays in its start delay (one event).
  const [fresh] = await createTokens(1, { EXPIRY_REMINDERS: '2h,1h' });
  await eventually('six listed', async () => (await client.workflow.count(waitingWorkflowsQuery(taskQueue))).count === 6);
  const lengths = await Promise.all(all.map(historyLength));
  const second = await replan({ EXPIRY_REMINDERS: '2h,1h' });
  expect(second.summary).toMatchObject({ matched: 6, replanned: 0, delayed: 0, unchanged: 6, failed: 0 });
  expect(await historyLength(fresh!)).toBe(1);
  // Refused updates leave the histories as they were.
  expect(await Promise.all(all.map(historyLength))).toEqual(lengths);

  // Dropping the 1h warning and the expired notice: recorded in the notification log, nothing sent.
  const third = await replan({ EXPIRY_REMINDERS: '2h', EXPIRED_NOTICE: 'false' });
  expect(third.summary).toMatchObject({ matched: 6, replanned: 6, delayed: 1, failed: 0, dropped: { '1h': 6, expired: 6 } });
  for (const id of [...all, fresh!]) {
    expect(await plan(id)).toEqual([['2h', null, null], ['1h', 'skipped', 'dropped-from-plan'], ['expired', 'skipped', 'dropped-from-plan']]);
    const rows = await listNotifications(database.pool, id);
    expect(rows.map((r) => [r.reminder, r.status, r.reason]).sort()).toEqual([
      ['1h', 'skipped', 'dropped-from-plan'],
      ['expired', 'skipped', 'dropped-from-plan'],
    ]);
  }
  expect(postmark.sent).toEqual([]);
}, 180_000);
