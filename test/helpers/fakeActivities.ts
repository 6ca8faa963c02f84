// The workflow's activities replaced at the boundary by functions typed as the real ones: they succeed and
// remember what they were asked, when (workflow time). For the workflow's rules, without database or Postmark.
import type { createActivities } from '../../activities/tokenExpiry';
import type { RecordOutcomesInput, SendReminderInput, TokenExpiryInput } from '../../src/tokenExpiry/contract';
import type { WorkflowHarness } from './workflowHarness';
import { TEST_INSTANCE } from './database';

type Activities = ReturnType<typeof createActivities>;

const DAY = 86_400_000;

type Sent = SendReminderInput & {
  /** Workflow time when the send was asked for. */
  at: number;
  local: boolean;
};

/** Every send succeeds, unless `firstTry` throws for the local first try. */
export function fakeActivities(harness: WorkflowHarness, firstTry?: (input: SendReminderInput) => Promise<void>) {
  const sent: Sent[] = [];
  const recorded: RecordOutcomesInput['outcomes'] = [];
  const send = (local: boolean) => async (input: SendReminderInput) => {
    sent.push({ ...input, at: await harness.env.currentTimeMs(), local });
    return { outcome: 'sent' as const, messageId: `msg-${input.reminder}` };
  };
  const activities: Activities = {
    sendReminderFirstTry: async (input) => {
      await firstTry?.(input);
      return send(true)(input);
    },
    sendReminder: send(false),
    recordSent: async () => {
      throw new Error('fakeActivities: sends are recorded by the send itself');
    },
    recordOutcomes: async ({ outcomes }) => {
      recorded.push(...outcomes);
      return [];
    },
  };
  return { activities, sent, recorded };
}

/** A token created `agoMs` before now that expires `inMs` after now, with 7d and 1d warnings and the expired notice. */
export async function tokenInput(harness: WorkflowHarness, inMs: number, agoMs = 0): Promise<TokenExpiryInput> {
  const now = await harness.env.currentTimeMs();
  return {
    instance: TEST_INSTANCE,
    tokenId: harness.unique('token'),
    createdAt: new Date(now - agoMs).toISOString(),
    expiresAt: new Date(now + inMs).toISOString(),
    reminders: [
      { key: '7d', beforeExpiryMs: 7 * DAY },
      { key: '1d', beforeExpiryMs: DAY },
    ],
    expiredNotice: true,
  };
}
