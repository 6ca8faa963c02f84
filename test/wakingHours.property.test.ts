/**
 * The waking-hours rule on its own (pure code): a user who chose 3d,12h, Europe/Berlin, 09:00-18:00 Monday to
 * Friday gets each warning inside that window and never after its nominal time, and the expired notice at the start
 * of the next window; checked for an expiry in every hour of a year (both DST changes in it) against the local time
 * as Intl reads it, and by hand on the days of the changes. Without waking hours the plan is today's exactly.
 */
import { loadConfig } from '../src/config';
import { TEST_INSTANCE } from './helpers/database';
import { applyChange, NO_PREFERENCES, userPlan, type UserPlan } from '../src/preferences/rules';
import { tokenExpiryInput } from '../src/tokenExpiry/client';
import { tokenPlan } from '../src/tokenExpiry/userPlan';
import { earliestWakingAtOrAfter, latestWakingAtOrBefore, WINDOW_END_MARGIN_MS, type WakingHours } from '../src/tokenExpiry/wakingHours';
import { planReminders } from '../src/tokenExpiry/plan';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const settings = loadConfig({ EXPIRY_REMINDERS: '7d,1d', EXPIRY_SPREAD: '15m', TOKEN_EXPIRY_INSTANCE: TEST_INSTANCE });

function berlinPlan(): UserPlan {
  const applied = applyChange(
    NO_PREFERENCES,
    { reminders: ['3d', '12h'], timeZone: 'Europe/Berlin', wakingHours: '09:00-18:00', workingDays: ['mon', 'tue', 'wed', 'thu', 'fri'] },
    settings,
  );
  if ('issues' in applied) throw new Error(JSON.stringify(applied.issues));
  return userPlan(applied.preferences, settings);
}

// The local time as Intl reads it, weekday included: not the module's own arithmetic.
const berlin = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', weekday: 'short', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
function inBerlinWindow(t: number): boolean {
  const parts = Object.fromEntries(berlin.formatToParts(t).map((p) => [p.type, p.value]));
  const seconds = Number(parts.hour) * 3600 + Number(parts.minute) * 60 + Number(parts.second) + (t % 1000) / 1000;
  return ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'].includes(parts.weekday as string) && seconds >= 9 * 3600 && seconds <= 18 * 3600;
}

/** Every whole UTC hour in (from, to], and `to`: Berlin's offsets are whole hours, so a window's start is one of them. */
function instantsBetween(from: number, to: number): number[] {
  const out: number[] = [];
  for (let t = Math.floor(from / HOUR) * HOUR + HOUR; t < to; t += HOUR) out.push(t);
  return [...out, to];
}

test('over a year of expiries in every hour: each warning inside the window, never after its nominal time, as late as the window allows', () => {
  const plan = berlinPlan();
  const start = Date.parse('2027-01-01T00:00:00.000Z');
  let moved = 0;
  for (let expiresAt = start; expiresAt < start + 365 * DAY; expiresAt += HOUR) {
    // A minute past the hour on odd hours: expiries are not all on the hour.
    const expiry = expiresAt + ((expiresAt / HOUR) % 2) * 37 * 60_000;
    const token = { tokenId: String(expiry / 60_000), createdAt: new Date(expiry - 90 * DAY).toISOString(), expiresAt: new Date(expiry).toISOString() };
    const input = { ...token, ...tokenPlan(token, plan, settings.EXPIRY_SPREAD) };
    const nominal = planReminders({ ...token, reminders: input.reminders, expiredNotice: input.expiredNotice, spreadMs: settings.EXPIRY_SPREAD });
    const planned = planReminders({ ...input, spreadMs: settings.EXPIRY_SPREAD });
    expect(planned.map((r) => r.key)).toEqual(['3d', '12h', 'expired']);
    for (const reminder of planned) {
      const due = Date.parse(reminder.dueAt);
      const own = Date.parse(nominal.find((r) => r.key === reminder.key)!.dueAt);
      if (due !== own) moved++;
      expect(inBerlinWindow(due)).toBe(true);
      if (reminder.kind === 'warning') {
        const lead = reminder.key === '3d' ? 3 * DAY : 12 * HOUR;
        expect(due).toBeLessThanOrEqual(own);
        expect(own).toBeLessThanOrEqual(expiry - lead);
        // Nothing later would do: no waking time between the window's end (the margin after it) and its own due time.
        if (due < own) {
          expect(inBerlinWindow(due + WINDOW_END_MARGIN_MS)).toBe(true);
          expect(inBerlinWindow(due + WINDOW_END_MARGIN_MS + 1)).toBe(false);
          expect(instantsBetween(due + WINDOW_END_MARGIN_MS, own).filter(inBerlinWindow)).toEqual([]);
        }
      } else {
        expect(due).toBeGreaterThanOrEqual(expiry);
        if (due > expiry) expect(instantsBetween(expiry - 1, due - 1).filter(inBerlinWindow)).toEqual([]);
      }
    }
  }
  // Most of a week lies outside 45 waking hours: most due times moved.
  expect(moved).toBeGreaterThan(365 * 24);
});

describe('the days of the DST changes in Berlin (2027-03-28 and 2027-10-31)', () => {
  const hours: WakingHours = { timeZone: 'Europe/Berlin', startMinute: 9 * 60, endMinute: 18 * 60, days: ['mon', 'tue', 'wed', 'thu', 'fri'] };
  const at = (iso: string) => Date.parse(iso);

  test('a warning due on the Sunday of a change goes out on the Friday before at 18:00, in that Friday\'s offset', () => {
    // Sunday 2027-03-28 20:00 CEST (UTC+2) -> Friday 2027-03-26 18:00 CET (UTC+1).
    expect(new Date(latestWakingAtOrBefore(at('2027-03-28T18:00:00Z'), hours)).toISOString()).toBe('2027-03-26T16:59:00.000Z');
    // Sunday 2027-10-31 22:00 CET -> Friday 2027-10-29 18:00 CEST.
    expect(new Date(latestWakingAtOrBefore(at('2027-10-31T21:00:00Z'), hours)).toISOString()).toBe('2027-10-29T15:59:00.000Z');
  });

  test('an expired notice on the Monday after a change goes out at 09:00 in the new offset', () => {
    expect(new Date(earliestWakingAtOrAfter(at('2027-03-29T05:00:00Z'), hours)).toISOString()).toBe('2027-03-29T07:00:00.000Z');
    expect(new Date(earliestWakingAtOrAfter(at('2027-11-01T06:00:00Z'), hours)).toISOString()).toBe('2027-11-01T08:00:00.000Z');
    // Saturday night across the change: Monday 09:00.
    expect(new Date(earliestWakingAtOrAfter(at('2027-10-30T23:30:00Z'), hours)).toISOString()).toBe('2027-11-01T08:00:00.000Z');
  });

  test('a window that ends inside the skipped or the repeated hour still gives a time inside it, never a later one', () => {
    const night: WakingHours = { timeZone: 'Europe/Berlin', startMinute: 60, endMinute: 150, days: ['sun'] };
    // 02:30 does not exist on 2027-03-28: the warning goes out before the gap (01:59:59 CET is the last instant inside).
    const spring = latestWakingAtOrBefore(at('2027-03-28T10:00:00Z'), night);
    expect(spring).toBeLessThanOrEqual(at('2027-03-28T01:00:00Z') - WINDOW_END_MARGIN_MS);
    // 02:30 happens twice on 2027-10-31: the later one (CET, 01:30Z), less the margin.
    expect(new Date(latestWakingAtOrBefore(at('2027-10-31T10:00:00Z'), night)).toISOString()).toBe('2027-10-31T01:29:00.000Z');
  });
});

test('without a time zone, or with one alone, a token\'s input is today\'s exactly', () => {
  const token = { id: '42', userId: '1', name: 'ci', createdAt: new Date('2027-01-01T00:00:00Z'), lastUsedAt: null, revoked: false, crateScopes: null, endpointScopes: null, expiredAt: new Date('2027-03-06T03:00:00Z'), expiryWorkflowStartedAt: null };
  const today = tokenExpiryInput(token, settings);
  expect(today).toEqual({
    instance: TEST_INSTANCE, tokenId: '42', createdAt: '2027-01-01T00:00:00.000Z', expiresAt: '2027-03-06T03:00:00.000Z',
    reminders: settings.EXPIRY_REMINDERS, expiredNotice: true, spreadMs: 15 * 60_000,
  });
  expect(tokenExpiryInput(token, settings, userPlan(NO_PREFERENCES, settings))).toEqual(today);
  expect(tokenExpiryInput(token, settings, userPlan({ ...NO_PREFERENCES, timeZone: 'Europe/Berlin' }, settings))).toEqual(today);
  // Waking hours that a time inside them keeps: nothing moves, nothing extra in the input.
  const allWeek = userPlan({ ...NO_PREFERENCES, timeZone: 'UTC', wakingHours: { startMinute: 0, endMinute: 1439 }, workingDays: null }, settings);
  expect(tokenExpiryInput({ ...token, expiredAt: new Date('2027-03-06T12:00:00Z') }, settings, allWeek)).not.toHaveProperty('wakingDueAt');
});
