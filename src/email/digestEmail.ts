// Renders one email that covers several of a user's tokens falling due together (EXPIRY_DIGEST_WINDOW).
// Pure: no I/O and no clock. One token is exactly the single-token email.
import {
  assertValidDate,
  choicesLines,
  describeScopes,
  displayTokenName,
  escapeHtml,
  oneLine,
  registryBaseUrl,
  renderReminderEmail,
  rfc3339Utc,
  timeLeftInWords,
  type ReminderEmailInput,
  type RenderedEmail,
  usageLine,
} from './reminderEmail';

/** Entries per email, as GitLab lists them; a larger digest goes out in several emails. */
export const DIGEST_MAX_TOKENS = 100;

export interface DigestEmailInput {
  registryName: string;
  registryUrl: string;
  login: string;
  tokens: ReminderEmailInput['token'][];
  now: Date;
  choices: ReminderEmailInput['choices'];
}

export function renderDigestEmail(input: DigestEmailInput): RenderedEmail {
  const { tokens, now } = input;
  if (tokens.length === 0) throw new RangeError('renderDigestEmail: no tokens');
  if (tokens.length > DIGEST_MAX_TOKENS) {
    throw new RangeError(`renderDigestEmail: ${tokens.length} tokens (at most ${DIGEST_MAX_TOKENS} per email)`);
  }
  const [only] = tokens;
  if (tokens.length === 1 && only) return renderReminderEmail({ ...input, token: only });
  for (const token of tokens) assertValidDate(token.expiresAt, 'renderDigestEmail: token.expiresAt');
  assertValidDate(now, 'renderDigestEmail: now');

  const registry = oneLine(input.registryName);
  const login = oneLine(input.login);
  const base = registryBaseUrl(input.registryUrl);
  const settingsUrl = `${base}/settings/tokens`;
  const sorted = [...tokens].sort((a, b) => a.expiresAt.getTime() - b.expiresAt.getTime());
  const nearest = sorted[0] as DigestEmailInput['tokens'][number];
  const nearestWords = timeLeftInWords(nearest.expiresAt.getTime() - now.getTime());
  const allExpired = sorted.every((t) => t.expiresAt.getTime() <= now.getTime());
  // Names stay out of the subject: only counts and times reach a header.
  const status = allExpired ? 'have expired' : nearestWords === null ? 'are expiring' : `expire ${nearestWords}`;
  const subject = `${tokens.length} of your ${registry} API tokens ${status}`;

  const headline = `${tokens.length} of your ${registry} API tokens ${status}.`;
  const consequence = allExpired
    ? 'Requests that use them are now rejected.'
    : 'After that, requests that use them will be rejected.';
  const entries = sorted.map((token) => {
    const words = timeLeftInWords(token.expiresAt.getTime() - now.getTime());
    const expiry = rfc3339Utc(token.expiresAt);
    return {
      name: displayTokenName(token.name),
      crates: describeScopes(token.crateScopes, 'all crates'),
      endpoints: describeScopes(token.endpointScopes, 'all endpoints'),
      expiryLabel: words === null ? 'Expired' : 'Expires',
      expiryValue: words === null ? `${expiry} (has expired)` : `${expiry} (${words})`,
      replaceUrl: `${base}/settings/tokens/new?from=${encodeURIComponent(token.id)}`,
      usage: usageLine(token.lastUsedAt ?? null, now, words === null),
    };
  });
  const stillNeeded = 'Still using one? Generate a replacement with the same name and scopes from its link, then put the new token wherever the old one was used, such as CI secrets.';
  const notNeeded = 'No longer need them? There is nothing to do.';
  const signature = `The ${registry} team`;
  const e = escapeHtml;
  const link = (url: string, text: string): string => `<a href="${e(url)}" style="color:#1a5fb4;">${e(text)}</a>`;
  const choices = choicesLines(input.choices, link);

  const textBody = [
    `Hello ${login},`,
    '',
    `${headline} ${consequence}`,
    '',
    ...entries.flatMap((entry) => [
      `  Token:     ${entry.name}`,
      `  Crates:    ${entry.crates}`,
      `  Endpoints: ${entry.endpoints}`,
      `  ${entry.expiryLabel}:   ${entry.expiryValue}`,
      `  Replace:   ${entry.replaceUrl}`,
      `  Used:      ${entry.usage}`,
      '',
    ]),
    stillNeeded,
    '',
    notNeeded,
    '',
    'Manage your API tokens:',
    settingsUrl,
    '',
    ...choices.text,
    '',
    `-- ${signature}`,
    '',
  ].join('\n');

  const cell = 'padding:4px 12px 4px 0;vertical-align:top;';
  const row = (label: string, value: string): string =>
    `<tr><td style="${cell}color:#666;">${e(label)}</td><td style="${cell}">${value}</td></tr>`;

  const htmlBody = [
    '<!DOCTYPE html>',
    '<html lang="en">',
    `<head><meta charset="utf-8"><title>${e(subject)}</title></head>`,
    '<body style="margin:0;padding:24px;background:#f4f4f4;">',
    '<div style="max-width:560px;margin:0 auto;padding:24px;background:#ffffff;border-radius:6px;' +
      'font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:15px;line-height:1.5;color:#222222;">',
    `<p>Hello ${e(login)},</p>`,
    `<p><strong>${e(headline)}</strong> ${e(consequence)}</p>`,
    ...entries.map((entry) =>
      [
        '<table style="border-collapse:collapse;margin:0 0 16px 0;">',
        row('Token', e(entry.name)),
        row('Crates', e(entry.crates)),
        row('Endpoints', e(entry.endpoints)),
        row(entry.expiryLabel, e(entry.expiryValue)),
        row('Replace', link(entry.replaceUrl, 'Generate a replacement')),
        row('Used', e(entry.usage)),
        '</table>',
      ].join('\n'),
    ),
    `<p>${e(stillNeeded)}</p>`,
    `<p>${e(notNeeded)}</p>`,
    `<p>${link(settingsUrl, 'Manage your API tokens')}</p>`,
    ...choices.html,
    `<p style="color:#666666;">${e(signature)}</p>`,
    '</div>',
    '</body>',
    '</html>',
    '',
  ].join('\n');

  return { subject, textBody, htmlBody };
}
