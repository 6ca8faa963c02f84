/**
 * The reminder plan on its own (src/tokenExpiry/plan.ts is plain code): which reminders a token gets,
 * when each falls due, in what order, and what a replan changes. The workflow test runs it on the server;
 * this one is quick enough to run for every mutant (npm run mutate).
 */
import { loadConfig } from '../src/config';
import { DROPPED_FROM_PLAN, type ReminderStatus } from '../src/tokenExpiry/contract';
import { initialStatus, invalidPlan, planReminders, replanReminders } from '../src/tokenExpiry/plan';

const DAY = 86_400_000;
const expiresAt = '2026-03-01T12:00:00.000Z';
const input = (EXPIRY_REMINDERS: string, expiredNotice: boolean) => ({
  instance: 'test',
  tokenId: '7',
  createdAt: '2026-01-01T00:00:00.000Z',
  expiresAt,
  reminders: loadConfig({ EXPIRY_REMINDERS }).EXPIRY_REMINDERS,
  expiredNotice,
});

test('each warning falls due its offset before the expiry, and the expired notice at it, earliest first', () => {
  expect(planReminders(input('1d,7d,12h', true))).toEqual([
    { key: '7d', kind: 'warning', dueAt: new Date(Date.parse(expiresAt) - 7 * DAY).toISOString() },
    { key: '1d', kind: 'warning', dueAt: '2026-02-28T12:00:00.000Z' },
    { key: '12h', kind: 'warning', dueAt: '2026-03-01T00:00:00.000Z' },
    { key: 'expired', kind: 'expired', dueAt: expiresAt },
  ]);
});

test('without the expired notice there is none, and the warnings keep their order', () => {
  expect(planReminders(input('30d,1d', false)).map((r) => [r.key, r.kind, r.dueAt])).toEqual([
    ['30d', 'warning', '2026-01-30T12:00:00.000Z'],
    ['1d', 'warning', '2026-02-28T12:00:00.000Z'],
  ]);
});

test('sorted by due time even when the reminders come smallest first', () => {
  const reminders = [
    { key: '1h', beforeExpiryMs: 3_600_000 },
    { key: '2d', beforeExpiryMs: 2 * DAY },
    { key: '3h', beforeExpiryMs: 3 * 3_600_000 },
  ];
  expect(planReminders({ ...input('1d', true), reminders }).map((r) => r.key)).toEqual(['2d', '3h', '1h', 'expired']);
});

test('due times the owner\'s waking hours moved are taken as given; warnings moved to one time keep the longest lead first', () => {
  const wakingDueAt = { '1d': '2026-02-27T16:59:00.000Z', '12h': '2026-02-27T16:59:00.000Z', expired: '2026-03-02T08:00:00.000Z' };
  expect(planReminders({ ...input('7d,1d,12h', true), wakingDueAt }).map((r) => [r.key, r.dueAt])).toEqual([
    ['7d', '2026-02-22T12:00:00.000Z'],
    ['1d', '2026-02-27T16:59:00.000Z'],
    ['12h', '2026-02-27T16:59:00.000Z'],
    ['expired', '2026-03-02T08:00:00.000Z'],
  ]);
});

test('a replan\'s moved due times must name reminders of its plan, as ISO UTC times', () => {
  const plan = { reminders: input('1d', true).reminders, expiredNotice: true };
  expect(invalidPlan({ ...plan, wakingDueAt: { '1d': '2026-02-27T16:59:00.000Z', expired: '2026-03-02T08:00:00.000Z' } }, input('1d', true).createdAt)).toBeNull();
  expect(invalidPlan({ ...plan, wakingDueAt: { '3d': '2026-02-27T16:59:00.000Z' } }, input('1d', true).createdAt)).toBe('wakingDueAt: "3d" is not a reminder of this plan');
  expect(invalidPlan({ ...plan, wakingDueAt: { '1d': 'Friday' } }, input('1d', true).createdAt)).toBe('wakingDueAt: 1d: "Friday" is not an ISO 8601 UTC time');
});

test('the status a run starts with: reminders due before the token was created are skipped, the next is the first of the rest', () => {
  const status = initialStatus({ ...input('90d,7d', true), createdAt: '2026-01-15T00:00:00.000Z' });
  expect(status.reminders.map((r) => [r.key, r.outcome ?? 'waiting', r.reason ?? ''])).toEqual([
    ['90d', 'skipped', 'created-inside-window'],
    ['7d', 'waiting', ''],
    ['expired', 'waiting', ''],
  ]);
  expect([status.state, status.nextReminder, status.nextDueAt]).toEqual(['waiting', '7d', '2026-02-22T12:00:00.000Z']);
});

describe('a replan', () => {
  const settled = (r: ReminderStatus) => r.outcome !== undefined;
  const keys = (reminders: ReminderStatus[]) => reminders.map((r) => r.key);
  const current = (): ReminderStatus[] => [
    { ...planReminders(input('7d', false))[0]!, outcome: 'sent', at: '2026-02-22T12:00:01.000Z' },
    ...planReminders(input('1d,12h', true)),
  ];

  test('keeps what was sent, drops what the plan no longer has, adds what is new', () => {
    const { reminders, added, dropped, moved } = replanReminders(current(), planReminders(input('3d,12h', true)), settled);
    expect([keys(added), keys(dropped), keys(moved)]).toEqual([['3d'], ['1d'], []]);
    expect(keys(reminders)).toEqual(['7d', '3d', '1d', '12h', 'expired']);
    expect(reminders.find((r) => r.key === '7d')?.outcome).toBe('sent');
  });

  test('a lead time turned back on comes back for a run that dropped it; one still off stays dropped and is not dropped twice', () => {
    const { reminders } = replanReminders(current(), planReminders(input('12h', true)), settled);
    for (const r of reminders) if (r.key === '1d') Object.assign(r, { outcome: 'skipped', reason: DROPPED_FROM_PLAN });

    const again = replanReminders(reminders, planReminders(input('1d,12h', true)), settled);
    expect([keys(again.added), keys(again.dropped), keys(again.moved)]).toEqual([['1d'], [], []]);
    expect(again.reminders.find((r) => r.key === '1d')).toEqual({ key: '1d', kind: 'warning', dueAt: '2026-02-28T12:00:00.000Z' });

    const stillOff = replanReminders(reminders, planReminders(input('12h', false)), settled);
    expect([keys(stillOff.added), keys(stillOff.dropped)]).toEqual([[], ['expired']]);
    expect(stillOff.reminders.find((r) => r.key === '1d')?.reason).toBe(DROPPED_FROM_PLAN);
  });
});
