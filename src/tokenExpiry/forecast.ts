// `token-expiry forecast`: how many reminders fall due on each UTC day ahead, and how many emails they make.
import type { Config } from '../config';
import { countDueReminders, type DueCount, type PlannedReminder } from '../registry/forecast';
import type { Queryable } from '../db/transaction';
import { EXPIRED_REMINDER_KEY } from './contract';

export interface ForecastDay {
  /** UTC day, YYYY-MM-DD. */
  date: string;
  /** Token reminders due that day: warnings and expired notices. */
  warnings: number;
  expired: number;
  /** The emails they make (what Postmark bills). */
  emails: number;
}

export const FORECAST_MAX_DAYS = 366;
const DAY_MS = 86_400_000;

/**
 * The plan each waiting workflow has: the reminders in EXPIRY_REMINDERS and EXPIRED_NOTICE. A workflow
 * keeps the plan it started with, so tokens from before a change of these settings are counted with
 * today's values.
 */
export function plannedReminders(settings: Pick<Config, 'EXPIRY_REMINDERS' | 'EXPIRED_NOTICE'>): PlannedReminder[] {
  const plan: PlannedReminder[] = settings.EXPIRY_REMINDERS.map(({ key, beforeExpiryMs }) => ({ key, kind: 'warning', beforeExpiryMs }));
  if (settings.EXPIRED_NOTICE) plan.push({ key: EXPIRED_REMINDER_KEY, kind: 'expired', beforeExpiryMs: 0 });
  return plan;
}

/**
 * One day's emails from its reminders. Today every reminder is one email; this is where a digest rule
 * (one email for a user's reminders of a day) and a spread of due times change the count.
 */
export function emailsAfterDigests(day: { warnings: number; expired: number }): number {
  return day.warnings + day.expired;
}

/** Every UTC day from today's for `days` days, with zeros where nothing is due. */
export async function forecast(
  db: Queryable,
  settings: Pick<Config, 'EXPIRY_REMINDERS' | 'EXPIRED_NOTICE'>,
  { now, days }: { now: Date; days: number },
): Promise<ForecastDay[]> {
  if (!Number.isInteger(days) || days < 1 || days > FORECAST_MAX_DAYS) {
    throw new RangeError(`days: ${days} is not a whole number from 1 to ${FORECAST_MAX_DAYS}`);
  }
  const from = new Date(Math.floor(now.getTime() / DAY_MS) * DAY_MS);
  const to = new Date(from.getTime() + days * DAY_MS);
  const counts = await countDueReminders(db, plannedReminders(settings), from, to);
  const byDate = new Map<string, DueCount[]>();
  for (const count of counts) byDate.set(count.date, [...(byDate.get(count.date) ?? []), count]);
  return Array.from({ length: days }, (_, i) => {
    const date = new Date(from.getTime() + i * DAY_MS).toISOString().slice(0, 10);
    const of = (kind: DueCount['kind']) => byDate.get(date)?.find((c) => c.kind === kind)?.count ?? 0;
    const day = { date, warnings: of('warning'), expired: of('expired') };
    return { ...day, emails: emailsAfterDigests(day) };
  });
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
