// A user's reminder preferences: what may be stored, how a change is checked, and the plan they make with the
// operator's settings as the default for every field the user never chose. Shared by the CLI and the HTTP API.
import type { Config } from '../config';
import { DURATION_HINT, formatDuration, parseDuration } from '../duration';
import type { ReminderSpec } from '../tokenExpiry/contract';
import { canonicalTimeZone, WEEKDAYS, type WakingHours, type Weekday } from '../tokenExpiry/wakingHours';

/** What a user chose; null in a field: the operator's default. */
export interface StoredPreferences {
  /** Lead times by key (e.g. 3d), each on EXPIRY_REMINDER_MENU; [] for no warnings. */
  reminders: string[] | null;
  expiredNotice: boolean | null;
  timeZone: string | null;
  /** Minutes after local midnight; only with a time zone. */
  wakingHours: { startMinute: number; endMinute: number } | null;
  workingDays: Weekday[] | null;
}

export const NO_PREFERENCES: StoredPreferences = { reminders: null, expiredNotice: null, timeZone: null, wakingHours: null, workingDays: null };

/** A change as the CLI and the API ask for it: an absent field stays, null goes back to the default. */
export interface PreferenceChange {
  reminders?: string[] | null;
  expiredNotice?: boolean | null;
  timeZone?: string | null;
  /** "09:00-18:00". */
  wakingHours?: string | null;
  /** Weekday names: mon ... sun. */
  workingDays?: string[] | null;
}

type PreferenceField = keyof PreferenceChange;

export interface PreferenceIssue {
  field: PreferenceField;
  message: string;
}

export type PreferenceSettings = Pick<Config, 'EXPIRY_REMINDERS' | 'EXPIRED_NOTICE' | 'EXPIRY_REMINDER_MENU'>;

/** What a token of this user is planned with: the lead times, the expired notice, and when they may arrive. */
export interface UserPlan {
  reminders: ReminderSpec[];
  expiredNotice: boolean;
  /** Null: any hour, as before preferences (no time zone chosen, or a window of all day every day). */
  wakingHours: WakingHours | null;
}

const CLOCK = /^([01][0-9]|2[0-3]):([0-5][0-9])$|^(24):(00)$/;

function minuteOf(text: string): number | null {
  const match = CLOCK.exec(text);
  if (!match) return null;
  return Number(match[1] ?? match[3]) * 60 + Number(match[2] ?? match[4]);
}

export function formatWakingHours({ startMinute, endMinute }: { startMinute: number; endMinute: number }): string {
  const clock = (minute: number) => `${String(Math.floor(minute / 60)).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')}`;
  return `${clock(startMinute)}-${clock(endMinute)}`;
}

/** "mon-fri", "mon,wed,fri" or "sat-sun" on the command line; the API takes the list. */
export function parseDayList(text: string): string[] {
  return text.split(',').flatMap((part) => {
    const [from, to] = part.trim().toLowerCase().split('-');
    const start = WEEKDAYS.indexOf(from as Weekday);
    const end = WEEKDAYS.indexOf(to as Weekday);
    if (to === undefined || start < 0 || end < start) return [part.trim()];
    return WEEKDAYS.slice(start, end + 1);
  });
}

/**
 * `current` with `change` applied, or every problem with it (nothing is stored then): lead times not on the
 * menu, an unknown time zone, an empty window, waking hours or days without a time zone.
 */
export function applyChange(
  current: StoredPreferences,
  change: PreferenceChange,
  settings: PreferenceSettings,
): { preferences: StoredPreferences } | { issues: PreferenceIssue[] } {
  const issues: PreferenceIssue[] = [];
  const next: StoredPreferences = { ...current };
  const menu = settings.EXPIRY_REMINDER_MENU;
  const menuKeys = menu.map((r) => r.key).join(', ');

  if (change.reminders !== undefined) {
    if (change.reminders === null) next.reminders = null;
    else {
      const chosen: ReminderSpec[] = [];
      for (const text of change.reminders) {
        const ms = typeof text === 'string' ? parseDuration(text) : null;
        const onMenu = menu.find((r) => r.beforeExpiryMs === ms);
        if (ms === null) issues.push({ field: 'reminders', message: `${JSON.stringify(text)} is not a duration (${DURATION_HINT})` });
        else if (!onMenu) issues.push({ field: 'reminders', message: `${formatDuration(ms)} is not on the menu (choose from ${menuKeys})` });
        else if (!chosen.includes(onMenu)) chosen.push(onMenu);
      }
      next.reminders = chosen.sort((a, b) => b.beforeExpiryMs - a.beforeExpiryMs).map((r) => r.key);
    }
  }
  if (change.expiredNotice !== undefined) next.expiredNotice = change.expiredNotice;
  if (change.timeZone !== undefined) {
    const zone = change.timeZone === null ? null : canonicalTimeZone(change.timeZone);
    if (change.timeZone !== null && zone === null) {
      issues.push({ field: 'timeZone', message: `${JSON.stringify(change.timeZone)} is not an IANA time zone (use e.g. Europe/Berlin, America/New_York, UTC)` });
    }
    next.timeZone = zone;
  }
  if (change.wakingHours !== undefined) {
    if (change.wakingHours === null) next.wakingHours = null;
    else {
      const [from = '', to = ''] = change.wakingHours.split('-').map((part) => part.trim());
      const startMinute = minuteOf(from);
      const endMinute = minuteOf(to);
      if (startMinute === null || endMinute === null || change.wakingHours.split('-').length !== 2) {
        issues.push({ field: 'wakingHours', message: `${JSON.stringify(change.wakingHours)} is not a window of the day (use e.g. 09:00-18:00)` });
      } else if (startMinute >= endMinute) {
        issues.push({ field: 'wakingHours', message: `${change.wakingHours} is an empty window: its start must come before its end, on the same day (e.g. 09:00-18:00)` });
      } else next.wakingHours = { startMinute, endMinute };
    }
  }
  if (change.workingDays !== undefined) {
    if (change.workingDays === null) next.workingDays = null;
    else {
      const unknown = change.workingDays.filter((day) => !WEEKDAYS.includes(day as Weekday));
      if (unknown.length > 0) {
        issues.push({ field: 'workingDays', message: `${unknown.map((d) => JSON.stringify(d)).join(', ')}: not a weekday (use ${WEEKDAYS.join(', ')})` });
      } else if (change.workingDays.length === 0) {
        issues.push({ field: 'workingDays', message: 'no days is an empty window: choose at least one day, or null for every day' });
      } else next.workingDays = WEEKDAYS.filter((day) => change.workingDays?.includes(day));
    }
  }
  if (issues.length === 0 && next.timeZone === null && (next.wakingHours !== null || next.workingDays !== null)) {
    const field = change.timeZone === null ? 'timeZone' : next.wakingHours !== null ? 'wakingHours' : 'workingDays';
    issues.push({ field, message: 'waking hours and working days need a time zone: set timeZone too (or clear them)' });
  }
  return issues.length > 0 ? { issues } : { preferences: next };
}

/** The operator's settings, for a user who never chose. */
export function defaultPlan(settings: Pick<Config, 'EXPIRY_REMINDERS' | 'EXPIRED_NOTICE'>): UserPlan {
  return { reminders: settings.EXPIRY_REMINDERS, expiredNotice: settings.EXPIRED_NOTICE, wakingHours: null };
}

/**
 * The plan a user's preferences make, the operator's settings filling every field they never chose. A chosen lead
 * time the operator has since taken off the menu is left out.
 */
export function userPlan(preferences: StoredPreferences | null, settings: PreferenceSettings): UserPlan {
  const base = defaultPlan(settings);
  if (!preferences) return base;
  const reminders =
    preferences.reminders === null
      ? base.reminders
      : settings.EXPIRY_REMINDER_MENU.filter((r) => preferences.reminders?.includes(r.key));
  const { timeZone, wakingHours, workingDays } = preferences;
  const window = { startMinute: wakingHours?.startMinute ?? 0, endMinute: wakingHours?.endMinute ?? 1440, days: workingDays ?? WEEKDAYS };
  // A time zone alone (all day, every day) changes nothing: the plan stays today's.
  const unbounded = window.startMinute === 0 && window.endMinute === 1440 && window.days.length === WEEKDAYS.length;
  return {
    reminders,
    expiredNotice: preferences.expiredNotice ?? base.expiredNotice,
    wakingHours: timeZone && !unbounded ? { timeZone, ...window } : null,
  };
}
