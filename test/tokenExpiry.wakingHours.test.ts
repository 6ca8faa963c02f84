/**
 * End to end on the time-skipping server and PostgreSQL: a user who chose 3d,12h, Europe/Berlin, 09:00-18:00
 * Monday to Friday. A token expiring on a Sunday night: each warning goes out inside the window and before its
 * nominal time (the 12h one on the Friday), and the expired notice at 09:00 on the Monday. Then a year of that
 * user's tokens expiring on every weekday and hour, across both DST changes, digests on: every email went out
 * inside the window, no warning after its own nominal time, no notice before its expiry.
 */
import { listNotifications } from '../src/db/notifications';
import { statusQuery, type TokenExpiryStatus } from '../src/tokenExpiry/contract';
import type { CreatedToken } from '../src/tokens/service';
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

const BERLIN_OFFICE = { reminders: ['3d', '12h'], timeZone: 'Europe/Berlin', wakingHours: '09:00-18:00', workingDays: ['mon', 'tue', 'wed', 'thu', 'fri'] };

test('3d,12h in Berlin office hours: the warnings inside the window and early, the expired notice on Monday morning', async () => {
  const config = system.config({ EXPIRY_START_DELAY: 'false' });
  const tokens = system.tokens(config);
  const user = await system.newUser();
  await system.preferences(config).update(user, BERLIN_OFFICE);
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

test('a year of expiries on every weekday and hour, across both DST changes: every email inside the window, never late', async () => {
  const config = system.config({ EXPIRY_START_DELAY: 'false' });
  const tokens = system.tokens(config);
  const user = await system.newUser();
  await system.preferences(config).update(user, BERLIN_OFFICE);
  // Steps of 47 hours (prime to the 168 hours of a week): 168 expiries meet each (weekday, hour) of the week once,
  // over 329 days from a week ahead, so both of Berlin's DST changes fall among them; the minutes vary inside the hour.
  const start = Math.floor((await system.env.currentTimeMs()) / HOUR) * HOUR + 8 * DAY;
  const expiries = Array.from({ length: 168 }, (_, i) => start + i * 47 * HOUR + (i % 4) * 13 * 60_000);
  const created: CreatedToken[] = [];
  for (const [i, expiry] of expiries.entries()) {
    created.push(await tokens.create(user, { name: `ci-${i}`, expiresAt: new Date(expiry), crateScopes: null, endpointScopes: null }));
  }
  const seen = new Set(expiries.map((e) => `${new Date(e).getUTCDay()}:${new Date(e).getUTCHours()}`));
  expect(seen.size).toBe(168);

  // Each run's status dates its sends in workflow time; a digest member's email went at its leader's.
  const statuses = new Map<string, TokenExpiryStatus>();
  await system.withWorker(config, async () => {
    // One at a time: concurrent awaits make the test server skip time without bound.
    for (const c of created) statuses.set(c.token.id, await system.env.client.workflow.getHandle(c.workflowId as string).result());
  });

  const late: string[] = [];
  for (const [i, c] of created.entries()) {
    const rows = await listNotifications(system.db, c.token.id);
    // Both warnings moved to the same end of a window (the 12h one just before 09:00 on a Monday): one email, the
    // tighter, says it; the 3d is recorded as superseded, as for any two reminders due at once.
    const twelve = rows.find((r) => r.reminder === '12h');
    const merged = (r: (typeof rows)[number]) => r.reminder === '3d' && r.reason === 'superseded-by-12h' && r.dueAt.getTime() === twelve?.dueAt.getTime();
    const unsent = rows.filter((r) => r.status !== 'sent' && !merged(r));
    if (rows.length !== 3 || unsent.length > 0) {
      late.push(`${c.token.name} (expires ${local(new Date(expiries[i]!).toISOString())}): ${rows.map((r) => `${r.reminder} ${r.status} ${r.reason ?? ''} due ${local(r.dueAt.toISOString())}`).join('; ')}`);
      continue;
    }
    for (const row of rows.filter((r) => r.status === 'sent')) {
      const sentAt = statuses.get(row.sentByTokenId ?? c.token.id)!.reminders.find((r) => r.key === row.reminder)!.at!;
      const at = Date.parse(sentAt);
      const nominal = expiries[i]! - (row.reminder === '3d' ? 3 * DAY : row.reminder === '12h' ? 12 * HOUR : 0);
      const right = inWindow(sentAt) && (row.reminder === 'expired' ? at >= nominal : at <= nominal);
      if (!right) late.push(`${c.token.name} ${row.reminder}: nominal ${local(new Date(nominal).toISOString())}, sent ${local(sentAt)}`);
    }
  }
  expect(late).toEqual([]);
  // Each reminder sent went in exactly one email (digests fold some together).
  const mail = system.postmark.sent.filter((m) => m.To === user.email);
  const sent = (await Promise.all(created.map((c) => listNotifications(system.db, c.token.id)))).flat().filter((r) => r.status === 'sent');
  expect(mail.reduce((n, m) => n + Number(m.Metadata.tokens), 0)).toBe(sent.length);
  expect(sent.length).toBeGreaterThan(168 * 2);
}, 600_000);

test('expired notices of one digest still go inside the window: one waits only to its end, the later token\'s goes on Monday', async () => {
  const config = system.config({ EXPIRY_START_DELAY: 'false' });
  const tokens = system.tokens(config);
  const user = await system.newUser();
  await system.preferences(config).update(user, { ...BERLIN_OFFICE, reminders: [] });
  // A Friday 16:30 UTC (17:30 Berlin in winter, 18:30 in summer) a week or more ahead, and one 40 minutes later.
  const now = await system.env.currentTimeMs();
  let first = Math.floor((now + 7 * DAY) / DAY) * DAY + 16 * HOUR + 30 * 60_000;
  while (new Date(first).getUTCDay() !== 5 || !inWindow(new Date(first).toISOString())) first += DAY;
  const created: CreatedToken[] = [];
  for (const [name, expiresAt] of [['a', first], ['b', first + 40 * 60_000]] as const) {
    created.push(await tokens.create(user, { name, expiresAt: new Date(expiresAt), crateScopes: null, endpointScopes: null }));
  }
  const statuses: TokenExpiryStatus[] = [];
  await system.withWorker(config, async () => {
    // One at a time: concurrent awaits make the test server skip time without bound.
    for (const c of created) statuses.push(await system.env.client.workflow.getHandle(c.workflowId as string).result());
  });

  expect(statuses.map((s) => s.reminders.map((r) => [r.key, r.outcome, local(r.at as string)]))).toEqual([
    [['expired', 'sent', 'Fri 17:59']],
    [['expired', 'sent', 'Mon 09:00']],
  ]);
  expect(system.postmark.sent.filter((m) => m.To === user.email).map((m) => m.Metadata.tokens)).toEqual(['1', '1']);
});
