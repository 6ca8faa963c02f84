import type { TokenExpiryStatus } from '../src/tokenExpiry/contract';
import { listNotifications } from '../src/db/notifications';
import type { CreatedToken } from '../src/tokens/service';
import { TestSystem } from './helpers/system';

const DAY = 86_400_000;
const system = TestSystem.use();
let users = 0;

/** Runs one token per address through one worker; all in one go, since the server's clock moves on. */
async function runTokens(env: Record<string, string>, emails: (string | undefined)[] = [undefined]) {
  const config = system.config({ EXPIRY_REMINDERS: '1d', EXPIRED_NOTICE: 'false', ...env });
  const tokens = system.tokens(config);
  const created: CreatedToken[] = [];
  for (const email of emails) {
    const login = `staging${++users}`;
    const user = await system.addUser(login, email ?? `${login}@example.com`);
    created.push(
      await tokens.create(user, {
        name: 'ci',
        expiresAt: new Date(Date.now() + 5 * DAY),
        crateScopes: null,
        endpointScopes: null,
      }),
    );
  }
  // One result at a time: concurrent awaits make the test server skip time without bound.
  const results: TokenExpiryStatus[] = await system.withWorker(config, async () => {
    const done = [];
    for (const c of created) done.push(await system.env.client.workflow.getHandle(c.workflowId as string).result());
    return done;
  });
  return Promise.all(
    created.map(async (c, i) => ({ result: results[i]!, rows: await listNotifications(system.db, c.token.id) })),
  );
}

async function runToken(env: Record<string, string>) {
  return (await runTokens(env))[0]!;
}

test('EXPIRY_EMAILS=dry-run renders the email, records it as suppressed, and calls nobody', async () => {
  const { result, rows } = await runToken({ EXPIRY_EMAILS: 'dry-run' });
  expect(system.postmark.requests).toHaveLength(0);
  expect(result.reminders[0]).toMatchObject({ outcome: 'suppressed', reason: 'dry-run' });
  expect(rows.map((r) => [r.status, r.reason])).toEqual([['suppressed', 'dry-run']]);
});

test('EXPIRY_EMAILS=off records the reminder as skipped', async () => {
  const { rows } = await runToken({ EXPIRY_EMAILS: 'off' });
  expect(system.postmark.requests).toHaveLength(0);
  expect(rows.map((r) => [r.status, r.reason])).toEqual([['skipped', 'emails-off']]);
});

test('the staging allowlist lets listed addresses and @domains through and holds back the rest', async () => {
  const allowlist = { EXPIRY_EMAIL_ALLOWLIST: 'ops@registry.example, @staff.example' };

  const [listed, byDomain, outsider] = await runTokens(allowlist, [
    'Ops@Registry.example',
    'dev@staff.example',
    'someone@elsewhere.example',
  ]);

  expect(listed!.rows[0]?.status).toBe('sent');
  expect(byDomain!.rows[0]?.status).toBe('sent');
  expect(outsider!.rows.map((r) => [r.status, r.reason])).toEqual([['suppressed', 'not-on-allowlist']]);
  expect(system.postmark.sent.map((m) => m.To).sort()).toEqual(['Ops@Registry.example', 'dev@staff.example']);
});
