// What the Temporal UI shows of a token's run (user metadata): a summary and details on the workflow, a
// summary on each timer and activity. Ids, reminder keys and dates only: never a name or an address.
// The workflow bundle imports this file: no Node built-ins, no I/O.
import { EXPIRED_REMINDER_KEY, type ReminderKind, type TokenExpiryInput } from './contract';
import { planReminders } from './plan';

interface Reminder {
  key: string;
  kind: ReminderKind;
  dueAt: string;
}

/** "7d warning", "expired notice". */
export function reminderLabel({ key, kind }: Pick<Reminder, 'key' | 'kind'>): string {
  return kind === 'expired' ? 'expired notice' : `${key} warning`;
}

/** The timer that waits for a reminder: "7d warning, due 2027-02-15T08:15:45Z". */
export function dueTimerSummary(reminder: Reminder): string {
  return `${reminderLabel(reminder)}, due ${isoSeconds(reminder.dueAt)}`;
}

/** The pause between a failed first try and the queued retries. */
export function retryPauseSummary(reminder: Reminder): string {
  return `pause, then retry the ${reminderLabel(reminder)}`;
}

/** The send activity: "send 7d warning". */
export function sendSummary(reminder: Pick<Reminder, 'key' | 'kind'>): string {
  return `send ${reminderLabel(reminder)}`;
}

/** The activity that writes unsent reminders into the log: "record 1d warning, expired notice: token-revoked". */
export function recordSummary(labels: string[], reason: string): string {
  return `record ${labels.join(', ')}: ${reason.split(':', 1)[0]}`;
}

/** One line for the workflow list: "token 42 expires 2027-02-22T08:15:45Z; plan 7d, 1d, expired". */
export function workflowSummary(input: TokenExpiryInput): string {
  const plan = [...input.reminders.map((r) => r.key), ...(input.expiredNotice ? [EXPIRED_REMINDER_KEY] : [])];
  return `token ${input.tokenId} expires ${isoSeconds(input.expiresAt)}; plan ${plan.length > 0 ? plan.join(', ') : 'none'}`;
}

/** The workflow's details (Temporal markdown): the token's dates and every reminder of its plan at start, as its timers are set. */
export function workflowDetails(input: TokenExpiryInput): string {
  const plan = planReminders(input);
  const moved = input.wakingDueAt ?? {};
  return [
    `**Token** ${input.tokenId}: created ${isoSeconds(input.createdAt)}, expires ${isoSeconds(input.expiresAt)}`,
    '',
    `**Reminder plan** (the owner's when the workflow started${Object.keys(moved).length > 0 ? '; due times moved into their waking hours' : ''})`,
    '',
    ...(plan.length > 0 ? plan.map((r) => `- ${dueTimerSummary(r)}`) : ['- none']),
  ].join('\n');
}

function isoSeconds(iso: string): string {
  return new Date(iso).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
