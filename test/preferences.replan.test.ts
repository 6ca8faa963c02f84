/**
 * A change of a user's preferences re-plans that user's waiting workflows at once (the replan update, aimed at their
 * runs), and only theirs; `tokens status` shows the new due times; `token-expiry replan` sends each run its owner's
 * plan, so a user's choice survives an operator's replan.
 */
import { describeTokenExpiryWorkflow } from '../src/tokenExpiry/client';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { replanUpdate } from '../src/tokenExpiry/contract';
import { ownersPlans } from '../src/tokenExpiry/replan';
import { TEST_INSTANCE } from './helpers/database';
import { TestSystem } from './helpers/system';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const system = TestSystem.use();

test('a change re-plans the user\'s waiting runs, not another user\'s; a change that moves nothing leaves them as they are', async () => {
  // Started at once: the time-skipping server does not model a start delay.
  const config = system.config({ EXPIRY_START_DELAY: 'false' });
  const tokens = system.tokens(config);
  const preferences = system.preferences(config);
  const [alice, bob] = [await system.newUser(), await system.newUser()];
  const now = await system.env.currentTimeMs();
  // Saturdays 12:00 UTC, two and three weeks ahead: every warning of theirs falls on a weekend or at noon.
  let saturday = Math.floor((now + 14 * DAY) / DAY) * DAY + 12 * HOUR;
  while (new Date(saturday).getUTCDay() !== 6) saturday += DAY;
  const create = (user: typeof alice, at: number) => tokens.create(user, { name: 'ci', expiresAt: new Date(at), crateScopes: null, endpointScopes: null });
  const mine = [await create(alice, saturday), await create(alice, saturday + 7 * DAY)];
  const theirs = await create(bob, saturday);

  await system.withWorker(config, async () => {
    const status = async (id: string) => (await describeTokenExpiryWorkflow(system.env.client, id, TEST_INSTANCE)).status!;
    await system.env.sleep('1 minute');
    const changed = await preferences.update(alice, { reminders: ['3d', '12h'], timeZone: 'UTC', wakingHours: '09:00-17:00', workingDays: ['mon', 'tue', 'wed', 'thu', 'fri'] });
    expect(changed.replan).toMatchObject({ matched: 2, replanned: 2, unchanged: 0, failed: 0, gone: 0, added: { '3d': 2, '12h': 2 }, dropped: { '7d': 2, '1d': 2 } });

    const after = await status(mine[0]!.token.id);
    const pending = Object.fromEntries(after.reminders.filter((r) => !r.outcome).map((r) => [r.key, Date.parse(r.dueAt)]));
    // Saturday 12:00 expiry: 3d (Wednesday noon, less its spread) stays; 12h (Saturday 00:00) moves to Friday 16:59;
    // the notice to Monday 09:00. The dropped ones are recorded, not sent.
    expect(Object.keys(pending)).toEqual(['3d', '12h', 'expired']);
    expect(pending['3d']).toBeLessThanOrEqual(saturday - 3 * DAY);
    expect(pending['3d']).toBeGreaterThan(saturday - 3 * DAY - 15 * 60_000);
    expect(pending['12h']).toBe(saturday - 19 * HOUR - 60_000);
    expect(pending.expired).toBe(saturday + 2 * DAY - 3 * HOUR);
    expect(after.reminders.filter((r) => r.outcome).map((r) => [r.key, r.reason])).toEqual([
      ['7d', 'dropped-from-plan'],
      ['1d', 'dropped-from-plan'],
    ]);
    expect((await status(theirs.token.id)).reminders.map((r) => r.key)).toEqual(['7d', '1d', 'expired']);

    // Only the notice: the warnings stay where they are.
    const same = await preferences.update(alice, { expiredNotice: true });
    expect(same.replan).toMatchObject({ matched: 2, replanned: 0, unchanged: 2 });

    // The operator's replan (runReplan; the time-skipping server has no visibility listing) sends each run its owner's
    // plan: Alice's stay hers, Bob's is today's; both are the plans the runs have, refused as unchanged.
    const planFor = ownersPlans(system.db, config);
    for (const { token, workflowId } of [...mine, theirs]) {
      const plan = await planFor({ tokenId: token.id, expiresAt: token.expiredAt! });
      const handle = system.env.client.workflow.getHandle(workflowId!);
      const refused = await handle.executeUpdate(replanUpdate, { args: [plan] }).catch((err: WorkflowUpdateFailedError) => err.cause);
      expect(refused).toMatchObject({ type: 'PlanUnchanged' });
    }

    // Forgotten: the operator's plan at once. The lead times the first change dropped come back to the waiting runs;
    // the notice moves back to the expiry.
    const reset = await preferences.reset(alice);
    expect(reset.replan).toMatchObject({ matched: 2, replanned: 2, added: { '7d': 2, '1d': 2 }, dropped: { '3d': 2, '12h': 2 } });
    const back = await status(mine[1]!.token.id);
    expect(back.reminders.find((r) => r.key === 'expired')!.dueAt).toBe(new Date(saturday + 7 * DAY).toISOString());
    expect(back.reminders.filter((r) => !r.outcome).map((r) => r.key)).toEqual(['7d', '1d', 'expired']);
  });
});
