/**
 * A user's reminder preferences through the HTTP API, as the registry's backend manages them: shown with the
 * operator's settings as defaults, changed field by field, refused whole when any field is wrong, reset.
 */
import { TestSystem } from './helpers/system';

const SERVICE_TOKEN = 'registry-service-token-7f3a9c1e';
const system = TestSystem.use();
let base: string;

beforeEach(async () => {
  base = `${await system.api(system.config({ API_AUTH_TOKEN: SERVICE_TOKEN }))}/api/v1/me/expiry/preferences`;
});

async function call(method: string, user: string, body?: unknown) {
  const res = await fetch(base, {
    method,
    headers: {
      authorization: `Bearer ${SERVICE_TOKEN}`,
      'x-registry-user': user,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

const stored = async () => (await system.db.query('SELECT * FROM user_preferences ORDER BY user_id')).rows;

test('a user who never chose gets the operator\'s settings, and the menu they may choose from', async () => {
  const { login } = await system.newUser();
  expect(await call('GET', login)).toEqual({
    status: 200,
    body: {
      preferences: { reminders: null, expired_notice: null, time_zone: null, waking_hours: null, working_days: null },
      effective: { reminders: ['7d', '1d'], expired_notice: true, time_zone: null, waking_hours: null, working_days: null },
      menu: ['30d', '14d', '7d', '3d', '1d', '12h'],
    },
  });
});

test('a change applies only the fields it names; null goes back to the default; DELETE forgets them all', async () => {
  const { login, id } = await system.newUser();
  const changed = await call('PUT', login, {
    preferences: { reminders: ['12h', '3d', '3d'], time_zone: 'Europe/Berlin', waking_hours: '09:00-18:00', working_days: ['fri', 'mon', 'tue', 'wed', 'thu'] },
  });
  expect(changed.status).toBe(200);
  expect(changed.body.effective).toEqual({
    reminders: ['3d', '12h'],
    expired_notice: true,
    time_zone: 'Europe/Berlin',
    waking_hours: '09:00-18:00',
    working_days: ['mon', 'tue', 'wed', 'thu', 'fri'],
  });
  const off = await call('PUT', login, { preferences: { expired_notice: false, reminders: null } });
  expect(off.body.preferences).toMatchObject({ reminders: null, expired_notice: false, time_zone: 'Europe/Berlin' });
  expect(off.body.effective.reminders).toEqual(['7d', '1d']);
  expect(await stored()).toEqual([expect.objectContaining({ user_id: id, expired_notice: false, time_zone: 'Europe/Berlin' })]);

  const forgotten = await call('DELETE', login);
  expect(forgotten.status).toBe(200);
  expect(forgotten.body.preferences).toEqual({ reminders: null, expired_notice: null, time_zone: null, waking_hours: null, working_days: null });
  expect(await stored()).toEqual([]);
});

test('a time zone alone (all day, every day) keeps today\'s plan: no waking hours in effect', async () => {
  const { login } = await system.newUser();
  const { body } = await call('PUT', login, { preferences: { time_zone: 'Asia/Tokyo' } });
  expect(body.preferences.time_zone).toBe('Asia/Tokyo');
  expect(body.effective).toMatchObject({ time_zone: null, waking_hours: null });
});

describe('bad input: 422 naming the field, and nothing stored', () => {
  test.each([
    [{ reminders: ['2d'] }, 'preferences.reminders: 2d is not on the menu (choose from 30d, 14d, 7d, 3d, 1d, 12h)'],
    [{ reminders: ['soon'] }, 'preferences.reminders: "soon" is not a duration (use e.g. 7d, 12h, 30m, 45s)'],
    [{ time_zone: 'Europe/Atlantis' }, 'preferences.time_zone: "Europe/Atlantis" is not an IANA time zone (use e.g. Europe/Berlin, America/New_York, UTC)'],
    [{ time_zone: '+01:00' }, 'preferences.time_zone: "+01:00" is not an IANA time zone'],
    [{ time_zone: 'UTC', waking_hours: '18:00-09:00' }, 'preferences.waking_hours: 18:00-09:00 is an empty window'],
    [{ time_zone: 'UTC', waking_hours: '09:00-09:00' }, 'preferences.waking_hours: 09:00-09:00 is an empty window'],
    [{ time_zone: 'UTC', waking_hours: '9am-5pm' }, 'preferences.waking_hours: "9am-5pm" is not a window of the day (use e.g. 09:00-18:00)'],
    [{ time_zone: 'UTC', working_days: [] }, 'preferences.working_days: no days is an empty window'],
    [{ time_zone: 'UTC', working_days: ['someday'] }, 'preferences.working_days: "someday": not a weekday'],
    [{ waking_hours: '09:00-18:00' }, 'preferences.waking_hours: waking hours and working days need a time zone'],
    [{ reminders: ['1d'], time_zone: 'Nowhere' }, 'preferences.time_zone: "Nowhere" is not an IANA time zone'],
    [{ expired_notice: 'yes' }, 'preferences.expired_notice: '],
    [{ colour: 'blue' }, 'preferences: unknown field "colour"'],
  ])('%j', async (preferences, detail) => {
    const { login } = await system.newUser();
    await call('PUT', login, { preferences: { reminders: ['3d'] } });
    const before = await stored();
    const refused = await call('PUT', login, { preferences });
    expect(refused.status).toBe(422);
    expect(refused.body.errors.map((e: { detail: string }) => e.detail).join('\n')).toContain(detail);
    expect(await stored()).toEqual(before);
  });

  test('clearing the time zone while waking hours stay is refused', async () => {
    const { login } = await system.newUser();
    await call('PUT', login, { preferences: { time_zone: 'UTC', waking_hours: '08:00-20:00' } });
    const refused = await call('PUT', login, { preferences: { time_zone: null } });
    expect(refused.status).toBe(422);
    expect(refused.body.errors[0].detail).toMatch(/^preferences\.time_zone: waking hours and working days need a time zone/);
  });
});

test('the OpenAPI document lists the preference endpoints and their schemas', async () => {
  const doc = (await (await fetch(base.replace(/\/v1\/.*$/, '/openapi.json'))).json()) as any;
  expect(Object.keys(doc.paths['/api/v1/me/expiry/preferences'])).toEqual(['get', 'put', 'delete']);
  expect(doc.components.schemas.ExpiryPreferenceChange.properties).toHaveProperty('waking_hours');
  expect(doc.components.schemas.ExpiryPreferences.properties).toHaveProperty('effective');
});
