// A token's expiry changes (a registry that lets users edit it): the replan update with the new expiry
// re-plans its workflow, on the real activities, database and postmark client. Without it the send
// activity's expiry check is the safety net: the reminder is skipped as expiry-changed.
import { listNotifications } from '../src/db/notifications';
import { replanUpdate } from '../src/tokenExpiry/contract';
import { TestSystem } from './helpers/system';

const DAY = 86_400_000;
const system = TestSystem.use();

test('a changed expiry sent as a replan re-plans the reminders; without it they are skipped as expiry-changed', async () => {
  // Started at once: the time-skipping server does not model a start delay as the dev server does.
  const config = system.config({ EXPIRY_START_DELAY: 'false', EXPIRY_DIGEST_WINDOW: '0' });
  const tokens = system.tokens(config);
  const user = await system.newUser();
  const replanned = await system.createToken(tokens, user, 10 * DAY);
  const unannounced = await system.createToken(tokens, user, 10 * DAY);
  const later = (expiry: Date | null) => new Date(expiry!.getTime() + 30 * DAY);
  const newExpiry = later(replanned.token.expiredAt);

  await system.withWorker(config, async () => {
    const [first, second] = [replanned, unannounced].map((t) => system.env.client.workflow.getHandle(t.workflowId as string));
    await system.env.sleep('1 hour');
    // The registry extends both tokens by 30 days; only the first workflow is told.
    for (const token of [replanned, unannounced]) {
      await system.db.query('UPDATE api_tokens SET expired_at = $2 WHERE id = $1', [token.token.id, later(token.token.expiredAt)]);
    }
    const change = await first!.executeUpdate(replanUpdate, {
      args: [{ reminders: config.EXPIRY_REMINDERS, expiredNotice: config.EXPIRED_NOTICE, expiresAt: newExpiry.toISOString() }],
    });
    expect(change).toEqual({ added: [], dropped: [], moved: ['7d', '1d', 'expired'], expiresAt: newExpiry.toISOString() });
    await Promise.all([first!.result(), second!.result()]);
  });

  const rows = async (id: string) => (await listNotifications(system.db, id)).map((r) => [r.reminder, r.status, r.reason, r.dueAt.getTime()]);
  const sent = await rows(replanned.token.id);
  expect(sent.map((r) => r.slice(0, 3))).toEqual([
    ['7d', 'sent', null],
    ['1d', 'sent', null],
    ['expired', 'sent', null],
  ]);
  // Each at the new expiry's due time (a warning up to its spread early).
  expect(sent[2]![3]).toBe(newExpiry.getTime());
  expect(sent[1]![3]).toBeLessThanOrEqual(newExpiry.getTime() - DAY);
  expect(sent[1]![3]).toBeGreaterThan(newExpiry.getTime() - DAY - 15 * 60_000);
  expect((await rows(unannounced.token.id)).map((r) => r.slice(0, 3))).toEqual([
    ['7d', 'skipped', 'expiry-changed'],
    ['1d', 'skipped', 'expiry-changed'],
    ['expired', 'skipped', 'expiry-changed'],
  ]);
  expect(system.postmark.sent.filter((m) => m.Metadata.token_id === replanned.token.id)).toHaveLength(3);
  expect(system.postmark.sent.filter((m) => m.Metadata.token_id === unannounced.token.id)).toEqual([]);
});
