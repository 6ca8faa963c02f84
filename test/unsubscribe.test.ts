/**
 * One-click unsubscribe (RFC 8058): warning emails carry List-Unsubscribe (a signed, dated HTTPS link) and
 * List-Unsubscribe-Post; POSTing the link turns off that user's warnings and nothing else; a forged or stale link is
 * refused and changes nothing; opening it in a browser (GET) changes nothing.
 */
import { checkUnsubscribe, UNSUBSCRIBE_LINK_MAX_AGE_MS, unsubscribeLink } from '../src/email/unsubscribe';
import { TestSystem } from './helpers/system';

const DAY = 86_400_000;
const SECRET = 'an-unsubscribe-secret-for-tests-0123456789';
const PREFERENCES = 'https://registry.example/me/expiry-warnings';
const settings = { API_PUBLIC_URL: 'https://expiry.example', UNSUBSCRIBE_SECRET: SECRET, PREFERENCES_URL: PREFERENCES };
const system = TestSystem.use();

describe('the signed link', () => {
  const now = new Date('2027-01-15T10:00:00Z');
  const link = new URL(unsubscribeLink('42', settings, now)!);

  test('verifies for its user, within its age', () => {
    expect(link.origin + link.pathname).toBe('https://expiry.example/unsubscribe');
    expect(checkUnsubscribe(link.searchParams, SECRET, new Date(now.getTime() + 30 * DAY))).toEqual({ userId: '42' });
  });

  test.each([
    ['another user', (q: URLSearchParams) => q.set('u', '43'), 'forged'],
    ['another time', (q: URLSearchParams) => q.set('t', String(Number(q.get('t')) + 1)), 'forged'],
    ['a changed signature', (q: URLSearchParams) => q.set('s', `${q.get('s')!.slice(0, -1)}A`), 'forged'],
    ['no signature', (q: URLSearchParams) => q.delete('s'), 'forged'],
    ['not a user id', (q: URLSearchParams) => q.set('u', '1 OR 1=1'), 'forged'],
  ])('%s is refused as forged', (_name, tamper, refused) => {
    const query = new URLSearchParams(link.searchParams);
    tamper(query);
    expect(checkUnsubscribe(query, SECRET, now)).toEqual({ refused });
  });

  test('another secret\'s signature is forged; an old link is stale', () => {
    expect(checkUnsubscribe(link.searchParams, `${SECRET}-rotated`, now)).toEqual({ refused: 'forged' });
    expect(checkUnsubscribe(link.searchParams, SECRET, new Date(now.getTime() + UNSUBSCRIBE_LINK_MAX_AGE_MS + 1000))).toEqual({ refused: 'stale' });
  });

  test('without UNSUBSCRIBE_SECRET there is no link', () => {
    expect(unsubscribeLink('42', { API_PUBLIC_URL: 'https://expiry.example', UNSUBSCRIBE_SECRET: undefined }, now)).toBeNull();
  });
});

describe('through the API and in the emails', () => {
  let base: string;
  // The API's clock: the time-skipping server's once a workflow has run (the emails are dated by it).
  let apiNow = () => new Date();
  const config = () => system.config({ API_AUTH_TOKEN: 'registry-service-token-7f3a9c1e', EXPIRY_START_DELAY: 'false', ...settings });

  beforeEach(async () => {
    apiNow = () => new Date();
    base = await system.api(config(), { now: () => apiNow() });
  });

  const local = (link: string) => link.replace('https://expiry.example', base);
  const oneClick = (link: string) =>
    fetch(local(link), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click' });
  const stored = async (userId: string) => (await system.db.query('SELECT reminders, expired_notice FROM user_preferences WHERE user_id = $1', [userId])).rows;

  test('warnings carry the headers, the expired notice does not; the header\'s link turns off warnings only', async () => {
    const cfg = config();
    const user = await system.newUser();
    const created = await system.createToken(system.tokens(cfg), user, 8 * DAY);
    await system.withWorker(cfg, async () => {
      await system.env.client.workflow.getHandle(created.workflowId!).result();
    });
    const serverNow = await system.env.currentTimeMs();
    apiNow = () => new Date(serverNow);
    const sent = system.postmark.sent.filter((m) => m.Metadata.token_id === created.token.id);
    const headers = (m: (typeof sent)[number]) => Object.fromEntries(m.Headers.map((h) => [h.Name, h.Value]));
    expect(sent.map((m) => m.Tag)).toEqual(['token-expiry-warning', 'token-expiry-warning', 'token-expiry-expired']);
    expect(headers(sent[0]!)['List-Unsubscribe-Post']).toBe('List-Unsubscribe=One-Click');
    expect(headers(sent[2]!)).not.toHaveProperty('List-Unsubscribe');
    const link = /^<(https:\/\/[^>]+)>$/.exec(headers(sent[1]!)['List-Unsubscribe']!)![1]!;
    // Every email links to the preferences; a warning's body carries its one-click link too, the notice none.
    for (const m of sent) expect([m.TextBody?.includes(PREFERENCES), m.HtmlBody?.includes(PREFERENCES)]).toEqual([true, true]);
    expect(sent[1]!.TextBody).toContain(link);
    expect(sent[2]!.TextBody).not.toContain('/unsubscribe?');
    expect(sent[2]!.TextBody).not.toContain('You turned early warnings off');

    // A browser (or a link scanner) opening it changes nothing.
    const page = await fetch(local(link));
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await stored(user.id)).toEqual([]);

    const answer = await oneClick(link);
    expect(answer.status).toBe(200);
    expect(await answer.text()).toContain('no more early warnings');
    expect(await stored(user.id)).toEqual([{ reminders: [], expired_notice: null }]);
  });

  test('after the link, a new token gets only the expired notice, and it says how to turn warnings on again', async () => {
    const cfg = config();
    const user = await system.newUser();
    expect((await oneClick(unsubscribeLink(user.id, settings, new Date())!)).status).toBe(200);
    const created = await system.createToken(system.tokens(cfg), user, 8 * DAY);
    await system.withWorker(cfg, async () => {
      await system.env.client.workflow.getHandle(created.workflowId!).result();
    });
    const sent = system.postmark.sent.filter((m) => m.Metadata.token_id === created.token.id);
    expect(sent.map((m) => m.Tag)).toEqual(['token-expiry-expired']);
    expect(sent[0]!.TextBody).toContain(`You turned early warnings off. To be warned before your next token expires, choose when again:\n${PREFERENCES}`);
    expect(sent[0]!.HtmlBody).toContain(`href="${PREFERENCES}"`);
  });

  test('a forged or stale link is refused, and nothing changes', async () => {
    const user = await system.newUser();
    const forged = new URL(unsubscribeLink(user.id, settings, new Date())!);
    forged.searchParams.set('u', String(Number(user.id) + 1000));
    const stale = unsubscribeLink(user.id, settings, new Date(Date.now() - UNSUBSCRIBE_LINK_MAX_AGE_MS - DAY))!;
    for (const [link, detail] of [[forged.toString(), 'is not valid'], [stale, 'has expired']] as const) {
      const refused = await oneClick(link);
      expect(refused.status).toBe(403);
      expect(JSON.stringify(await refused.json())).toContain(detail);
      expect((await fetch(local(link))).status).toBe(403);
    }
    expect(await stored(user.id)).toEqual([]);
  });
});
