// `token-expiry forecast`: how many reminders fall due on each UTC day ahead, and how many emails they make.
import type { Config } from '../config';
import { countDueReminders, findForecastTokensOfUsers, type DueCount, type PlannedReminder } from '../registry/forecast';
import { findAllPreferences } from '../db/preferences';
import { userPlan, type UserPlan } from '../preferences/rules';
import { planReminders } from './plan';
import { tokenPlan } from './userPlan';
import type { Queryable } from '../db/transaction';
import { DIGEST_MAX_TOKENS } from '../email/digestEmail';
import { EXPIRED_REMINDER_KEY } from './contract';
import { earlyAllowanceMs } from './digest';

export interface ForecastDay {
  /** UTC day, YYYY-MM-DD. */
  date: string;
  /** Token reminders due that day: warnings and expired notices. */
  warnings: number;
  expired: number;
  /** The emails they make after digests (what Postmark bills), counted on the day of each email's first reminder. */
  emails: number;
}

export const FORECAST_MAX_DAYS = 366;
const DAY_MS = 86_400_000;

export type ForecastSettings = Pick<Config, 'EXPIRY_REMINDERS' | 'EXPIRED_NOTICE' | 'EXPIRY_DIGEST_WINDOW' | 'EXPIRY_REMINDER_MENU'>;

/**
 * The plan each waiting workflow has: the reminders in EXPIRY_REMINDERS and EXPIRED_NOTICE (a workflow
 * started before a change of these keeps its plan until `token-expiry replan`, so it is counted with
 * today's values), each with how long after a user's first one the others still join its digest: a
 * warning's early allowance, or the window an expired notice waits (digest.ts).
 */
function plannedReminders(settings: ForecastSettings): PlannedReminder[] {
  const window = settings.EXPIRY_DIGEST_WINDOW;
  const plan: PlannedReminder[] = settings.EXPIRY_REMINDERS.map(({ key, beforeExpiryMs }) => ({
    key,
    kind: 'warning',
    beforeExpiryMs,
    digestSpanMs: earlyAllowanceMs(window, beforeExpiryMs),
  }));
  if (settings.EXPIRED_NOTICE) plan.push({ key: EXPIRED_REMINDER_KEY, kind: 'expired', beforeExpiryMs: 0, digestSpanMs: window });
  return plan;
}

/** Every UTC day from today's for `days` days, with zeros where nothing is due. */
export async function forecast(
  db: Queryable,
  settings: ForecastSettings,
  { now, days }: { now: Date; days: number },
): Promise<ForecastDay[]> {
  if (!Number.isInteger(days) || days < 1 || days > FORECAST_MAX_DAYS) {
    throw new RangeError(`days: ${days} is not a whole number from 1 to ${FORECAST_MAX_DAYS}`);
  }
  const from = new Date(Math.floor(now.getTime() / DAY_MS) * DAY_MS);
  const to = new Date(from.getTime() + days * DAY_MS);
  // Users who chose are counted by their own plans; everyone else by the operator's, in one query.
  const preferences = await findAllPreferences(db);
  const chosen = [...preferences.keys()];
  const counts = [
    ...(await countDueReminders(db, plannedReminders(settings), { from, to, perEmail: DIGEST_MAX_TOKENS, exceptUserIds: chosen })),
    ...(await countOwnPlans(db, (userId) => userPlan(preferences.get(userId) ?? null, settings), chosen, settings, { from, to })),
  ];
  const byDate = new Map<string, DueCount[]>();
  for (const count of counts) byDate.set(count.date, [...(byDate.get(count.date) ?? []), count]);
  return Array.from({ length: days }, (_, i) => {
    const date = new Date(from.getTime() + i * DAY_MS).toISOString().slice(0, 10);
    const sum = (kind: DueCount['kind'], field: 'count' | 'emails') =>
      (byDate.get(date) ?? []).filter((c) => c.kind === kind).reduce((total, c) => total + c[field], 0);
    return { date, warnings: sum('warning', 'count'), expired: sum('expired', 'count'), emails: sum('warning', 'emails') + sum('expired', 'emails') };
  });
}

/** How far waking hours move a due time at most: a warning back to the last working day, a notice on to the next. */
const MAX_WAKING_SHIFT_MS = 8 * DAY_MS;

/**
 * The reminders of users with plans of their own due in [from, to), counted as countDueReminders counts the others:
 * each token's due times as its workflow has them (lead times, the expired notice, waking hours; without the spread),
 * left out when due before the token was created or already final; a user's same reminders form one email while
 * each falls due within the digest span of the one before, in parts of at most DIGEST_MAX_TOKENS.
 */
async function countOwnPlans(
  db: Queryable,
  planOf: (userId: string) => UserPlan,
  userIds: string[],
  settings: ForecastSettings,
  { from, to }: { from: Date; to: Date },
): Promise<DueCount[]> {
  const longest = Math.max(0, ...settings.EXPIRY_REMINDER_MENU.map((r) => r.beforeExpiryMs), ...settings.EXPIRY_REMINDERS.map((r) => r.beforeExpiryMs));
  const { tokens, final } = await findForecastTokensOfUsers(db, userIds, {
    from: new Date(from.getTime() - MAX_WAKING_SHIFT_MS),
    to: new Date(to.getTime() + longest + MAX_WAKING_SHIFT_MS),
  });
  const window = settings.EXPIRY_DIGEST_WINDOW;
  const due: { userId: string; tokenId: string; key: string; kind: DueCount['kind']; at: number; span: number }[] = [];
  for (const token of tokens) {
    const plan = planOf(token.userId);
    const dates = { tokenId: token.id, expiresAt: token.expiredAt.toISOString() };
    for (const reminder of planReminders({ ...dates, ...tokenPlan(dates, plan, 0) })) {
      const at = Date.parse(reminder.dueAt);
      if (at < from.getTime() || at >= to.getTime() || at < token.createdAt.getTime() || final.has(`${token.id}:${reminder.key}`)) continue;
      const lead = plan.reminders.find((r) => r.key === reminder.key)?.beforeExpiryMs ?? 0;
      const span = reminder.kind === 'warning' ? earlyAllowanceMs(window, lead) : window;
      due.push({ userId: token.userId, tokenId: token.id, key: reminder.key, kind: reminder.kind, at, span });
    }
  }
  due.sort((a, b) => a.userId.localeCompare(b.userId) || a.key.localeCompare(b.key) || a.at - b.at || Number(a.tokenId) - Number(b.tokenId));
  const counts = new Map<string, DueCount>();
  const add = (at: number, kind: DueCount['kind'], count: number, emails: number) => {
    const date = new Date(at).toISOString().slice(0, 10);
    const entry = counts.get(`${date} ${kind}`) ?? { date, kind, count: 0, emails: 0 };
    entry.count += count;
    entry.emails += emails;
    counts.set(`${date} ${kind}`, entry);
  };
  let previous: (typeof due)[number] | undefined;
  let emailAt = 0;
  let place = 0;
  for (const reminder of due) {
    const sameGroup = previous?.userId === reminder.userId && previous.key === reminder.key;
    if (!sameGroup || reminder.span === 0 || reminder.at - (previous as (typeof due)[number]).at > reminder.span) {
      emailAt = reminder.at;
      place = 0;
    } else place++;
    add(reminder.at, reminder.kind, 1, 0);
    if (place % DIGEST_MAX_TOKENS === 0) add(emailAt, reminder.kind, 0, 1);
    previous = reminder;
  }
  return [...counts.values()];
}

/** A bar per day, scaled to the busiest: for a terminal, beside the JSON. */
export function forecastChart(days: ForecastDay[], width = 50): string {
  const most = Math.max(1, ...days.map((d) => d.emails));
  const digits = String(most).length;
  return days
    .map((d) => {
      const bar = '█'.repeat(Math.round((d.emails / most) * width)) || (d.emails > 0 ? '▏' : '');
      return `${d.date} ${String(d.emails).padStart(digits)} ${bar}`;
    })
    .join('\n')
    .concat('\n');
}
