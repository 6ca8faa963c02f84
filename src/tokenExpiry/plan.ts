// A token's reminder plan: which reminders it gets and when, the status a run starts with, how a replan
// changes a running plan, and what a replan may not ask for. Pure code, bundled with the workflow: the
// workflow, the client (start delay, status before the first task) and the UI summaries all plan with it.
import {
  DROPPED_FROM_PLAN,
  EXPIRED_REMINDER_KEY,
  type ReminderStatus,
  type ReplanInput,
  type TokenExpiryInput,
  type TokenExpiryStatus,
} from './contract';
import { warningOffsetMs } from './spread';

/** The notification log's reason for a reminder due before its token was created: the user already knows. */
export const CREATED_INSIDE_WINDOW = 'created-inside-window';

export type PlanInput = Pick<TokenExpiryInput, 'tokenId' | 'expiresAt' | 'reminders' | 'expiredNotice' | 'wakingDueAt' | 'spreadMs'>;

/**
 * Every reminder with its due time, earliest first; a warning goes out up to `spreadMs` early (spread.ts),
 * the "expired" notice at expiry; a due time the owner's waking hours moved (`wakingDueAt`) is taken as given.
 * Warnings moved to the same time keep their order, longest lead first: the workflow sends the last of them.
 */
export function planReminders(input: PlanInput): ReminderStatus[] {
  const expiresAt = Date.parse(input.expiresAt);
  const moved = input.wakingDueAt ?? {};
  const spreadMs = input.spreadMs ?? 0;
  const plan: ReminderStatus[] = input.reminders.map(({ key, beforeExpiryMs }) => ({
    key,
    kind: 'warning',
    dueAt: moved[key] ?? new Date(expiresAt - beforeExpiryMs - warningOffsetMs(input.tokenId, beforeExpiryMs, spreadMs)).toISOString(),
  }));
  if (input.expiredNotice) {
    plan.push({ key: EXPIRED_REMINDER_KEY, kind: 'expired', dueAt: moved[EXPIRED_REMINDER_KEY] ?? new Date(expiresAt).toISOString() });
  }
  return plan.sort((a, b) => Date.parse(a.dueAt) - Date.parse(b.dueAt));
}

/** The reminders of `reminders` due before the token was created: the user chose an expiry closer than these. */
export function insideWindow(reminders: ReminderStatus[], createdAt: string): ReminderStatus[] {
  const created = Date.parse(createdAt);
  return reminders.filter((r) => Date.parse(r.dueAt) < created);
}

/**
 * What a run's status query says before its first reminder: its plan, those inside the window marked skipped
 * (the workflow records them at once), waiting for the first of the others.
 */
export function initialStatus(input: PlanInput & Pick<TokenExpiryInput, 'createdAt'>): TokenExpiryStatus {
  const plan = planReminders(input);
  const inside = new Set(insideWindow(plan, input.createdAt));
  const reminders = plan.map((r) => (inside.has(r) ? { ...r, outcome: 'skipped' as const, reason: CREATED_INSIDE_WINDOW } : r));
  const next = reminders.find((r) => r.outcome === undefined);
  return {
    tokenId: input.tokenId,
    expiresAt: input.expiresAt,
    state: 'waiting',
    nextReminder: next?.key ?? null,
    nextDueAt: next?.dueAt ?? null,
    reminders,
  };
}

/** A reminder an earlier replan took out of the plan, unsent: a later plan that has it again brings it back. */
const droppedEarlier = (r: ReminderStatus) => r.outcome === 'skipped' && r.reason === DROPPED_FROM_PLAN;

/**
 * `current` with `planned` applied: reminders that `settled` says are done (sent, recorded, being sent) stay
 * as they are, even when no longer planned; the others take their planned due time, or are dropped
 * (marked nowhere yet: the caller records them); planned reminders not in `current` are added, and so are
 * those an earlier replan dropped (a user who turns a lead time back on gets it again).
 */
export function replanReminders(
  current: ReminderStatus[],
  planned: ReminderStatus[],
  settled: (reminder: ReminderStatus) => boolean,
): { reminders: ReminderStatus[]; added: ReminderStatus[]; dropped: ReminderStatus[]; moved: ReminderStatus[] } {
  const keep = (r: ReminderStatus) => settled(r) && !droppedEarlier(r);
  const plannedByKey = new Map(planned.map((r) => [r.key, r]));
  const currentKeys = new Set(current.map((r) => r.key));
  const added: ReminderStatus[] = [];
  const dropped: ReminderStatus[] = [];
  const moved: ReminderStatus[] = [];
  const reminders: ReminderStatus[] = [];
  for (const r of current) {
    const plan = plannedByKey.get(r.key);
    if (keep(r) || (!plan && droppedEarlier(r))) {
      reminders.push(r);
    } else if (!plan) {
      dropped.push(r);
      reminders.push(r);
    } else if (droppedEarlier(r)) {
      added.push(plan);
      reminders.push(plan);
    } else if (plan.dueAt !== r.dueAt) {
      const next = { ...r, dueAt: plan.dueAt };
      moved.push(next);
      reminders.push(next);
    } else {
      reminders.push(r);
    }
  }
  for (const plan of planned) {
    if (!currentKeys.has(plan.key)) {
      added.push(plan);
      reminders.push(plan);
    }
  }
  return { reminders: reminders.sort((a, b) => Date.parse(a.dueAt) - Date.parse(b.dueAt)), added, dropped, moved };
}

/** What is wrong with a replan's input, or null: the update's validator refuses it with this. */
export function invalidPlan(plan: ReplanInput, createdAt: string): string | null {
  if (typeof plan !== 'object' || plan === null || !Array.isArray(plan.reminders)) return 'reminders: expected a list';
  if (typeof plan.expiredNotice !== 'boolean') return 'expiredNotice: expected true or false';
  const keys = new Set<string>();
  for (const reminder of plan.reminders) {
    const { key, beforeExpiryMs } = reminder ?? {};
    if (typeof key !== 'string' || !/^[0-9a-z]+$/.test(key) || key === EXPIRED_REMINDER_KEY) {
      return `reminders: ${JSON.stringify(key)} is not a reminder key (e.g. 7d)`;
    }
    if (!Number.isSafeInteger(beforeExpiryMs) || beforeExpiryMs <= 0) return `reminders: ${key} needs a positive whole beforeExpiryMs`;
    if (keys.has(key)) return `reminders: ${key} is there twice`;
    keys.add(key);
  }
  if (plan.wakingDueAt !== undefined) {
    if (typeof plan.wakingDueAt !== 'object' || plan.wakingDueAt === null) return 'wakingDueAt: expected an object of reminder keys and times';
    for (const [key, dueAt] of Object.entries(plan.wakingDueAt)) {
      if (key !== EXPIRED_REMINDER_KEY && !keys.has(key)) return `wakingDueAt: ${JSON.stringify(key)} is not a reminder of this plan`;
      if (!isIsoUtc(dueAt)) return `wakingDueAt: ${key}: ${JSON.stringify(dueAt)} is not an ISO 8601 UTC time`;
    }
  }
  if (plan.expiresAt !== undefined) {
    if (!isIsoUtc(plan.expiresAt)) {
      return `expiresAt: ${JSON.stringify(plan.expiresAt)} is not an ISO 8601 UTC time (e.g. 2027-01-31T12:00:00.000Z)`;
    }
    if (Date.parse(plan.expiresAt) <= Date.parse(createdAt)) return 'expiresAt: must be after the token was created';
  }
  return null;
}

function isIsoUtc(value: unknown): value is string {
  const ms = typeof value === 'string' ? Date.parse(value) : NaN;
  return !Number.isNaN(ms) && new Date(ms).toISOString() === value;
}
