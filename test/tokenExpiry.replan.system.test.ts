// A token's expiry changes (a registry that lets users edit it): the replan update with the new expiry
// re-plans its workflow, on the real activities, database and postmark client. Without it the send
// activity's expiry check is the safety net (test/sendReminder.activity.test.ts: skipped as expiry-changed).
import { listNotifications } from '../src/db/notifications';
import { replanUpdate, type ReminderSpec, type ReplanInput } from '../src/tokenExpiry/contract';
import { TestSystem } from './helpers/system';

const DAY = 86_400_000;
const system = TestSystem.use();

test('a changed expiry sent as a replan re-plans the reminders, and they are sent for the new expiry', async () => {
  // Started at once: the time-skipping server does not model a start delay as the dev server does.
  const config = system.config({ EXPIRY_START_DELAY: 'false', EXPIRY_DIGEST_WINDOW: '0' });
  const tokens = system.tokens(config);
  const user = await system.newUser();
  const created = await system.createToken(tokens, user, 10 * DAY);
  const newExpiry = new Date(created.token.expiredAt!.getTime() + 30 * DAY);

  await system.withWorker(config, async () => {
    const handle = system.env.client.workflow.getHandle(created.workflowId as string);
    await system.env.sleep('1 hour');
    // The registry extends the token by 30 days, then tells its workflow.
    await system.db.query('UPDATE api_tokens SET expired_at = $2 WHERE id = $1', [created.token.id, newExpiry]);
    const change = await handle.executeUpdate(replanUpdate, {
      args: [{ reminders: config.EXPIRY_REMINDERS, expiredNotice: config.EXPIRED_NOTICE, expiresAt: newExpiry.toISOString() }],
    });
    expect(change).toEqual({ added: [], dropped: [], moved: ['7d', '1d', 'expired'], expiresAt: newExpiry.toISOString() });
    await handle.result();
  });

  const rows = (await listNotifications(system.db, created.token.id)).map((r) => [r.reminder, r.status, r.reason, r.dueAt.getTime()]);
  expect(rows.map((r) => r.slice(0, 3))).toEqual([
    ['7d', 'sent', null],
    ['1d', 'sent', null],
    ['expired', 'sent', null],
  ]);
  // Each at the new expiry's due time (a warning up to its spread early); without the update all three would be expiry-changed.
  expect(rows[2]![3]).toBe(newExpiry.getTime());
  expect(rows[1]![3]).toBeLessThanOrEqual(newExpiry.getTime() - DAY);
  expect(rows[1]![3]).toBeGreaterThan(newExpiry.getTime() - DAY - 15 * 60_000);
  expect(system.postmark.sent.filter((m) => m.Metadata.token_id === created.token.id)).toHaveLength(3);
});

test('a warning turned off and then on again (unsubscribe, then the preferences) comes back, and is sent once at its due time', async () => {
  const config = system.config({ EXPIRY_START_DELAY: 'false', EXPIRY_DIGEST_WINDOW: '0' });
  const tokens = system.tokens(config);
  const user = await system.newUser();
  const created = await system.createToken(tokens, user, 10 * DAY);
  const plan = (reminders: ReminderSpec[]): { args: [ReplanInput] } => ({ args: [{ reminders, expiredNotice: config.EXPIRED_NOTICE }] });

  const changes = await system.withWorker(config, async () => {
    const handle = system.env.client.workflow.getHandle(created.workflowId as string);
    await system.env.sleep('1 hour');
    const off = await handle.executeUpdate(replanUpdate, plan([]));
    // Recorded as dropped before it comes back: the row the send must claim afresh.
    const dropped = (await listNotifications(system.db, created.token.id)).map((r) => [r.reminder, r.status, r.reason]);
    const on = await handle.executeUpdate(replanUpdate, plan(config.EXPIRY_REMINDERS));
    await handle.result();
    return { off, dropped, on };
  });

  expect(changes.off).toMatchObject({ added: [], dropped: ['7d', '1d'] });
  expect(changes.dropped).toEqual([
    ['7d', 'skipped', 'dropped-from-plan'],
    ['1d', 'skipped', 'dropped-from-plan'],
  ]);
  expect(changes.on).toMatchObject({ added: ['7d', '1d'], dropped: [] });
  const rows = await listNotifications(system.db, created.token.id);
  expect(rows.map((r) => [r.reminder, r.status, r.reason])).toEqual([
    ['7d', 'sent', null],
    ['1d', 'sent', null],
    ['expired', 'sent', null],
  ]);
  const mail = system.postmark.sent.filter((m) => m.Metadata.token_id === created.token.id);
  expect(mail.map((m) => m.Metadata.reminder)).toEqual(['7d', '1d', 'expired']);
});
