// One token's reminder plan under its owner's preferences, as the workflow's input carries it: the lead times, the
// expired notice, and the due times that the owner's waking hours moved. Computed here, outside the workflow (time
// zones need Intl and its time zone data); the workflow takes the moved times as dates.
import type { UserPlan } from '../preferences/rules';
import type { TokenExpiryInput } from './contract';
import { planReminders } from './plan';
import { earliestWakingAtOrAfter, latestWakingAtOrBefore } from './wakingHours';

export type PlannedToken = Pick<TokenExpiryInput, 'tokenId' | 'expiresAt'>;
export type TokenPlan = Pick<TokenExpiryInput, 'reminders' | 'expiredNotice' | 'wakingDueAt'>;

/**
 * The plan of `token` under `plan`: a warning that would fall due outside the waking hours moves to the end of
 * the window before (earlier, never later); the expired notice, which cannot be early, to the start of the next.
 * `wakingDueAt` holds only the due times that moved, so a user without waking hours gets today's plan exactly.
 * `spreadMs` is EXPIRY_SPREAD: a warning's per-token offset applies first, as in the workflow.
 */
export function tokenPlan(token: PlannedToken, plan: UserPlan, spreadMs: number): TokenPlan {
  const base = { reminders: plan.reminders, expiredNotice: plan.expiredNotice };
  const hours = plan.wakingHours;
  if (!hours) return base;
  const moved: Record<string, string> = {};
  for (const reminder of planReminders({ ...token, ...base, spreadMs })) {
    const due = Date.parse(reminder.dueAt);
    const waking = reminder.kind === 'warning' ? latestWakingAtOrBefore(due, hours) : earliestWakingAtOrAfter(due, hours);
    if (waking !== due) moved[reminder.key] = new Date(waking).toISOString();
  }
  return Object.keys(moved).length > 0 ? { ...base, wakingDueAt: moved } : base;
}
