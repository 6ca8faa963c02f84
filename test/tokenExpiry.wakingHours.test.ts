/**
 * End to end on the time-skipping server and PostgreSQL: a user who chose 3d,12h, Europe/Berlin, 09:00-18:00
 * Monday to Friday, and a token expiring on a Sunday night. Each warning goes out inside the window and before its
 * nominal time (the 12h one on the Friday), and the expired notice at 09:00 on the Monday. The property test
 * (wakingHours.property.test.ts) covers a year of expiries; this one shows the plan reaches the workflow and runs.
 */
import { statusQuery, type TokenExpiryStatus } from '../src/tokenExpiry/contract';
import { TestSystem } from './helpers/system';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const system = TestSystem.use();

const berlin = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
const local = (iso: string) => berlin.format(new Date(iso));
function inWindow(iso: string): boolean {
  const parts = Object.fromEntries(berlin.formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
  const minute = Number(parts.hour) * 60 + Number(parts.minute);
  return ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'].includes(parts.weekday as string) && minute >= 9 * 60 && minute <= 18 * 60;
}

test('3d,12h in Berlin office hours: the warnings inside the window and early, the expired notice on Monday morning', async () => {
  const config = system.config({ EXPIRY_START_DELAY: 'false' });
  const tokens = system.tokens(config);
  const user = await system.newUser();
  await system.preferences(config).update(user, {
    reminders: ['3d', '12h'],
    timeZone: 'Europe/Berlin',
    wakingHours: '09:00-18:00',
    workingDays: ['mon', 'tue', 'wed', 'thu', 'fri'],
  });
  // A Sunday, 23:30 in Berlin (22:30 UTC in winter), at least a week ahead.
  const now = await system.env.currentTimeMs();
  let expiry = Math.floor((now + 7 * DAY) / DAY) * DAY + 22 * HOUR + 30 * 60_000;
  while (new Date(expiry).getUTCDay() !== 0) expiry += DAY;
  const created = await tokens.create(user, { name: 'ci', expiresAt: new Date(expiry), crateScopes: null, endpointScopes: null });

  const status = await system.withWorker(config, async () => {
    const handle = system.env.client.workflow.getHandle(created.workflowId as string);
    const planned = await handle.query(statusQuery);
    expect(planned.reminders.map((r) => [r.key, local(r.dueAt)])).toEqual([
      ['3d', 'Thu 17:59'],
      ['12h', 'Fri 17:59'],
      ['expired', 'Mon 09:00'],
    ]);
    return (await handle.result()) as TokenExpiryStatus;
  });

  expect(status.reminders.map((r) => [r.key, r.outcome])).toEqual([
    ['3d', 'sent'],
    ['12h', 'sent'],
    ['expired', 'sent'],
  ]);
  for (const reminder of status.reminders) {
    expect(inWindow(reminder.at as string)).toBe(true);
    if (reminder.kind === 'warning') {
      const lead = reminder.key === '3d' ? 3 * DAY : 12 * HOUR;
      expect(Date.parse(reminder.at as string)).toBeLessThanOrEqual(expiry - lead);
    } else {
      expect(Date.parse(reminder.at as string)).toBeGreaterThanOrEqual(expiry);
    }
  }
  const sent = system.postmark.sent.filter((m) => m.Metadata.token_id === created.token.id);
  expect(sent).toHaveLength(3);
});
