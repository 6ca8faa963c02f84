// EXPIRY_SPREAD: a token's warnings move earlier by a per-token amount, so that tokens sharing an expiry do
// not all fall due in the same second. Deterministic, bounded, never for the expired notice, and replayable.
import type { createActivities } from '../activities/tokenExpiry';
import { loadConfig } from '../src/config';
import { firstReminderDue } from '../src/tokenExpiry/client';
import { tokenExpiryWorkflowId, type SendReminderInput, type TokenExpiryInput } from '../src/tokenExpiry/contract';
import { warningOffsetMs } from '../src/tokenExpiry/spread';
import type { tokenExpiryWorkflow } from '../workflows/tokenExpiry';
import { WorkflowHarness } from './helpers/workflowHarness';
import { replaysAndSave } from './helpers/histories';
import { TEST_INSTANCE } from './helpers/database';

const SECOND = 1_000;
const MINUTE = 60_000;
const DAY = 86_400_000;
const harness = WorkflowHarness.use();

test('EXPIRY_SPREAD defaults to 15 minutes; 0 turns it off; a bad value is named', () => {
  expect(loadConfig({}).EXPIRY_SPREAD).toBe(15 * MINUTE);
  expect(loadConfig({ EXPIRY_SPREAD: '0' }).EXPIRY_SPREAD).toBe(0);
  expect(() => loadConfig({ EXPIRY_SPREAD: '5x' })).toThrow(/EXPIRY_SPREAD: "5x" is not a duration/);
});

test('the offset is the same for a token every time, and never more than the spread or 1 % of the lead time', () => {
  const ids = Array.from({ length: 10_000 }, (_, i) => String(i + 1));
  for (const id of ids.slice(0, 50)) expect(warningOffsetMs(id, 7 * DAY, 15 * MINUTE)).toBe(warningOffsetMs(id, 7 * DAY, 15 * MINUTE));
  const sevenDays = ids.map((id) => warningOffsetMs(id, 7 * DAY, 15 * MINUTE));
  // At least a minute early, so that a send's own latency never makes a warning late; at most 15 minutes.
  expect(Math.min(...sevenDays)).toBeGreaterThanOrEqual(MINUTE);
  expect(Math.max(...sevenDays)).toBeLessThan(15 * MINUTE);
  // 1 % of a day is 14.4 min, of 60 s is 0.6 s: the lead time bounds it before the spread does.
  expect(Math.max(...ids.map((id) => warningOffsetMs(id, DAY, 15 * MINUTE)))).toBeLessThan(14.4 * MINUTE);
  expect(Math.max(...ids.map((id) => warningOffsetMs(id, MINUTE, 15 * MINUTE)))).toBeLessThan(600);
  expect(ids.map((id) => warningOffsetMs(id, 7 * DAY, 0))).toEqual(ids.map(() => 0));
});

test('10,000 tokens with one expiry second: at most a few dozen warnings fall due in any second', () => {
  const perSecond = new Map<number, number>();
  for (let id = 1; id <= 10_000; id++) {
    const second = Math.floor(warningOffsetMs(String(id), 7 * DAY, 15 * MINUTE) / SECOND);
    perSecond.set(second, (perSecond.get(second) ?? 0) + 1);
  }
  // Spread evenly, 10,000 over the 840 s from 1 to 15 minutes early is 12 a second; without the spread, all 10,000 fall in one.
  expect(perSecond.size).toBeGreaterThan(820);
  expect(Math.max(...perSecond.values())).toBeLessThanOrEqual(30);
});

type Activities = ReturnType<typeof createActivities>;

test('the workflow sends each warning at its spread time, the expired notice at expiry, and the run replays', async () => {
  const sent: { reminder: string; at: number }[] = [];
  const activities: Activities = {
    sendReminderFirstTry: async (input: SendReminderInput) => {
      sent.push({ reminder: input.reminder, at: await harness.env.currentTimeMs() });
      return { outcome: 'sent' as const, messageId: `msg-${input.reminder}` };
    },
    sendReminder: async () => {
      throw new Error('the first try succeeds here');
    },
    recordSent: async () => ({ outcome: 'sent' as const }),
    recordOutcomes: async () => [],
  };
  const now = await harness.env.currentTimeMs();
  const input: TokenExpiryInput = {
    instance: TEST_INSTANCE,
    tokenId: harness.unique('spread'),
    createdAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 30 * DAY).toISOString(),
    reminders: [
      { key: '7d', beforeExpiryMs: 7 * DAY },
      { key: '1d', beforeExpiryMs: DAY },
    ],
    expiredNotice: true,
    spreadMs: 15 * MINUTE,
  };
  const expiresAt = Date.parse(input.expiresAt);
  const due = {
    '7d': expiresAt - 7 * DAY - warningOffsetMs(input.tokenId, 7 * DAY, 15 * MINUTE),
    '1d': expiresAt - DAY - warningOffsetMs(input.tokenId, DAY, 15 * MINUTE),
    expired: expiresAt,
  };
  expect(due['7d']).toBeLessThan(expiresAt - 7 * DAY);
  const first = firstReminderDue(input)!;
  expect(first.getTime()).toBe(due['7d']);

  const queue = harness.unique('spread');
  const handle = await harness.env.client.workflow.start<typeof tokenExpiryWorkflow>('tokenExpiryWorkflow', {
    taskQueue: queue,
    workflowId: tokenExpiryWorkflowId(input.tokenId, TEST_INSTANCE),
    args: [input],
    // As startTokenExpiryWorkflow starts it: nothing runs until the first (spread) warning.
    startDelay: first.getTime() - now,
  });
  const result = await harness.withWorker(queue, activities, () => handle.result());

  expect(result.reminders.map((r) => [r.key, Date.parse(r.dueAt), r.outcome])).toEqual([
    ['7d', due['7d'], 'sent'],
    ['1d', due['1d'], 'sent'],
    ['expired', due.expired, 'sent'],
  ]);
  for (const { reminder, at } of sent) {
    const lateness = at - due[reminder as keyof typeof due];
    expect(lateness).toBeGreaterThanOrEqual(0);
    expect(lateness).toBeLessThan(MINUTE);
  }
  await replaysAndSave(handle, 'start-delayed-with-spread');
});
