/**
 * The dev stack's mail sink as a developer reads it: real sends through the postmark client, then the
 * sink's root page in headless Chromium, newest first, each message opening to its rendered HTML body
 * and its text body. Takes the docs' screenshots (test/helpers/chromium.ts says where it goes).
 */
import path from 'node:path';
import { createPostmarkMailer } from '../src/email/postmarkMailer';
import { renderReminderEmail } from '../src/email/reminderEmail';
import { startFakePostmark, type FakePostmark } from '../scripts/devtools/fakePostmark';
import { launchChromium, SCREENSHOTS, type Chromium } from './helpers/chromium';
import { rawRequest } from './helpers/rawHttp';

jest.setTimeout(60_000);

const DAY_MS = 86_400_000;
let postmark: FakePostmark;
let browser: Chromium;

beforeAll(async () => {
  // As ./scripts/dev runs it: any token is accepted.
  postmark = await startFakePostmark({ acceptAnyToken: true });
  browser = await launchChromium('mail-viewer');
});

afterAll(async () => {
  await browser?.close();
  await postmark?.close();
});

async function sendReminder(to: string, tokenName: string, daysLeft: number, lastUsedAt: Date | null, tag: string) {
  const now = new Date();
  const email = renderReminderEmail({
    registryName: 'crates.io',
    registryUrl: 'https://crates.io',
    choices: { preferencesUrl: 'https://crates.io/settings/tokens', unsubscribeUrl: null, warningsOff: false },
    login: to.split('@')[0]!,
    token: {
      id: '42',
      name: tokenName,
      crateScopes: ['serde*'],
      endpointScopes: ['publish-update'],
      expiresAt: new Date(now.getTime() + daysLeft * DAY_MS),
      lastUsedAt,
    },
    now,
  });
  const mailer = createPostmarkMailer({ serverToken: 'dev', apiUrl: postmark.url, timeoutSeconds: 5 });
  await mailer.send({ from: 'crates.io <noreply@crates.io>', to, ...email, tag, dedupeKey: `token-expiry:42:${tag}`, metadata: { token_id: '42' } });
}

test('lists received messages newest first and opens one to its HTML and text bodies', async () => {
  await sendReminder('alice@example.com', 'laptop', 7, new Date(Date.now() - 3 * DAY_MS), 'token-expiry-warning');
  // Markup in a token name must show as text in the list, and stay inert in the email.
  await sendReminder('bob@example.com', '<img src=x onerror=alert(1)> ci-publish', 1, null, 'token-expiry-warning');

  await browser.withPage('inbox', async (page) => {
    await page.goto(`${postmark.url}/`);
    const rows = page.locator('tbody tr');
    await rows.first().waitFor();
    expect(await rows.count()).toBe(2);
    expect(await rows.nth(0).locator('td').nth(1).innerText()).toBe('bob@example.com');
    expect(await rows.nth(0).locator('td').nth(2).innerText()).toBe(
      'crates.io: your API token "<img src=x onerror=alert(1)> ci-publish" expires tomorrow',
    );
    expect(await rows.nth(0).locator('td').nth(3).innerText()).toBe('token-expiry-warning');
    expect(await rows.nth(0).locator('td').nth(0).innerText()).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(await rows.nth(1).locator('td').nth(1).innerText()).toBe('alice@example.com');
    await page.setViewportSize({ width: 1200, height: 240 });
    await page.screenshot({ path: path.join(SCREENSHOTS, 'mail-viewer.png') });

    await rows.nth(1).getByRole('link').click();
    await page.waitForURL(/\/view\//);
    // The HTML body, laid out as a mail client would show it: its greeting and link text are on screen.
    const email = page.frameLocator('iframe[title="HTML body"]');
    await email.getByText('Hello alice,').waitFor();
    await email.getByRole('link', { name: 'Manage your API tokens' }).waitFor();
    await email.getByText(/^Last used 3 days ago/).waitFor();
    expect(await page.locator('pre').innerText()).toContain('Your crates.io API token "laptop" expires in 7 days.');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'mail-viewer-message.png'), fullPage: true });
  });

  // An HTML body with a script of its own: the frame shows it without running it.
  const mailer = createPostmarkMailer({ serverToken: 'dev', apiUrl: postmark.url, timeoutSeconds: 5 });
  await mailer.send({
    from: 'crates.io <noreply@crates.io>',
    to: 'carol@example.com',
    subject: 'scripted',
    textBody: 'scripted',
    htmlBody: '<p>Hello carol,</p><script>alert("ran"); parent.document.title = "ran";</script>',
    tag: 'test',
    dedupeKey: 'scripted',
    metadata: {},
  });
  await browser.withPage('inert-markup', async (page) => {
    const dialogs: string[] = [];
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    await page.goto(`${postmark.url}/`);
    await page.locator('tbody tr').first().getByRole('link', { name: 'scripted' }).click();
    await page.frameLocator('iframe[title="HTML body"]').getByText('Hello carol,').waitFor();
    expect(await page.title()).toBe('scripted');
    expect(dialogs).toEqual([]);
  });
});

test('still answers the Postmark API beside the pages, and says when a message is unknown', async () => {
  const search = await fetch(`${postmark.url}/messages/outbound?count=10&offset=0`, {
    headers: { Accept: 'application/json', 'X-Postmark-Server-Token': 'dev' },
  });
  expect(search.status).toBe(200);
  expect(((await search.json()) as { TotalCount: number }).TotalCount).toBe(postmark.sent.length);

  // Any URL: a malformed one is a 400, and the sink (the dev stack's mail viewer) keeps serving.
  for (const path of ['/view/%E0%A4%A', '/view/%', '/view/%ZZ']) {
    expect({ path, status: (await rawRequest(postmark.url, { method: 'GET', path })).status }).toEqual({ path, status: 400 });
  }
  expect((await rawRequest(postmark.url, { method: 'GET', path: '/%E0%A4%A' })).status).toBe(404);
  const unreadable = await rawRequest(postmark.url, { method: 'GET', path: 'http://[bad/' });
  expect(unreadable.status).toBe(400);
  expect((await fetch(`${postmark.url}/`)).status).toBe(200);

  const missing = await fetch(`${postmark.url}/view/no-such-id`);
  expect(missing.status).toBe(404);
  expect(await missing.text()).toContain('No message no-such-id here');
});
