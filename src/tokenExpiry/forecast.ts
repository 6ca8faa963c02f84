// `token-expiry forecast`: how many reminders fall due on each UTC day ahead, and how many emails they make.
import type { Config } from '../config';
import { countDueReminders, type DueCount, type PlannedReminder } from '../registry/forecast';
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

export type ForecastSettings = Pick<Config, 'EXPIRY_REMINDERS' | 'EXPIRED_NOTICE' | 'EXPIRY_DIGEST_WINDOW'>;

/**
 * The plan each waiting workflow has: the reminders in EXPIRY_REMINDERS and EXPIRED_NOTICE (a workflow
 * started before a change of these keeps its plan until `token-expiry replan`, so it is counted with
 * today's values), each with how long after a user's first one the others still join its digest: a
 * warning's early allowance, or the window an expired notice waits (digest.ts).
 */
export function plannedReminders(settings: ForecastSettings): PlannedReminder[] {
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
  const counts = await countDueReminders(db, plannedReminders(settings), { from, to, perEmail: DIGEST_MAX_TOKENS });
  const byDate = new Map<string, DueCount[]>();
  for (const count of counts) byDate.set(count.date, [...(byDate.get(count.date) ?? []), count]);
  return Array.from({ length: days }, (_, i) => {
    const date = new Date(from.getTime() + i * DAY_MS).toISOString().slice(0, 10);
    const of = (kind: DueCount['kind']) => byDate.get(date)?.find((c) => c.kind === kind);
    const emails = (of('warning')?.emails ?? 0) + (of('expired')?.emails ?? 0);
    return { date, warnings: of('warning')?.count ?? 0, expired: of('expired')?.count ?? 0, emails };
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
