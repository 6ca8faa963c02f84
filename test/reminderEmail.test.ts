import { describeTimeLeft, renderReminderEmail, type ReminderEmailInput } from '../src/email/reminderEmail';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const expiresAt = new Date('2026-02-22T10:00:00.000Z');
// A scheduled send that fires a few seconds after the reminder was due.
const lateness = 7 * SECOND;
const sentBefore = (msBeforeExpiry: number): Date => new Date(expiresAt.getTime() - msBeforeExpiry + lateness);

function input(overrides: Partial<ReminderEmailInput> = {}, token: Partial<ReminderEmailInput['token']> = {}): ReminderEmailInput {
  return {
    registryName: 'crates.io',
    registryUrl: 'https://crates.io',
    login: 'ferris',
    now: sentBefore(7 * DAY),
    choices: { preferencesUrl: 'https://crates.io/me/expiry-warnings', unsubscribeUrl: null, warningsOff: false },
    ...overrides,
    token: {
      id: '42',
      name: 'ci-publish',
      crateScopes: ['serde', 'serde_*'],
      endpointScopes: ['publish-update', 'yank'],
      expiresAt,
      lastUsedAt: new Date(expiresAt.getTime() - 10 * DAY),
      ...token,
    },
  };
}

describe('describeTimeLeft', () => {
  it.each([
    [7 * DAY, 'expires in 7 days'],
    [3 * DAY, 'expires in 3 days'],
    [1 * DAY, 'expires tomorrow'],
    [5 * HOUR, 'expires in 5 hours'],
    [1 * HOUR, 'expires in 1 hour'],
    [30 * MINUTE, 'expires in 30 minutes'],
    [1 * MINUTE, 'expires in 1 minute'],
  ])('%d ms before expiry, a few seconds late, reads "%s"', (msBefore, expected) => {
    expect(describeTimeLeft(expiresAt, sentBefore(msBefore))).toBe(expected);
  });

  // Boundaries, measured exactly: days round to the nearest whole day from 36 hours up.
  it.each([
    [6.5 * DAY, 'expires in 7 days'],
    [6.5 * DAY - SECOND, 'expires in 6 days'],
    [36 * HOUR, 'expires in 2 days'],
    [36 * HOUR - SECOND, 'expires tomorrow'],
    [20 * HOUR, 'expires tomorrow'],
    [20 * HOUR - SECOND, 'expires in 20 hours'],
    [19 * HOUR, 'expires in 19 hours'],
    [59 * MINUTE + 50 * SECOND, 'expires in 1 hour'],
    [2 * MINUTE, 'expires in 2 minutes'],
  ])('exactly %d ms before expiry reads "%s"', (msBefore, expected) => {
    expect(describeTimeLeft(expiresAt, new Date(expiresAt.getTime() - msBefore))).toBe(expected);
  });

  it('never says "in 0 minutes" in the last seconds', () => {
    expect(describeTimeLeft(expiresAt, new Date(expiresAt.getTime() - 10 * SECOND))).toBe('expires in 1 minute');
  });

  it('says "has expired" at and after the expiry', () => {
    expect(describeTimeLeft(expiresAt, expiresAt)).toBe('has expired');
    expect(describeTimeLeft(expiresAt, new Date(expiresAt.getTime() + lateness))).toBe('has expired');
  });

  it('rejects an invalid date with a message that names it', () => {
    expect(() => describeTimeLeft(new Date('nope'), expiresAt)).toThrow(/expiresAt is not a valid Date/);
  });
});

describe('renderReminderEmail subject', () => {
  it.each([
    [7 * DAY, 'crates.io: your API token "ci-publish" expires in 7 days'],
    [1 * DAY, 'crates.io: your API token "ci-publish" expires tomorrow'],
    [5 * HOUR, 'crates.io: your API token "ci-publish" expires in 5 hours'],
    [-lateness, 'crates.io: your API token "ci-publish" has expired'],
    [0, 'crates.io: your API token "ci-publish" has expired'],
  ])('sent %d ms (+ a few seconds) before expiry', (msBefore, expected) => {
    expect(renderReminderEmail(input({ now: sentBefore(msBefore) })).subject).toBe(expected);
  });

  it('cannot be used to inject a header through a CRLF in the token name', () => {
    const { subject } = renderReminderEmail(input({}, { name: 'x\r\nBcc: evil@example.com\r\n\r\nbody' }));
    expect(subject).not.toMatch(/[\r\n]/);
    expect(subject).not.toMatch(/[\u0000-\u001f\u007f]/);
    expect(subject).toBe('crates.io: your API token "x Bcc: evil@example.com body" expires in 7 days');
  });

  it('strips other control characters and collapses whitespace', () => {
    const { subject } = renderReminderEmail(input({}, { name: '  a\u0000b\tc\u2028d \u202Ee  ' }));
    expect(subject).toBe('crates.io: your API token "a b c d e" expires in 7 days');
  });

  it('caps a long name at 64 characters with an ellipsis, keeping it whole in the body', () => {
    const long = 'n'.repeat(100);
    const email = renderReminderEmail(input({}, { name: long }));
    const quoted = /"([^"]*)"/.exec(email.subject)?.[1];
    expect(quoted).toBe(`${'n'.repeat(63)}…`);
    expect(Array.from(quoted ?? '')).toHaveLength(64);
    expect(email.textBody).toContain(long);
  });

  it('does not cap a 64-character name', () => {
    const name = 'm'.repeat(64);
    expect(renderReminderEmail(input({}, { name })).subject).toContain(`"${name}"`);
  });
});

describe('the user\'s say, in every email', () => {
  const unsubscribeUrl = 'https://expiry.example/unsubscribe?u=7&t=1&s=x';
  test('a warning links to the preferences and carries its one-click link in the text and the HTML', () => {
    const { textBody, htmlBody } = renderReminderEmail(input({ choices: { preferencesUrl: 'https://crates.io/me/expiry-warnings', unsubscribeUrl, warningsOff: false } }));
    expect(textBody).toContain('Choose when and where you are warned (lead times, waking hours, email or webhook):\nhttps://crates.io/me/expiry-warnings\n');
    expect(textBody).toContain(`the notice when a token has expired still comes):\n${unsubscribeUrl}\n`);
    expect(htmlBody).toContain('<a href="https://crates.io/me/expiry-warnings"');
    expect(htmlBody).toContain(`<a href="${unsubscribeUrl.replace(/&/g, '&amp;')}"`);
  });
  test('the expired notice of a user who turned warnings off says how to turn them on again', () => {
    const notice = (warningsOff: boolean) =>
      renderReminderEmail(input({ now: sentBefore(0), choices: { preferencesUrl: 'https://crates.io/me/expiry-warnings', unsubscribeUrl: null, warningsOff } }));
    expect(notice(true).textBody).toContain('You turned early warnings off. To be warned before your next token expires, choose when again:\nhttps://crates.io/me/expiry-warnings');
    expect(notice(true).htmlBody).toContain('You turned early warnings off.');
    expect(notice(false).textBody).not.toContain('You turned early warnings off');
    expect(notice(false).textBody).toContain('Choose when and where you are warned');
  });
});

describe('renderReminderEmail bodies', () => {
  it('greets the login and signs as the registry team', () => {
    const { textBody, htmlBody } = renderReminderEmail(input());
    expect(textBody).toMatch(/^Hello ferris,/);
    expect(textBody).toContain('The crates.io team');
    expect(htmlBody).toContain('Hello ferris,');
    expect(htmlBody).toContain('The crates.io team');
  });

  it('gives the expiry in RFC 3339 UTC without milliseconds, and in words', () => {
    const email = renderReminderEmail(input({}, { expiresAt: new Date('2026-02-22T10:00:00.123Z') }));
    for (const body of [email.textBody, email.htmlBody]) {
      expect(body).toContain('2026-02-22T10:00:00Z (in 7 days)');
      expect(body).not.toContain('.123');
      expect(body).toContain('expires in 7 days');
    }
  });

  it('links to a replacement with the same name and scopes, and to the token settings', () => {
    for (const registryUrl of ['https://crates.io', 'https://crates.io/']) {
      const { textBody, htmlBody } = renderReminderEmail(input({ registryUrl }));
      expect(textBody).toContain('https://crates.io/settings/tokens/new?from=42');
      expect(textBody).toContain('https://crates.io/settings/tokens\n');
      expect(textBody).toMatch(/replacement with the same name and scopes/);
      expect(htmlBody).toContain('href="https://crates.io/settings/tokens/new?from=42"');
      expect(htmlBody).toContain('href="https://crates.io/settings/tokens"');
      expect(textBody).not.toContain('crates.io//');
    }
  });

  it('URL-encodes the token id in the replacement link', () => {
    const { textBody, htmlBody } = renderReminderEmail(input({}, { id: 'a&b "c"' }));
    expect(textBody).toContain('/settings/tokens/new?from=a%26b%20%22c%22');
    expect(htmlBody).toContain('href="https://crates.io/settings/tokens/new?from=a%26b%20%22c%22"');
  });

  it('says what to do when the token is no longer needed', () => {
    const { textBody, htmlBody } = renderReminderEmail(input());
    expect(textBody).toContain('No longer need it? There is nothing to do');
    expect(htmlBody).toContain('No longer need it? There is nothing to do');
  });

  it('says when the token was last used, in whole days or hours, with the date', () => {
    const now = sentBefore(7 * DAY);
    const lastUsedAt = new Date('2026-02-12T05:00:07.250Z'); // 3 days and 5 hours before `now`
    const threeDays = renderReminderEmail(input({ now }, { lastUsedAt }));
    for (const body of [threeDays.textBody, threeDays.htmlBody]) {
      expect(body).toContain('Last used 3 days ago (2026-02-12T05:00:07Z).');
      expect(body).not.toContain('never been used');
    }
    const oneDay = renderReminderEmail(input({ now }, { lastUsedAt: new Date(now.getTime() - DAY) }));
    expect(oneDay.textBody).toContain('Last used 1 day ago');
    const hours = renderReminderEmail(input({ now }, { lastUsedAt: new Date(now.getTime() - 5 * HOUR - MINUTE) }));
    expect(hours.textBody).toContain('Last used 5 hours ago');
    const recent = renderReminderEmail(input({ now }, { lastUsedAt: new Date(now.getTime() + MINUTE) }));
    expect(recent.textBody).toContain('Last used within the last hour');
  });

  it('says a never-used token can be let expire, in both bodies', () => {
    const { textBody, htmlBody } = renderReminderEmail(input({}, { lastUsedAt: null }));
    for (const body of [textBody, htmlBody]) {
      expect(body).toContain('This token has never been used: if nothing needs it, you can let it expire.');
      expect(body).not.toContain('Last used');
    }
    const expired = renderReminderEmail(input({ now: sentBefore(0) }, { lastUsedAt: null }));
    expect(expired.textBody).toContain('This token was never used: nothing should need a replacement.');
    expect(expired.textBody).not.toContain('you can let it expire');
  });

  it('lists crate and endpoint scopes', () => {
    const { textBody, htmlBody } = renderReminderEmail(input());
    expect(textBody).toMatch(/Crates: +serde, serde_\*/);
    expect(textBody).toMatch(/Endpoints: +publish-update, yank/);
    expect(htmlBody).toContain('serde, serde_*');
    expect(htmlBody).toContain('publish-update, yank');
  });

  it('says "all crates" / "all endpoints" when scopes are null or empty', () => {
    const nulls = renderReminderEmail(input({}, { crateScopes: null, endpointScopes: null }));
    expect(nulls.textBody).toMatch(/Crates: +all crates/);
    expect(nulls.textBody).toMatch(/Endpoints: +all endpoints/);
    expect(nulls.htmlBody).toContain('all crates');
    expect(nulls.htmlBody).toContain('all endpoints');

    const empties = renderReminderEmail(input({}, { crateScopes: [], endpointScopes: [] }));
    expect(empties.textBody).toMatch(/Crates: +all crates/);
    expect(empties.textBody).toMatch(/Endpoints: +all endpoints/);
  });

  it('for an expired token, says so and that requests using it are rejected', () => {
    const { subject, textBody, htmlBody } = renderReminderEmail(input({ now: sentBefore(0) }));
    expect(subject).toMatch(/has expired$/);
    for (const body of [textBody, htmlBody]) {
      expect(body).toContain('has expired');
      expect(body).toContain('Requests that use it are now rejected.');
      expect(body).toContain('2026-02-22T10:00:00Z');
      expect(body).not.toContain('expires in');
      expect(body).toContain('/settings/tokens/new?from=42');
    }
  });

  it('HTML-escapes the token name, login and scopes', () => {
    const name = '<script>alert("x")</script> & co';
    const { textBody, htmlBody } = renderReminderEmail(
      input({ login: "o'<b>" }, { name, crateScopes: ['<i>crate</i>'], endpointScopes: ['"yank"'] }),
    );
    expect(htmlBody).not.toContain('<script>');
    expect(htmlBody).not.toContain('<b>');
    expect(htmlBody).not.toContain('<i>');
    expect(htmlBody).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co');
    expect(htmlBody).toContain('Hello o&#39;&lt;b&gt;,');
    expect(htmlBody).toContain('&lt;i&gt;crate&lt;/i&gt;');
    expect(htmlBody).toContain('&quot;yank&quot;');
    // The plain-text body is not HTML: the name appears as written.
    expect(textBody).toContain(name);
  });

  it('HTML-escapes the registry URL inside href attributes', () => {
    const { htmlBody } = renderReminderEmail(input({ registryUrl: 'https://reg.example/"><x a=\'' }));
    expect(htmlBody).toContain('href="https://reg.example/&quot;&gt;&lt;x a=&#39;/settings/tokens"');
    expect(htmlBody).not.toContain('"><x');
  });

  it('refuses a registry URL that is not http(s)', () => {
    expect(() => renderReminderEmail(input({ registryUrl: 'javascript:alert(1)' }))).toThrow(
      /registryUrl: "javascript:alert\(1\)" is not an http\(s\) URL/,
    );
  });

  it('is a simple self-contained HTML document', () => {
    const { htmlBody } = renderReminderEmail(input());
    expect(htmlBody).toMatch(/^<!DOCTYPE html>/);
    expect(htmlBody).not.toMatch(/<(link|script|img)\b/i);
    expect(htmlBody).not.toMatch(/src=/i);
  });

  it('is pure: the same input renders the same email', () => {
    expect(renderReminderEmail(input())).toEqual(renderReminderEmail(input()));
  });
});

describe('the whole email, as the owner reads it', () => {
  const whole = (msAfterExpiry: number) =>
    renderReminderEmail(input({ registryUrl: 'https://crates.io/', now: new Date(expiresAt.getTime() + msAfterExpiry) }, { crateScopes: ['serde', '', 'serde_*'], endpointScopes: null }));

  it('a warning a week ahead: every line of the text and the HTML', () => {
    const email = whole(-7 * DAY + lateness);
    expect(email.textBody).toBe(`Hello ferris,

Your crates.io API token "ci-publish" expires in 7 days. After that, requests that use it will be rejected.

  Token:     ci-publish
  Crates:    serde, serde_*
  Endpoints: all endpoints
  Expires:   2026-02-22T10:00:00Z (in 7 days)

Last used 3 days ago (2026-02-12T10:00:00Z).

Still using it? Generate a replacement with the same name and scopes:
https://crates.io/settings/tokens/new?from=42
Then put the new token wherever the old one was used, such as CI secrets.

No longer need it? There is nothing to do; it will simply stop working.

Manage your API tokens:
https://crates.io/settings/tokens

Choose when and where you are warned (lead times, waking hours, email or webhook):
https://crates.io/me/expiry-warnings

-- The crates.io team
`);
    expect(email.htmlBody).toBe(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>crates.io: your API token &quot;ci-publish&quot; expires in 7 days</title></head>
<body style="margin:0;padding:24px;background:#f4f4f4;">
<div style="max-width:560px;margin:0 auto;padding:24px;background:#ffffff;border-radius:6px;font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:15px;line-height:1.5;color:#222222;">
<p>Hello ferris,</p>
<p><strong>Your crates.io API token &quot;ci-publish&quot; expires in 7 days.</strong> After that, requests that use it will be rejected.</p>
<table style="border-collapse:collapse;margin:0 0 16px 0;">
<tr><td style="padding:4px 12px 4px 0;vertical-align:top;color:#666;">Token</td><td style="padding:4px 12px 4px 0;vertical-align:top;">ci-publish</td></tr>
<tr><td style="padding:4px 12px 4px 0;vertical-align:top;color:#666;">Crates</td><td style="padding:4px 12px 4px 0;vertical-align:top;">serde, serde_*</td></tr>
<tr><td style="padding:4px 12px 4px 0;vertical-align:top;color:#666;">Endpoints</td><td style="padding:4px 12px 4px 0;vertical-align:top;">all endpoints</td></tr>
<tr><td style="padding:4px 12px 4px 0;vertical-align:top;color:#666;">Expires</td><td style="padding:4px 12px 4px 0;vertical-align:top;">2026-02-22T10:00:00Z (in 7 days)</td></tr>
</table>
<p>Last used 3 days ago (2026-02-12T10:00:00Z).</p>
<p>Still using it? Generate a replacement with the same name and scopes:<br><a href="https://crates.io/settings/tokens/new?from=42" style="color:#1a5fb4;">https://crates.io/settings/tokens/new?from=42</a><br>Then put the new token wherever the old one was used, such as CI secrets.</p>
<p>No longer need it? There is nothing to do; it will simply stop working.</p>
<p><a href="https://crates.io/settings/tokens" style="color:#1a5fb4;">Manage your API tokens</a></p>
<p>Choose when and where you are warned (lead times, waking hours, email or webhook):<br><a href="https://crates.io/me/expiry-warnings" style="color:#1a5fb4;">https://crates.io/me/expiry-warnings</a></p>
<p style="color:#666666;">The crates.io team</p>
</div>
</body>
</html>
`);
  });

  it('the expired notice: every line of the text', () => {
    expect(whole(lateness).textBody).toBe(`Hello ferris,

Your crates.io API token "ci-publish" has expired. Requests that use it are now rejected.

  Token:     ci-publish
  Crates:    serde, serde_*
  Endpoints: all endpoints
  Expired:   2026-02-22T10:00:00Z

Last used 10 days ago (2026-02-12T10:00:00Z).

Still need it? Generate a replacement with the same name and scopes:
https://crates.io/settings/tokens/new?from=42
Then put the new token wherever the old one was used, such as CI secrets.

No longer need it? There is nothing to do.

Manage your API tokens:
https://crates.io/settings/tokens

Choose when and where you are warned (lead times, waking hours, email or webhook):
https://crates.io/me/expiry-warnings

-- The crates.io team
`);
  });
});
