// What ops see in the Temporal UI costs the server a visibility write per update: one per reminder when
// the first try succeeds, and "sending" shown while a send is being retried.
import { ApplicationFailure } from '@temporalio/common';
import type { createActivities } from '../activities/tokenExpiry';
import { searchAttributes, tokenExpiryWorkflowId, type TokenExpiryInput } from '../src/tokenExpiry/contract';
import type { tokenExpiryWorkflow } from '../workflows/tokenExpiry';
import { WorkflowHarness } from './helpers/workflowHarness';
import { replaysAndSave } from './helpers/histories';
import { TEST_INSTANCE } from './helpers/database';

type Activities = ReturnType<typeof createActivities>;
const DAY = 86_400_000;
const harness = WorkflowHarness.use();

async function start(queue: string) {
  const now = await harness.env.currentTimeMs();
  const input: TokenExpiryInput = {
    instance: TEST_INSTANCE,
    tokenId: harness.unique('visibility'),
    createdAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 30 * DAY).toISOString(),
    reminders: [
      { key: '7d', beforeExpiryMs: 7 * DAY },
      { key: '1d', beforeExpiryMs: DAY },
    ],
    expiredNotice: true,
  };
  return harness.env.client.workflow.start<typeof tokenExpiryWorkflow>('tokenExpiryWorkflow', {
    taskQueue: queue,
    workflowId: tokenExpiryWorkflowId(input.tokenId, TEST_INSTANCE),
    args: [input],
  });
}

test('three reminders sent at their first try: one search-attribute update each, and the run ends completed', async () => {
  const sent = async () => ({ outcome: 'sent' as const, messageId: 'msg' });
  const activities: Activities = { sendReminderFirstTry: sent, sendReminder: sent, recordSent: sent, recordOutcomes: async () => [] };
  const queue = harness.unique('visibility');
  const handle = await start(queue);
  await harness.withWorker(queue, activities, () => handle.result());

  const { events } = await handle.fetchHistory();
  // The SDK's own TemporalChangeVersion updates (one per patch, once a run) aside: waiting (first task),
  // waiting after 7d, waiting after 1d, completed after expired. Before, each send added "sending".
  const upserts = (events ?? []).filter(
    (event) => event.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.ExpiryState,
  );
  expect(upserts).toHaveLength(4);
  expect((await handle.describe()).typedSearchAttributes.get(searchAttributes.state)).toBe('completed');
});

test('a send that goes on to retries shows ExpiryState "sending" while it retries', async () => {
  const seen: (string | undefined)[] = [];
  const queue = harness.unique('visibility');
  const handle = await start(queue);
  const activities: Activities = {
    sendReminderFirstTry: async () => {
      throw ApplicationFailure.retryable('Postmark answered 503', 'PostmarkUnavailable');
    },
    sendReminder: async () => {
      seen.push((await handle.describe()).typedSearchAttributes.get(searchAttributes.state));
      return { outcome: 'sent' as const, messageId: 'msg' };
    },
    recordSent: async () => ({ outcome: 'sent' as const }),
    recordOutcomes: async () => [],
  };
  await harness.withWorker(queue, activities, () => handle.result());
  expect(seen).toEqual(['sending', 'sending', 'sending']);
  await replaysAndSave(handle, 'first-try-failed-then-sending-shown');
});
