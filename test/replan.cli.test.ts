// `token-expiry replan` as an operator runs it (the built command), against a real dev server (its
// visibility query, start delays, the update ending a delay) and a worker with the real activities.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Client } from '@temporalio/client';
import { listNotifications } from '../src/db/notifications';
import type { UserRow } from '../src/registry/adapter';
import { insertUser } from '../src/registry/builtin';
import { statusQuery, tokenExpiryWorkflowId } from '../src/tokenExpiry/contract';
import { waitingWorkflowsQuery } from '../src/tokenExpiry/replan';
import { taskQueueOf } from '../src/config';
import { createTokenService } from '../src/tokens/service';
import { CLI_PATH, childEnv, requireBuiltCli } from './helpers/cliProcess';
import { startDevStack, type DevStack } from './helpers/devStack';
import { eventually } from './helpers/poll';
import { TEST_INSTANCE } from './helpers/database';
import { registryAdapter } from '../src/registry';

const HOUR = 3_600_000;
const execFileAsync = promisify(execFile);

let stack: DevStack;
let client: Client;
let user: UserRow;
const taskQueue = `replan-cli-${process.pid}`;

beforeAll(async () => {
  requireBuiltCli();
  stack = await startDevStack(taskQueue);
  client = stack.client;
  user = await insertUser(stack.database.pool, { login: 'replan', email: 'replan@example.com', verified: true });
}, 120_000);

afterAll(() => stack?.stop(), 60_000);

async function createTokens(count: number, env: Record<string, string>): Promise<string[]> {
  const tokens = createTokenService({ registry: registryAdapter(stack.settings(env)), db: stack.database.pool, temporal: async () => client, config: stack.settings(env) });
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const created = await tokens.create(user, { name: `ci-${i}`, expiresAt: new Date(Date.now() + 6 * HOUR), crateScopes: null, endpointScopes: null });
    ids.push(created.token.id);
  }
  return ids;
}

async function replan(env: Record<string, string>) {
  const { stdout, stderr } = await execFileAsync(process.execPath, [CLI_PATH, 'replan', '--concurrency', '4'], {
    env: childEnv({ DATABASE_URL: stack.database.url, TEMPORAL_ADDRESS: stack.server.address, TEMPORAL_TASK_QUEUE: taskQueue, ...env }),
  });
  return { summary: JSON.parse(stdout), stderr };
}

const historyLength = async (tokenId: string) => (await client.workflow.getHandle(tokenExpiryWorkflowId(tokenId, TEST_INSTANCE)).fetchHistory()).events?.length;
const plan = async (tokenId: string) =>
  (await client.workflow.getHandle(tokenExpiryWorkflowId(tokenId, TEST_INSTANCE)).query(statusQuery)).reminders.map((r) => [r.key, r.outcome ?? null, r.reason ?? null]);

test('replan adds a warning to every waiting run (delayed or not), a second run changes nothing, and a drop is recorded', async () => {
  // Three in their start delay, two started at once and asleep on a timer: all on the 1h plan.
  const delayed = await createTokens(3, { EXPIRY_REMINDERS: '1h' });
  const asleep = await createTokens(2, { EXPIRY_REMINDERS: '1h', EXPIRY_START_DELAY: 'false' });
  const all = [...delayed, ...asleep];
  await eventually('all five listed as waiting', async () => (await client.workflow.count(waitingWorkflowsQuery(taskQueueOf(stack.config)))).count === 5);
  expect(await historyLength(delayed[0]!)).toBe(1);

  const first = await replan({ EXPIRY_REMINDERS: '2h,1h' });
  expect(first.summary).toMatchObject({
    matched: 5, replanned: 5, delayed: 3, unchanged: 0, gone: 0, failed: 0, added: { '2h': 5 }, dropped: {}, failures: [],
  });
  expect(first.stderr).toContain('replan: 5/5: 5 replanned, 0 unchanged, 0 failed');
  for (const id of all) expect(await plan(id)).toEqual([['2h', null, null], ['1h', null, null], ['expired', null, null]]);

  // A token made meanwhile under the new plan is unchanged and stays in its start delay (one event).
  const [fresh] = await createTokens(1, { EXPIRY_REMINDERS: '2h,1h' });
  await eventually('six listed', async () => (await client.workflow.count(waitingWorkflowsQuery(taskQueueOf(stack.config)))).count === 6);
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
    const rows = await listNotifications(stack.database.pool, id);
    expect(rows.map((r) => [r.reminder, r.status, r.reason]).sort()).toEqual([
      ['1h', 'skipped', 'dropped-from-plan'],
      ['expired', 'skipped', 'dropped-from-plan'],
    ]);
  }
  expect(stack.postmark.sent).toEqual([]);
}, 180_000);
