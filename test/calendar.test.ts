/**
 * The calendar feed: a user's active tokens as an iCalendar (RFC 5545) feed at a secret link, parsed with ical.js
 * (a real parser, not string matching): one event per token at its expiry, an alarm per lead time of the user's plan,
 * a UID that stays the same; a revoked or expired token drops out; a new link stops the old one.
 */
import type ICALModule from 'ical.js' with { 'resolution-mode': 'import' };
import { savePreferences } from '../src/db/preferences';
import { NO_PREFERENCES } from '../src/preferences/rules';
import { builtinWriter } from '../src/registry/builtin';
import { TEST_INSTANCE } from './helpers/database';
import { TestSystem } from './helpers/system';

// ical.js ships a CommonJS build beside its ES module; jest runs CommonJS.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const ICAL = require('ical.js') as typeof ICALModule;
const DAY = 86_400_000;
const SERVICE_TOKEN = 'registry-service-token-7f3a9c1e';
const system = TestSystem.use();
let base: string;

beforeEach(async () => {
  base = await system.api(system.config({ API_AUTH_TOKEN: SERVICE_TOKEN, API_PUBLIC_URL: 'https://expiry.example' }));
});

const asUser = (login: string, method: string) =>
  fetch(`${base}/api/v1/me/expiry/calendar`, {
    method,
    headers: { authorization: `Bearer ${SERVICE_TOKEN}`, 'x-registry-user': login },
  });

async function newLink(login: string): Promise<string> {
  const res = await asUser(login, 'POST');
  expect(res.status).toBe(200);
  const { calendar } = (await res.json()) as { calendar: { url: string } };
  expect(calendar.url).toMatch(/^https:\/\/expiry\.example\/calendar\/[A-Za-z0-9_-]{43}\.ics$/);
  return calendar.url.replace('https://expiry.example', base);
}

/** The feed as a calendar app reads it: parsed, its events by UID. */
async function subscribe(url: string) {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/calendar; charset=utf-8');
  const text = await res.text();
  expect(text.split('\r\n').every((line) => Buffer.byteLength(line) <= 75)).toBe(true);
  const calendar = new ICAL.Component(ICAL.parse(text));
  expect(calendar.getFirstPropertyValue('version')).toBe('2.0');
  return new Map(
    calendar.getAllSubcomponents('vevent').map((vevent) => {
      const event = new ICAL.Event(vevent);
      const alarms = vevent.getAllSubcomponents('valarm').map((alarm) => String(alarm.getFirstPropertyValue('trigger')));
      return [event.uid, { start: event.startDate.toJSDate().toISOString(), summary: event.summary, description: event.description, alarms }];
    }),
  );
}

test('one event per active token at its expiry, an alarm per lead time, a stable UID; revoked and expired ones drop out', async () => {
  const config = system.config();
  const tokens = system.tokens(config);
  const user = await system.newUser();
  const kept = await system.createToken(tokens, user, 30 * DAY);
  const odd = await tokens.create(user, { name: 'deploy, "prod"; ünïcödé and a long name that needs folding across lines', expiresAt: new Date(Date.now() + 60 * DAY), crateScopes: null, endpointScopes: null });
  const revoked = await system.createToken(tokens, user, 40 * DAY);
  await tokens.create(user, { name: 'never expires', expiresAt: null, crateScopes: null, endpointScopes: null });
  const expired = await builtinWriter.insertToken(system.db, { userId: user.id, hash: Buffer.from(`cal-${user.id}`), name: 'old', expiredAt: new Date(Date.now() - DAY), crateScopes: null, endpointScopes: null });
  const other = await system.createToken(tokens, await system.newUser(), 30 * DAY);

  const url = await newLink(user.login);
  const events = await subscribe(url);
  // The instance in the UID, as in workflow ids: two registries' feeds never share an event.
  const uid = (id: string) => `token-${TEST_INSTANCE}-${id}@crates.io`;
  expect([...events.keys()].sort()).toEqual([uid(kept.token.id), uid(odd.token.id), uid(revoked.token.id)].sort());
  expect(events.has(uid(expired.id))).toBe(false);
  expect(events.has(uid(other.token.id))).toBe(false);
  expect(events.get(uid(kept.token.id))).toMatchObject({
    start: new Date(Math.floor(kept.token.expiredAt!.getTime() / 1000) * 1000).toISOString(),
    summary: 'crates.io API token "ci" expires',
    alarms: ['-P7D', '-P1D'],
  });
  expect(events.get(uid(kept.token.id))!.description).toContain(`https://crates.io/settings/tokens/new?from=${kept.token.id}`);
  expect(events.get(uid(odd.token.id))!.summary).toBe('crates.io API token "deploy, "prod"; ünïcödé and a long name that needs folding across lines" expires');

  // The user's own lead times become the alarms; a revoked token is gone at the next refresh, with the same UIDs.
  // (Stored directly: no worker runs here to take the replan a change through the API sends.)
  await savePreferences(system.db, user.id, { ...NO_PREFERENCES, reminders: ['3d', '12h'] });
  await tokens.revoke(revoked.token.id);
  const refreshed = await subscribe(url);
  expect([...refreshed.keys()].sort()).toEqual([uid(kept.token.id), uid(odd.token.id)].sort());
  expect(refreshed.get(uid(kept.token.id))!.alarms).toEqual(['-P3D', '-PT12H']);
});

test('a new link stops the old one; turning the feed off stops it; a made-up link is a 404', async () => {
  const user = await system.newUser();
  const first = await newLink(user.login);
  const second = await newLink(user.login);
  expect((await fetch(first)).status).toBe(404);
  expect((await fetch(second)).status).toBe(200);
  expect((await asUser(user.login, 'DELETE')).status).toBe(204);
  expect((await fetch(second)).status).toBe(404);
  expect((await fetch(`${base}/calendar/${'A'.repeat(43)}.ics`)).status).toBe(404);
  expect((await fetch(`${base}/calendar/not-a-secret`)).status).toBe(404);
  const { rows } = await system.db.query('SELECT encode(secret_sha256, \'hex\') AS hash FROM calendar_feeds');
  expect(JSON.stringify(rows)).not.toContain(second.split('/').pop()!.replace('.ics', ''));
});
