import { DIGEST_MAX_TOKENS, renderDigestEmail, type DigestEmailInput } from '../src/email/digestEmail';
import { renderReminderEmail } from '../src/email/reminderEmail';

const DAY = 86_400_000;
const now = new Date('2026-02-15T10:00:07.000Z');
const choices = { preferencesUrl: 'https://crates.io/settings/tokens', unsubscribeUrl: null, warningsOff: false };

function token(id: number, overrides: Partial<DigestEmailInput['tokens'][number]> = {}): DigestEmailInput['tokens'][number] {
  return {
    id: String(id),
    name: `ci-${id}`,
    crateScopes: [`crate-${id}`],
    endpointScopes: null,
    expiresAt: new Date(now.getTime() + 7 * DAY + id * 10_000),
    lastUsedAt: null,
    ...overrides,
  };
}

function render(tokens: DigestEmailInput['tokens'], at = now) {
  return renderDigestEmail({ registryName: 'crates.io', registryUrl: 'https://crates.io/', login: 'ferris', tokens, now: at, choices });
}

test('one token: exactly the single-token email', () => {
  const only = token(1);
  expect(render([only])).toEqual(
    renderReminderEmail({ registryName: 'crates.io', registryUrl: 'https://crates.io/', login: 'ferris', token: only, now, choices }),
  );
});

test('a digest links to the preferences too, in the text and the HTML', () => {
  const { textBody, htmlBody } = render([token(1), token(2)]);
  expect(textBody).toContain('Choose when and where you are warned (lead times, waking hours, email or webhook):\nhttps://crates.io/settings/tokens\n');
  expect(htmlBody).toContain('Choose when and where you are warned');
});

test('several: the subject names how many and the nearest expiry; one entry per token, nearest first', () => {
  const email = render([token(3, { expiresAt: new Date(now.getTime() + 8 * DAY) }), token(1), token(2)]);
  expect(email.subject).toBe('3 of your crates.io API tokens expire in 7 days');
  const names = email.textBody.split('\n').filter((l) => l.startsWith('  Token:')).map((l) => l.slice(13));
  expect(names).toEqual(['ci-1', 'ci-2', 'ci-3']);
  expect(email.textBody).toContain('  Expires:   2026-02-22T10:00:17Z (in 7 days)');
  expect(email.textBody).toContain('  Expires:   2026-02-23T10:00:07Z (in 8 days)');
  expect(email.textBody).toContain('  Crates:    crate-2');
  for (const id of [1, 2, 3]) {
    expect(email.textBody).toContain(`  Replace:   https://crates.io/settings/tokens/new?from=${id}\n`);
    expect(email.htmlBody).toContain(`href="https://crates.io/settings/tokens/new?from=${id}"`);
  }
});

test('expired ones: "have expired"', () => {
  const email = render([token(1), token(2)], new Date(now.getTime() + 8 * DAY));
  expect(email.subject).toBe('2 of your crates.io API tokens have expired');
  expect(email.textBody).toContain('Requests that use them are now rejected.');
});

test('names are escaped in the HTML and never reach the subject', () => {
  const hostile = '<script>x</script>\r\nBcc: evil@example.com "ci" & co';
  const email = render([token(1, { name: hostile }), token(2)]);
  expect(email.subject).toBe('2 of your crates.io API tokens expire in 7 days');
  expect(email.htmlBody).not.toContain('<script>');
  expect(email.htmlBody).toContain('&lt;script&gt;x&lt;/script&gt; Bcc: evil@example.com &quot;ci&quot; &amp; co');
  // One line in the text body: no header-like line of its own.
  expect(email.textBody.split('\n').some((l) => l.startsWith('Bcc:'))).toBe(false);
});

test(`at most ${DIGEST_MAX_TOKENS} entries per email`, () => {
  const tokens = Array.from({ length: DIGEST_MAX_TOKENS + 1 }, (_, i) => token(i + 1));
  expect(render(tokens.slice(0, DIGEST_MAX_TOKENS)).subject).toBe('100 of your crates.io API tokens expire in 7 days');
  expect(() => render(tokens)).toThrow(/at most 100 per email/);
});
