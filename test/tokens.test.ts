import { tokenExpiryWorkflowId } from '../src/tokenExpiry/contract';
import { builtinRegistry } from '../src/registry/builtin';
import { startTokenExpiryWorkflow } from '../src/tokenExpiry/client';
import { createTokenService } from '../src/tokens/service';
import { TestSystem } from './helpers/system';
import { TEST_INSTANCE } from './helpers/database';
import { registryAdapter } from '../src/registry';

const DAY = 86_400_000;
const system = TestSystem.use();
let users = 0;

async function newToken(lifetimeMs = 30 * DAY) {
  const config = system.config();
  const tokens = system.tokens(config);
  const login = `owner${++users}`;
  const user = await system.addUser(login, `${login}@example.com`);
  const created = await tokens.create(user, {
    name: 'publish from CI',
    expiresAt: new Date(Date.now() + lifetimeMs),
    crateScopes: ['serde', 'serde_*'],
    endpointScopes: ['publish-update', 'yank'],
  });
  return { config, tokens, created };
}

async function executionStatus(tokenId: string): Promise<string> {
  const description = await system.env.client.workflow.getHandle(tokenExpiryWorkflowId(tokenId, TEST_INSTANCE)).describe();
  return description.status.name;
}

test('duplicate ("Regenerate"): same name and scopes, a fresh expiry of the same lifetime, the old token kept', async () => {
  const { tokens, created } = await newToken(90 * DAY);

  const copy = await tokens.duplicate(created.token.id);

  expect(copy.from).toBe(created.token.id);
  expect(copy.token.id).not.toBe(created.token.id);
  expect(copy.secret).not.toBe(created.secret);
  expect(copy.token).toMatchObject({
    name: 'publish from CI',
    crateScopes: ['serde', 'serde_*'],
    endpointScopes: ['publish-update', 'yank'],
    revoked: false,
  });
  const lifetime = copy.token.expiredAt!.getTime() - copy.token.createdAt.getTime();
  expect(Math.abs(lifetime - 90 * DAY)).toBeLessThan(60_000);
  expect((await builtinRegistry.findToken(system.db, created.token.id))?.revoked).toBe(false);
  expect(await executionStatus(created.token.id)).toBe('RUNNING');
  expect(await executionStatus(copy.token.id)).toBe('RUNNING');
});

test('rotate: the new token gets its workflow, the old one is revoked and its workflow cancelled', async () => {
  const { config, tokens, created } = await newToken();

  const rotated = await tokens.rotate(created.token.id);

  expect(rotated.workflowId).toBe(tokenExpiryWorkflowId(rotated.token.id, TEST_INSTANCE));
  expect(rotated.revoked.workflowError).toBeUndefined();
  expect((await builtinRegistry.findToken(system.db, created.token.id))?.revoked).toBe(true);
  // The cancellation takes effect when a worker runs the workflow.
  const oldRun = system.env.client.workflow.getHandle(created.workflowId as string);
  await system.withWorker(config, () => oldRun.result().catch(() => undefined));
  expect(await executionStatus(created.token.id)).toBe('CANCELLED');
  expect(await executionStatus(rotated.token.id)).toBe('RUNNING');
  await expect(tokens.rotate(created.token.id)).rejects.toThrow(/is revoked/);
});

test('starting a workflow twice is harmless: the running one is kept', async () => {
  const { config, created } = await newToken();
  const handle = system.env.client.workflow.getHandle(created.workflowId as string);
  const { runId } = await handle.describe();

  await startTokenExpiryWorkflow(system.env.client, created.token, config);

  expect((await handle.describe()).runId).toBe(runId);
});

test('Temporal unreachable: the token is kept, marked for the sweep, and the caller is told', async () => {
  const config = system.config();
  const login = `owner${++users}`;
  const user = await system.addUser(login, `${login}@example.com`);
  const tokens = createTokenService({
    db: system.db,
    registry: registryAdapter(config),
    temporal: async () => {
      throw new Error('connection refused');
    },
    config,
  });

  const created = await tokens.create(user, {
    name: 'ci',
    expiresAt: new Date(Date.now() + 30 * DAY),
    crateScopes: null,
    endpointScopes: null,
  });

  expect(created.workflowError).toMatch(/connection refused.*sweep will start them/);
  const stored = await builtinRegistry.findToken(system.db, created.token.id);
  expect(stored).toMatchObject({ revoked: false, expiryWorkflowStartedAt: null });
});
