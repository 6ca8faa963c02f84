// Renders the email that warns a user their API token is about to expire (or has expired).
// Pure: no I/O and no clock; the caller passes `now`.
import { detailsTable, escapeHtml, framedEmail, htmlLink } from './frame';

export interface ReminderEmailInput {
  registryName: string; // e.g. "crates.io"
  registryUrl: string; // e.g. "https://crates.io", with or without a trailing '/'
  login: string; // the user's login, for the greeting
  token: {
    id: string;
    name: string;
    crateScopes: string[] | null;
    endpointScopes: string[] | null;
    expiresAt: Date;
    /** Null when the token was never used. */
    lastUsedAt: Date | null;
  };
  now: Date; // when the email is sent; the "in words" phrase is computed from expiresAt - now
  choices: EmailChoices;
}

/** What every email says about the user's own say in their warnings. */
export interface EmailChoices {
  /** Where the user chooses lead times, waking hours and channels (PREFERENCES_URL). */
  preferencesUrl: string;
  /** A warning's one-click link that turns early warnings off; null on the expired notice, or without UNSUBSCRIBE_SECRET. */
  unsubscribeUrl: string | null;
  /** The user turned early warnings off: the expired notice says how to turn them on again. */
  warningsOff: boolean;
}

export interface RenderedEmail {
  subject: string;
  textBody: string;
  htmlBody: string;
}

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
// Subjects stay readable in an inbox list; the full name is still in the body.
const SUBJECT_NAME_MAX_CHARS = 64;

function plural(n: number, unit: string): string {
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}

export function assertValidDate(value: Date, what: string): void {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new RangeError(`${what} is not a valid Date (pass a Date built from the token's expiry timestamp)`);
  }
}

// "in 7 days" / "tomorrow" / "in 5 hours" / "in 1 minute", or null once expired.
// Rounding to the nearest unit means a reminder sent a few seconds late still reads "in 7 days".
export function timeLeftInWords(msLeft: number): string | null {
  if (msLeft <= 0) return null;
  if (msLeft >= 36 * HOUR_MS) return `in ${plural(Math.round(msLeft / DAY_MS), 'day')}`;
  if (msLeft >= 20 * HOUR_MS) return 'tomorrow';
  const minutes = Math.max(1, Math.round(msLeft / MINUTE_MS));
  if (minutes < 60) return `in ${plural(minutes, 'minute')}`;
  return `in ${plural(Math.round(msLeft / HOUR_MS), 'hour')}`;
}

/** "expires in 7 days", "expires tomorrow", "expires in 5 hours", "expires in 1 minute" or "has expired". */
export function describeTimeLeft(expiresAt: Date, now: Date): string {
  assertValidDate(expiresAt, 'describeTimeLeft: expiresAt');
  assertValidDate(now, 'describeTimeLeft: now');
  const words = timeLeftInWords(expiresAt.getTime() - now.getTime());
  return words === null ? 'has expired' : `expires ${words}`;
}

// Control characters (CR, LF, NUL, ...), Unicode line/paragraph separators and bidi overrides
// could break a header or disguise the name, so they become spaces before whitespace is collapsed.
const UNSAFE_CHARS = /[\p{Cc}\u2028\u2029\u200E\u200F\u202A-\u202E\u2066-\u2069]/gu;

export function oneLine(value: string): string {
  return value.replace(UNSAFE_CHARS, ' ').replace(/\s+/gu, ' ').trim();
}

function truncate(value: string, maxChars: number): string {
  const chars = Array.from(value); // code points, so a surrogate pair is never cut in half
  return chars.length <= maxChars ? value : `${chars.slice(0, maxChars - 1).join('').trimEnd()}…`;
}

// "Last used 3 days ago (2026-02-19T10:00:00Z)": whole units, rounded down, so "3 days" means at least 3.
// A last use stamped after `now` (another machine's clock) reads as within the hour.
function lastUsedInWords(lastUsedAt: Date, now: Date): string {
  const ago = Math.max(0, now.getTime() - lastUsedAt.getTime());
  const when =
    ago >= DAY_MS
      ? `${plural(Math.floor(ago / DAY_MS), 'day')} ago`
      : ago >= HOUR_MS
        ? `${plural(Math.floor(ago / HOUR_MS), 'hour')} ago`
        : 'within the last hour';
  return `Last used ${when} (${rfc3339Utc(lastUsedAt)}).`;
}

/** Whether the token is in use: the hint that tells a user if a replacement is worth making. */
export function usageLine(lastUsedAt: Date | null, now: Date, expired: boolean): string {
  if (lastUsedAt) return lastUsedInWords(lastUsedAt, now);
  return expired
    ? 'This token was never used: nothing should need a replacement.'
    : 'This token has never been used: if nothing needs it, you can let it expire.';
}

export function displayTokenName(name: string): string {
  return oneLine(name) || '(unnamed)';
}

export function describeScopes(scopes: string[] | null, all: string): string {
  const cleaned = (scopes ?? []).map(oneLine).filter((s) => s !== '');
  return cleaned.length === 0 ? all : cleaned.join(', ');
}

// RFC 3339 in UTC without milliseconds: 2026-02-22T10:00:00Z
export function rfc3339Utc(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function registryBaseUrl(registryUrl: string): string {
  const base = registryUrl.trim().replace(/\/+$/, '');
  // Links are built from this; anything but http(s) (e.g. "javascript:") is a configuration mistake.
  if (!/^https?:\/\/[^\s/]/i.test(base)) {
    throw new Error(`registryUrl: "${registryUrl}" is not an http(s) URL (use e.g. https://crates.io)`);
  }
  return base;
}

export function renderReminderEmail(input: ReminderEmailInput): RenderedEmail {
  const { token, now } = input;
  assertValidDate(token.expiresAt, 'renderReminderEmail: token.expiresAt');
  assertValidDate(now, 'renderReminderEmail: now');
  if (token.lastUsedAt !== null) assertValidDate(token.lastUsedAt, 'renderReminderEmail: token.lastUsedAt');

  const registry = oneLine(input.registryName);
  const login = oneLine(input.login);
  const name = displayTokenName(token.name);
  const base = registryBaseUrl(input.registryUrl);
  const replaceUrl = `${base}/settings/tokens/new?from=${encodeURIComponent(token.id)}`;
  const settingsUrl = `${base}/settings/tokens`;
  const crates = describeScopes(token.crateScopes, 'all crates');
  const endpoints = describeScopes(token.endpointScopes, 'all endpoints');
  const expiry = rfc3339Utc(token.expiresAt);
  const words = timeLeftInWords(token.expiresAt.getTime() - now.getTime());
  const expired = words === null;
  const status = expired ? 'has expired' : `expires ${words}`;

  const subject = `${registry}: your API token "${truncate(name, SUBJECT_NAME_MAX_CHARS)}" ${status}`;

  const headline = `Your ${registry} API token "${name}" ${status}.`;
  const consequence = expired
    ? 'Requests that use it are now rejected.'
    : 'After that, requests that use it will be rejected.';
  const expiryLabel = expired ? 'Expired' : 'Expires';
  const expiryValue = expired ? expiry : `${expiry} (${words})`;
  const stillNeeded = expired
    ? 'Still need it? Generate a replacement with the same name and scopes:'
    : 'Still using it? Generate a replacement with the same name and scopes:';
  const afterReplace = 'Then put the new token wherever the old one was used, such as CI secrets.';
  const notNeeded = expired
    ? 'No longer need it? There is nothing to do.'
    : 'No longer need it? There is nothing to do; it will simply stop working.';
  const usage = usageLine(token.lastUsedAt, now, expired);
  const e = escapeHtml;

  return framedEmail({
    subject, login, headline, consequence,
    text: [
      `  Token:     ${name}`,
      `  Crates:    ${crates}`,
      `  Endpoints: ${endpoints}`,
      `  ${expiryLabel}:   ${expiryValue}`,
      '',
      usage,
      '',
      stillNeeded,
      replaceUrl,
      afterReplace,
      '',
    ],
    html: [
      detailsTable([
        ['Token', e(name)],
        ['Crates', e(crates)],
        ['Endpoints', e(endpoints)],
        [expiryLabel, e(expiryValue)],
      ]),
      `<p>${e(usage)}</p>`,
      `<p>${e(stillNeeded)}<br>${htmlLink(replaceUrl, replaceUrl)}<br>${e(afterReplace)}</p>`,
    ],
    notNeeded,
    settingsUrl,
    choices: input.choices,
    signature: `The ${registry} team`,
  });
}
