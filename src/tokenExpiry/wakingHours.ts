// A user's waking hours (time zone, daily window, working days) and the instants inside them. Run by the client
// and the forecast, never by the workflow: its results reach the workflow as dates (TokenExpiryInput.wakingDueAt),
// so that a newer time zone database on a worker cannot change a plan that a history already recorded.

/** ISO weekdays: 1 is Monday, 7 is Sunday. */
export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface WakingHours {
  /** An IANA time zone name, e.g. Europe/Berlin. */
  timeZone: string;
  /** Minutes after local midnight: the window is [startMinute, endMinute], both ends allowed; endMinute may be 1440. */
  startMinute: number;
  endMinute: number;
  /** Non-empty. */
  days: readonly Weekday[];
}

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

interface LocalTime {
  /** The local calendar day, as a UTC midnight (its weekday and arithmetic are plain UTC ones). */
  dayMs: number;
  /** Milliseconds since local midnight. */
  msOfDay: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, format);
  }
  return format;
}

/** The wall-clock time in `timeZone` at instant `t`, as if it were UTC (so offset = result - t). */
function wallClockMs(t: number, timeZone: string): number {
  const parts: Record<string, number> = {};
  for (const { type, value } of formatter(timeZone).formatToParts(t)) parts[type] = Number(value);
  const ms = ((t % 1000) + 1000) % 1000;
  return Date.UTC(parts.year as number, (parts.month as number) - 1, parts.day, parts.hour, parts.minute, parts.second) + ms;
}

function localTime(t: number, timeZone: string): LocalTime {
  const wall = wallClockMs(t, timeZone);
  const dayMs = Math.floor(wall / DAY_MS) * DAY_MS;
  return { dayMs, msOfDay: wall - dayMs };
}

function weekdayOf(dayMs: number): Weekday {
  // getUTCDay: 0 is Sunday.
  return WEEKDAYS[(new Date(dayMs).getUTCDay() + 6) % 7] as Weekday;
}

/**
 * The instants at which the wall clock shows `wall` (as if UTC): one, or two in a repeated hour (earliest first),
 * or none in a skipped hour, where the instants just around the gap stand in (`gap`).
 */
function instantsOf(wall: number, timeZone: string): { instants: number[]; gap: boolean } {
  // Offsets within a day of `wall` cover both sides of any transition near it.
  const offsets = new Set([wall - DAY_MS, wall, wall + DAY_MS].map((t) => wallClockMs(t, timeZone) - t));
  const instants = [...offsets].map((offset) => wall - offset).filter((t) => wallClockMs(t, timeZone) === wall);
  if (instants.length > 0) return { instants: [...new Set(instants)].sort((a, b) => a - b), gap: false };
  // A skipped wall time: the candidates, which show a time after the gap (later offset) and before it.
  return { instants: [...offsets].map((offset) => wall - offset).sort((a, b) => a - b), gap: true };
}

function allowedDay(hours: WakingHours, dayMs: number): boolean {
  return hours.days.includes(weekdayOf(dayMs));
}

/** Whether `t` falls inside the waking hours (both ends of the daily window count as inside). */
function isWakingTime(t: number, hours: WakingHours): boolean {
  const { dayMs, msOfDay } = localTime(t, hours.timeZone);
  // A window that ends at 24:00 ends at the next day's midnight.
  if (msOfDay === 0 && hours.endMinute * MINUTE_MS === DAY_MS && allowedDay(hours, dayMs - DAY_MS)) return true;
  return allowedDay(hours, dayMs) && msOfDay >= hours.startMinute * MINUTE_MS && msOfDay <= hours.endMinute * MINUTE_MS;
}

/**
 * A warning moved to the end of a window is due this long before it (or at the window's start, if shorter): the
 * send's own latency then never takes it past the window's end.
 */
export const WINDOW_END_MARGIN_MS = 60_000;

/**
 * The latest instant at or before `t` inside the waking hours: `t` itself when it is inside, otherwise the end of
 * the previous window, less WINDOW_END_MARGIN_MS. A warning goes out then: earlier, never later.
 */
export function latestWakingAtOrBefore(t: number, hours: WakingHours): number {
  if (isWakingTime(t, hours)) return t;
  const { dayMs } = localTime(t, hours.timeZone);
  // Eight days back always reach an allowed day (days is not empty); the first end not after t is the answer.
  for (let back = 0; back <= 8; back++) {
    const day = dayMs - back * DAY_MS;
    if (!allowedDay(hours, day)) continue;
    const { instants, gap } = instantsOf(day + hours.endMinute * MINUTE_MS, hours.timeZone);
    // A repeated end: its later instant; a skipped one: the instant before the gap.
    const candidates = (gap ? instants.slice(0, 1) : instants).filter((i) => i <= t);
    const end = candidates[candidates.length - 1];
    if (end !== undefined) return end - Math.min(WINDOW_END_MARGIN_MS, (hours.endMinute - hours.startMinute) * MINUTE_MS);
  }
  throw new Error(`no waking hours in the week before ${new Date(t).toISOString()}: days must not be empty`);
}

/**
 * The earliest instant at or after `t` inside the waking hours: `t` itself when it is inside, otherwise the start
 * of the next window. An expired notice, which cannot go out early, goes out then.
 */
export function earliestWakingAtOrAfter(t: number, hours: WakingHours): number {
  if (isWakingTime(t, hours)) return t;
  const { dayMs } = localTime(t, hours.timeZone);
  for (let ahead = 0; ahead <= 8; ahead++) {
    const day = dayMs + ahead * DAY_MS;
    if (!allowedDay(hours, day)) continue;
    const { instants, gap } = instantsOf(day + hours.startMinute * MINUTE_MS, hours.timeZone);
    // A repeated start: its earlier instant; a skipped one: the instant after the gap.
    const start = (gap ? instants.slice(-1) : instants).find((i) => i >= t);
    if (start !== undefined) return start;
  }
  throw new Error(`no waking hours in the week after ${new Date(t).toISOString()}: days must not be empty`);
}

/** Whether `timeZone` is an IANA name this runtime knows; its canonical spelling if so. */
export function canonicalTimeZone(timeZone: string): string | null {
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(timeZone)) return null;
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone }).resolvedOptions().timeZone;
  } catch {
    return null;
  }
}
