// The replan update: a running workflow takes a new reminder plan or a new expiry. Its rules, with the
// activities replaced at the boundary (tokenExpiry.replan.system.test.ts runs it on the real ones).
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import {
  replanUpdate,
  tokenExpiryWorkflowId,
  type ReminderSpec,
  type ReplanInput,
  type TokenExpiryInput,
} from '../src/tokenExpiry/contract';
import type { tokenExpiryWorkflow } from '../workflows/tokenExpiry';
import { fakeActivities, tokenInput as tokenInputOf } from './helpers/fakeActivities';
import { WorkflowHarness } from './helpers/workflowHarness';
import { replaysAndSave } from './helpers/histories';
import { TEST_INSTANCE } from './helpers/database';

const DAY = 86_400_000;
const harness = WorkflowHarness.use();

const plan = (...days: number[]): ReminderSpec[] => days.map((d) => ({ key: `${d}d`, beforeExpiryMs: d * DAY }));

const tokenInput = (inMs: number, agoMs = 0) => tokenInputOf(harness, inMs, agoMs);

/** Starts the workflow, lets it reach its first wait, runs `fn`, then lets the run finish. */
async function run<T>(input: TokenExpiryInput, fn: (handle: WorkflowHandle<typeof tokenExpiryWorkflow>) => Promise<T>) {
  const fakes = fakeActivities(harness);
  const queue = harness.unique('replan');
  const { during, result, handle } = await harness.withWorker(queue, fakes.activities, async () => {
    const handle = await harness.env.client.workflow.start<typeof tokenExpiryWorkflow>('tokenExpiryWorkflow', {
      taskQueue: queue,
      workflowId: tokenExpiryWorkflowId(input.tokenId, TEST_INSTANCE),
      args: [input],
    });
    await harness.env.sleep('1 hour');
    const during = await fn(handle);
    return { during, result: await handle.result(), handle };
  });
  return { ...fakes, during, result, handle };
}

const refusalType = async (attempt: Promise<unknown>) => {
  const err = await attempt.catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
  const cause = (err as WorkflowUpdateFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return (cause as ApplicationFailure).type;
};

const updateEvents = async (handle: WorkflowHandle) =>
  ((await handle.fetchHistory()).events ?? []).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes).length;

test('a 30-day warning added to a waiting run is sent at its due time; the run says what changed', async () => {
  const input = await tokenInput(60 * DAY);
  const { during, sent, recorded, result } = await run(input, (handle) =>
    handle.executeUpdate(replanUpdate, { args: [{ reminders: plan(30, 7, 1), expiredNotice: true }] }),
  );

  expect(during).toEqual({ added: ['30d'], dropped: [], moved: [], expiresAt: input.expiresAt });
  const expiresAt = Date.parse(input.expiresAt);
  expect(sent.map((s) => s.reminder)).toEqual(['30d', '7d', '1d', 'expired']);
  const thirty = sent[0]!;
  expect(thirty.at).toBeGreaterThanOrEqual(expiresAt - 30 * DAY);
  expect(thirty.at - (expiresAt - 30 * DAY)).toBeLessThan(60_000);
  expect(recorded).toEqual([]);
  expect(result.reminders.map((r) => [r.key, r.outcome])).toEqual([
    ['30d', 'sent'],
    ['7d', 'sent'],
    ['1d', 'sent'],
    ['expired', 'sent'],
  ]);
});

test('reminders taken out of the plan are recorded as dropped-from-plan and never sent; the run replays', async () => {
  const input = await tokenInput(30 * DAY);
  const { during, sent, recorded, result, handle } = await run(input, (handle) =>
    handle.executeUpdate(replanUpdate, { args: [{ reminders: plan(14, 1), expiredNotice: false }] }),
  );

  expect(during).toEqual({ added: ['14d'], dropped: ['7d', 'expired'], moved: [], expiresAt: input.expiresAt });
  expect(recorded).toEqual([
    expect.objectContaining({ reminder: '7d', status: 'skipped', reason: 'dropped-from-plan' }),
    expect.objectContaining({ reminder: 'expired', status: 'skipped', reason: 'dropped-from-plan' }),
  ]);
  expect(sent.map((s) => s.reminder)).toEqual(['14d', '1d']);
  expect(result.reminders.map((r) => [r.key, r.outcome, r.reason ?? null])).toEqual([
    ['14d', 'sent', null],
    ['7d', 'skipped', 'dropped-from-plan'],
    ['1d', 'sent', null],
    ['expired', 'skipped', 'dropped-from-plan'],
  ]);

  await replaysAndSave(handle, 'replanned-added-and-dropped');
});

test('the same plan twice: the second is refused as PlanUnchanged and changes nothing', async () => {
  const input = await tokenInput(30 * DAY);
  const next: ReplanInput = { reminders: plan(14, 7, 1), expiredNotice: true };
  const { during, sent } = await run(input, async (handle) => {
    const first = await handle.executeUpdate(replanUpdate, { args: [next] });
    const second = await refusalType(handle.executeUpdate(replanUpdate, { args: [next] }));
    return { first, second, updates: await updateEvents(handle) };
  });

  // (The dev server drops a refused update's workflow task from the history too; the test server keeps it.)
  expect(during).toEqual({ first: expect.objectContaining({ added: ['14d'] }), second: 'PlanUnchanged', updates: 1 });
  expect(sent.map((s) => s.reminder)).toEqual(['14d', '7d', '1d', 'expired']);
});

test('new reminders already past: only the tightest due one is sent; one due before the token existed is not', async () => {
  // Created 25 days ago, expires in 10: a 14d warning fell due 4 days ago, a 30d one 20 days ago, a 60d one before creation.
  const input = await tokenInput(10 * DAY, 25 * DAY);
  const { during, sent, recorded } = await run(input, (handle) =>
    handle.executeUpdate(replanUpdate, { args: [{ reminders: plan(60, 30, 14, 7, 1), expiredNotice: true }] }),
  );

  expect(during).toMatchObject({ added: ['60d', '30d', '14d'], dropped: [], moved: [] });
  // The update records one, the woken main loop the other: in either order.
  expect(recorded.sort((a, b) => b.reminder.localeCompare(a.reminder))).toEqual([
    expect.objectContaining({ reminder: '60d', status: 'skipped', reason: 'created-inside-window' }),
    expect.objectContaining({ reminder: '30d', status: 'skipped', reason: 'superseded-by-14d' }),
  ]);
  expect(sent.map((s) => s.reminder)).toEqual(['14d', '7d', '1d', 'expired']);
});

test('a changed expiry re-plans the reminders not yet sent, and the sends carry the new expiry', async () => {
  const input = await tokenInput(10 * DAY);
  const newExpiry = new Date(Date.parse(input.expiresAt) + 30 * DAY).toISOString();
  const { during, sent, result } = await run(input, async (handle) => {
    // Past the 7d warning (sent at day 3), waiting for the 1d one.
    await harness.env.sleep(4 * DAY);
    return handle.executeUpdate(replanUpdate, { args: [{ reminders: plan(7, 1), expiredNotice: true, expiresAt: newExpiry }] });
  });

  expect(during).toEqual({ added: [], dropped: [], moved: ['1d', 'expired'], expiresAt: newExpiry });
  expect(sent.map((s) => [s.reminder, s.expiresAt])).toEqual([
    ['7d', input.expiresAt],
    ['1d', newExpiry],
    ['expired', newExpiry],
  ]);
  const [, oneDay, expired] = sent;
  expect(oneDay!.at).toBeGreaterThanOrEqual(Date.parse(newExpiry) - DAY);
  expect(expired!.at).toBeGreaterThanOrEqual(Date.parse(newExpiry));
  expect(result.expiresAt).toBe(newExpiry);
  expect(result.reminders.map((r) => [r.key, r.dueAt])).toEqual([
    ['7d', new Date(Date.parse(input.expiresAt) - 7 * DAY).toISOString()],
    ['1d', new Date(Date.parse(newExpiry) - DAY).toISOString()],
    ['expired', newExpiry],
  ]);
});

test.each<[string, unknown]>([
  ['no list', { expiredNotice: true }],
  ['a bad key', { reminders: [{ key: '7 days', beforeExpiryMs: 7 * DAY }], expiredNotice: true }],
  ['the expired key', { reminders: [{ key: 'expired', beforeExpiryMs: DAY }], expiredNotice: true }],
  ['a negative lead', { reminders: [{ key: '7d', beforeExpiryMs: -1 }], expiredNotice: true }],
  ['a repeated key', { reminders: [...plan(7), ...plan(7)], expiredNotice: true }],
  ['no expiredNotice', { reminders: plan(7) }],
  ['an expiry that is not ISO UTC', { reminders: plan(7), expiredNotice: true, expiresAt: 'next tuesday' }],
  ['an expiry before creation', { reminders: plan(7), expiredNotice: true, expiresAt: '2000-01-01T00:00:00.000Z' }],
])('a plan with %s is refused as InvalidPlan and changes nothing', async (_, bad) => {
  const input = await tokenInput(30 * DAY);
  const { during, sent } = await run(input, async (handle) => ({
    type: await refusalType(handle.executeUpdate(replanUpdate, { args: [bad as ReplanInput] })),
    updates: await updateEvents(handle),
  }));

  expect(during).toEqual({ type: 'InvalidPlan', updates: 0 });
  expect(sent.map((s) => s.reminder)).toEqual(['7d', '1d', 'expired']);
});
