// Two databases, one Temporal namespace, the same token id in each (a staging beside production, or a
// database recreated under a running Temporal): neither token may be attached to the other's workflow.
import type { Pool } from 'pg';
import { createScratchDatabase, type ScratchDatabase } from '../scripts/devtools/scratchDatabase';
import { insertUser } from '../src/registry/builtin';
import { statusQuery, tokenExpiryWorkflowId } from '../src/tokenExpiry/contract';
import { createTokenService } from '../src/tokens/service';
import { adminDatabaseUrl } from './helpers/database';
import { eventually } from './helpers/poll';
import { TestSystem } from './helpers/system';

const DAY = 86_400_000;
const system = TestSystem.use();
let databases: ScratchDatabase[] = [];
beforeEach(async () => {
  databases = await Promise.all(['a', 'b'].map((n) => createScratchDatabase(adminDatabaseUrl(), `token_expiry_test_collide_${n}`, 4)));
});
afterEach(() => Promise.all(databases.map((d) => d.drop())));

async function tokenIn(db: Pool, config: ReturnType<typeof system.config>, who: string, expiresInDays: number) {
  const user = await insertUser(db, { login: who, email: `${who}@example.com`, verified: true });
  const tokens = createTokenService({ db, temporal: async () => system.env.client, config });
  return tokens.create(user, { name: `${who}'s token`, expiresAt: new Date(Date.now() + expiresInDays * DAY), crateScopes: null, endpointScopes: null });
}

test('with an instance each, the same token id in two databases gets two workflows, each its own reminders', async () => {
  const [a, b] = databases as [ScratchDatabase, ScratchDatabase];
  // Started at once (no start delay), so that both can answer a query before the test skips time.
  const prod = system.config({ TOKEN_EXPIRY_INSTANCE: 'prod', EXPIRY_START_DELAY: 'false' });
  const staging = system.config({ TOKEN_EXPIRY_INSTANCE: 'staging', EXPIRY_START_DELAY: 'false' });
  const first = await tokenIn(a.pool, prod, 'pat', 90);
  const second = await tokenIn(b.pool, staging, 'sam', 20);
  expect([first.token.id, second.token.id]).toEqual(['1', '1']);
  expect([first.workflowId, second.workflowId]).toEqual(['token-expiry-prod-1', 'token-expiry-staging-1']);
  expect([first.workflowError, second.workflowError]).toEqual([undefined, undefined]);

  // Each database has its own worker (its activities read that database). Both workflows must have set their
  // timers (answered a query) before the test waits on them: the test server then skips time for both.
  const handles = [first, second].map((c) => system.env.client.workflow.getHandle(c.workflowId as string));
  await system.withWorker(
    prod,
    () =>
      system.withWorker(
        staging,
        async () => {
          for (const handle of handles) await eventually('the workflow answers', () => handle.query(statusQuery));
          // One at a time, the shorter-lived first (the test server's time skipping is per awaited result).
          for (const handle of [...handles].reverse()) await handle.result();
        },
        { db: b.pool },
      ),
    { db: a.pool },
  );

  const sent = (to: string) => system.postmark.sent.filter((m) => m.To === to).map((m) => m.Subject);
  for (const [who, created] of [['pat', first], ['sam', second]] as const) {
    expect(sent(`${who}@example.com`)).toEqual([
      `crates.io: your API token "${who}'s token" expires in 7 days`,
      `crates.io: your API token "${who}'s token" expires tomorrow`,
      `crates.io: your API token "${who}'s token" has expired`,
    ]);
    const { rows } = await (created === first ? a : b).pool.query('SELECT reminder, status FROM expiry_notifications ORDER BY id');
    expect(rows.map((r) => `${r.reminder}:${r.status}`)).toEqual(['7d:sent', '1d:sent', 'expired:sent']);
  }
  // Two full runs on a shared machine.
}, 120_000);

test('without one, a start that finds another token\'s workflow under its id says so instead of taking it', async () => {
  const [a, b] = databases as [ScratchDatabase, ScratchDatabase];
  const config = system.config();
  const first = await tokenIn(a.pool, config, 'pat', 90);
  const second = await tokenIn(b.pool, config, 'sam', 20);
  expect(first.workflowId).toBe(tokenExpiryWorkflowId('1'));

  expect(second.workflowError).toMatch(/running for another token.*TOKEN_EXPIRY_INSTANCE/);
  // The other database's workflow is left as it was, with its own token's expiry.
  const description = await system.env.client.workflow.getHandle(tokenExpiryWorkflowId('1')).describe();
  expect(description.status.name).toBe('RUNNING');
  expect(description.memo).toEqual({ tokenCreatedAt: first.token.createdAt.toISOString() });
  // And the second token stays unmarked, for the sweep to try again (and report again) once it is fixed.
  expect(second.token.expiryWorkflowStartedAt).toBeNull();
});
