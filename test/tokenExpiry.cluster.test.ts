/**
 * A token's life on the production-shaped cluster (docker-compose.yml's Temporal, started by
 * scripts/devtools/cluster.ts: the real server on PostgreSQL, its schema and namespace steps, the dynamic
 * config; 4 history shards, to start quickly), with the worker as the built command: a kept token's
 * reminders and its expired notice reach the fake Postmark once each, and a revoked token's run is Canceled.
 * The other end-to-end tests run on the dev server; this one keeps the production settings exercised.
 */
import { tokenExpiryWorkflowId } from '../src/tokenExpiry/contract';
import { TEST_INSTANCE } from './helpers/database';
import { FaultStack, underTest } from './helpers/faultStack';
import { readyForOurWorkflows } from './helpers/engine';

const SECOND = 1_000;
const SHARDS = 4;
const stack = FaultStack.use('cluster', { reminders: '20s,10s', engine: 'cluster', shards: SHARDS });

test('on the cluster: a kept token gets both reminders and the expired notice once each; a revoked token reads Canceled', async () => {
  // The real server, not the dev server: PostgreSQL for both stores, the shard count asked for.
  const info = await stack.client.connection.workflowService.getClusterInfo({});
  expect({ persistence: info.persistenceStore, visibility: info.visibilityStore, shards: info.historyShardCount }).toEqual({
    persistence: 'postgres12',
    visibility: expect.stringContaining('postgres12'),
    shards: SHARDS,
  });

  await stack.startWorker();
  await readyForOurWorkflows(stack.client);
  const alice = await stack.addUser();
  const kept = await stack.createToken(alice, 30 * SECOND);
  const revoked = await stack.createToken(alice, 30 * SECOND);
  await stack.waitUntilWaiting([kept.id, revoked.id]);
  await stack.tokens.revoke(revoked.id);

  await stack.waitUntilClosed([kept.id, revoked.id], 120_000);
  const revokedRun = await stack.client.workflow.getHandle(tokenExpiryWorkflowId(revoked.id, TEST_INSTANCE)).describe();
  expect(revokedRun.status.name).toBe('CANCELLED');
  const keptRun = await stack.client.workflow.getHandle(tokenExpiryWorkflowId(kept.id, TEST_INSTANCE)).describe();
  expect(keptRun.status.name).toBe('COMPLETED');
  const sentFor = (id: string) => stack.postmark.sent.filter((m) => m.Metadata.dedupe_key?.startsWith(`token-expiry:${id}:`));
  expect(sentFor(kept.id).map((m) => m.Metadata.dedupe_key?.split(':')[2])).toEqual(['20s', '10s', 'expired']);
  expect(sentFor(revoked.id)).toEqual([]);

  await stack.finish([underTest(kept, 'delivered'), underTest(revoked, 'revoked')]);
}, 240_000);
