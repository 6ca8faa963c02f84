// The workflow's own rules, with the activities replaced at the boundary: no database, no Postmark.
// The end-to-end tests (tokenExpiry.workflow.test.ts) run the same workflow on the real activities.
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { createActivities } from '../activities/tokenExpiry';
import {
  searchAttributes,
  tokenExpiryWorkflowId,
  type RecordOutcomesInput,
  type SendReminderInput,
  type TokenExpiryInput,
  type UnrecordedSend,
} from '../src/tokenExpiry/contract';
import type { tokenExpiryWorkflow } from '../workflows/tokenExpiry';
import { fakeActivities as fakeActivitiesOf, tokenInput as tokenInputOf } from './helpers/fakeActivities';
import { WorkflowHarness } from './helpers/workflowHarness';
import { TEST_INSTANCE } from './helpers/database';
import { replaysAndSave } from './helpers/histories';

type Activities = ReturnType<typeof createActivities>;

const DAY = 86_400_000;
const harness = WorkflowHarness.use();
const fakeActivities = (firstTry?: (input: SendReminderInput) => Promise<void>) => fakeActivitiesOf(harness, firstTry);
const tokenInput = (inMs: number, agoMs = 0) => tokenInputOf(harness, inMs, agoMs);

async function start(input: TokenExpiryInput, taskQueue: string) {
  return harness.env.client.workflow.start<typeof tokenExpiryWorkflow>('tokenExpiryWorkflow', {
    taskQueue,
    workflowId: tokenExpiryWorkflowId(input.tokenId, TEST_INSTANCE),
    args: [input],
  });
}

test('each reminder is sent at its due time, as a local first try, and the run completes', async () => {
  const { activities, sent, recorded } = fakeActivities();
  const queue = harness.unique('rules');
  const input = await tokenInput(30 * DAY);
  const result = await harness.withWorker(queue, activities, async () => (await start(input, queue)).result());

  const expiresAt = Date.parse(input.expiresAt);
  expect(sent.map((s) => [s.reminder, s.local])).toEqual([
    ['7d', true],
    ['1d', true],
    ['expired', true],
  ]);
  const due = { '7d': expiresAt - 7 * DAY, '1d': expiresAt - DAY, expired: expiresAt } as Record<string, number>;
  for (const { reminder, at } of sent) {
    expect(at).toBeGreaterThanOrEqual(due[reminder] as number);
    expect(at - (due[reminder] as number)).toBeLessThan(60_000);
  }
  expect(recorded).toEqual([]);
  expect(result.state).toBe('completed');
  expect(result.reminders.map((r) => [r.key, r.outcome, r.messageId])).toEqual([
    ['7d', 'sent', 'msg-7d'],
    ['1d', 'sent', 'msg-1d'],
    ['expired', 'sent', 'msg-expired'],
  ]);
});

test('a reminder due before the token was created is skipped as created-inside-window', async () => {
  const { activities, sent, recorded } = fakeActivities();
  const queue = harness.unique('rules');
  const result = await harness.withWorker(queue, activities, async () => (await start(await tokenInput(3 * DAY), queue)).result());

  expect(recorded).toEqual([expect.objectContaining({ reminder: '7d', status: 'skipped', reason: 'created-inside-window' })]);
  expect(sent.map((s) => s.reminder)).toEqual(['1d', 'expired']);
  expect(result.reminders[0]).toMatchObject({ key: '7d', outcome: 'skipped', reason: 'created-inside-window' });
});

test('a late start sends only the tightest reminder already due; the others are superseded', async () => {
  const { activities, sent, recorded } = fakeActivities();
  const queue = harness.unique('rules');
  // Created 60 days ago, expires in 12 hours: both warnings are past due when the workflow first runs.
  const result = await harness.withWorker(queue, activities, async () =>
    (await start(await tokenInput(DAY / 2, 60 * DAY), queue)).result(),
  );

  expect(recorded).toEqual([expect.objectContaining({ reminder: '7d', status: 'skipped', reason: 'superseded-by-1d' })]);
  expect(sent.map((s) => s.reminder)).toEqual(['1d', 'expired']);
  expect(result.reminders.map((r) => [r.key, r.outcome, r.reason ?? null])).toEqual([
    ['7d', 'skipped', 'superseded-by-1d'],
    ['1d', 'sent', null],
    ['expired', 'sent', null],
  ]);
});

test('a superseded reminder another token\'s digest already sent is recorded by the run as sent, not skipped', async () => {
  const { activities, sent } = fakeActivities();
  const queue = harness.unique('rules');
  const input = await tokenInput(DAY / 2, 60 * DAY);
  const digested = { reminder: '7d', outcome: 'sent' as const, messageId: 'msg-digest', digest: 'token-expiry:9:7d:1', sentByTokenId: '9' };
  const result = await harness.withWorker(
    queue,
    { ...activities, recordOutcomes: async (asked: RecordOutcomesInput) => (asked.outcomes.some((o) => o.reminder === '7d') ? [digested] : []) },
    async () => (await start(input, queue)).result(),
  );

  expect(sent.map((s) => s.reminder)).toEqual(['1d', 'expired']);
  expect(result.reminders.map((r) => [r.key, r.outcome, r.reason ?? null, r.messageId ?? null, r.sentByTokenId ?? null])).toEqual([
    ['7d', 'sent', null, 'msg-digest', '9'],
    ['1d', 'sent', null, expect.any(String), null],
    ['expired', 'sent', null, expect.any(String), null],
  ]);
});

test('cancelled between reminders: the run ends Cancelled, later reminders are never sent', async () => {
  const { activities, sent } = fakeActivities();
  const queue = harness.unique('rules');
  await harness.withWorker(queue, activities, async () => {
    const handle = await start(await tokenInput(30 * DAY), queue);
    await harness.env.sleep(25 * DAY);
    expect(sent.map((s) => s.reminder)).toEqual(['7d']);
    await handle.cancel();
    const failure = await handle.result().catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    await harness.env.sleep(10 * DAY);
    const { typedSearchAttributes } = await handle.describe();
    expect(typedSearchAttributes.get(searchAttributes.state)).toBe('cancelled');
    await replaysAndSave(handle, 'cancelled-between-reminders');
  });
  expect(sent.map((s) => s.reminder)).toEqual(['7d']);
});

test('a permanent rejection fails that reminder only (the activity has recorded it); the next still goes out', async () => {
  const { activities, sent, recorded } = fakeActivities(async ({ reminder }) => {
    if (reminder === '7d') throw ApplicationFailure.nonRetryable('inactive recipient', 'PostmarkInactiveRecipient');
  });
  const queue = harness.unique('rules');
  const { result, failure } = await harness.withWorker(queue, activities, async () => {
    const handle = await start(await tokenInput(30 * DAY), queue);
    const result = await handle.result();
    await replaysAndSave(handle, 'first-try-rejected-then-next-sent');
    return { result, failure: (await handle.describe()).typedSearchAttributes.get(searchAttributes.lastFailure) };
  });

  expect(recorded).toEqual([]);
  expect(sent.map((s) => s.reminder)).toEqual(['1d', 'expired']);
  expect(result.reminders[0]).toMatchObject({ outcome: 'failed', reason: 'PostmarkInactiveRecipient: inactive recipient' });
  expect(failure).toBe('PostmarkInactiveRecipient');
});

test('a send still failing after every retry is recorded as failed by the workflow, and the next reminder goes out', async () => {
  const { activities, sent, recorded } = fakeActivities(async ({ reminder }) => {
    if (reminder === '7d') throw ApplicationFailure.retryable('Postmark answered 503', 'PostmarkUnavailable');
  });
  const failing: Activities = {
    ...activities,
    sendReminder: async (input) => {
      if (input.reminder === '7d') throw ApplicationFailure.retryable('Postmark answered 503', 'PostmarkUnavailable');
      return activities.sendReminder(input);
    },
  };
  const queue = harness.unique('rules');
  const result = await harness.withWorker(queue, failing, async () => {
    const handle = await start(await tokenInput(30 * DAY), queue);
    const result = await handle.result();
    await replaysAndSave(handle, 'completed-with-failure-and-retry');
    return result;
  });

  expect(recorded).toEqual([
    { reminder: '7d', dueAt: result.reminders[0]?.dueAt, status: 'failed', reason: 'PostmarkUnavailable: Postmark answered 503' },
  ]);
  expect(sent.map((s) => s.reminder)).toEqual(['1d', 'expired']);
});

test('a retryable failure of the first try hands over to the queued activity, 10 s later', async () => {
  const failedAt: number[] = [];
  const { activities, sent, recorded } = fakeActivities(async ({ reminder }) => {
    if (reminder !== '7d') return;
    failedAt.push(await harness.env.currentTimeMs());
    throw ApplicationFailure.retryable('Postmark answered 503', 'PostmarkUnavailable');
  });
  const queue = harness.unique('rules');
  const result = await harness.withWorker(queue, activities, async () => {
    const handle = await start(await tokenInput(30 * DAY), queue);
    const result = await handle.result();
    await replaysAndSave(handle, 'first-try-failed-then-queued-retries');
    return result;
  });

  expect(sent.map((s) => [s.reminder, s.local])).toEqual([
    ['7d', false],
    ['1d', true],
    ['expired', true],
  ]);
  expect((sent[0]?.at as number) - (failedAt[0] as number)).toBeGreaterThanOrEqual(10_000);
  expect(recorded).toEqual([]);
  expect(result.reminders.every((r) => r.outcome === 'sent')).toBe(true);
});

test('a send Postmark accepted but the database did not record: recordSent is retried until it answers, never failed', async () => {
  const { activities, recorded } = fakeActivities();
  const queue = harness.unique('rules');
  const input = { ...(await tokenInput(3 * DAY)), reminders: [{ key: '1d', beforeExpiryMs: DAY }], expiredNotice: false };
  const unrecorded = { instance: input.instance, fence: 'f', digest: 'k', messageId: 'msg-accepted', submittedAt: '', now: '', waited: false, tokenId: input.tokenId, reminder: '1d' };
  const sentNotRecorded = async () => {
    throw ApplicationFailure.create({ message: 'accepted, not recorded', type: 'SentNotRecorded', nonRetryable: true, details: [unrecorded] });
  };
  let recordCalls = 0;
  const result = await harness.withWorker(
    queue,
    {
      ...activities,
      sendReminderFirstTry: sentNotRecorded,
      sendReminder: sentNotRecorded,
      recordSent: async (asked: UnrecordedSend) => {
        if (++recordCalls < 3) throw new Error('database away');
        return { outcome: 'sent', messageId: asked.messageId, digest: asked.digest, sentByTokenId: asked.tokenId };
      },
    },
    async () => {
      const handle = await start(input, queue);
      const result = await handle.result();
      await replaysAndSave(handle, 'sent-not-recorded-then-recorded');
      return result;
    },
  );

  expect(recordCalls).toBe(3);
  expect(recorded).toEqual([]);
  expect(result.reminders.map((r) => [r.key, r.outcome, r.messageId])).toEqual([['1d', 'sent', 'msg-accepted']]);
});
