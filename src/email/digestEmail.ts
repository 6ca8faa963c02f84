// Renders one email that covers several of a user's tokens falling due together (EXPIRY_DIGEST_WINDOW).
// Pure: no I/O and no clock. One token is exactly the single-token email.
import {
  assertValidDate,
  describeScopes,
  displayTokenName,
  oneLine,
  registryBaseUrl,
  renderReminderEmail,
  rfc3339Utc,
  timeLeftInWords,
  type ReminderEmailInput,
  type RenderedEmail,
  usageLine,
} from './reminderEmail';
import { detailsTable, escapeHtml, framedEmail, htmlLink } from './frame';

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
  const e = escapeHtml;

  return framedEmail({
    subject, login, headline, consequence,
    text: [
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
    ],
    html: [
      ...entries.map((entry) =>
        detailsTable([
          ['Token', e(entry.name)],
          ['Crates', e(entry.crates)],
          ['Endpoints', e(entry.endpoints)],
          [entry.expiryLabel, e(entry.expiryValue)],
          ['Replace', htmlLink(entry.replaceUrl, 'Generate a replacement')],
          ['Used', e(entry.usage)],
        ]),
      ),
      `<p>${e(stillNeeded)}</p>`,
    ],
    notNeeded,
    settingsUrl,
    choices: input.choices,
    signature: `The ${registry} team`,
  });
}
