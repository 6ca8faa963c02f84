// One-click unsubscribe (RFC 8058): a warning email carries a signed HTTPS link to turn off that user's warnings,
// with List-Unsubscribe and List-Unsubscribe-Post; the API checks the signature and its age before it changes
// anything. The expired notice carries none: turning warnings off leaves the last word on.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config';

export type UnsubscribeSettings = Pick<Config, 'API_PUBLIC_URL' | 'UNSUBSCRIBE_SECRET'>;

/** A link older than this is refused as stale: longer than any lead time on a menu, and then some for a slow reader. */
export const UNSUBSCRIBE_LINK_MAX_AGE_MS = 120 * 86_400_000;
/** Clocks differ a little between workers and the API. */
const FUTURE_SKEW_MS = 5 * 60_000;

function signature(secret: string, userId: string, issuedAtSeconds: number): string {
  return createHmac('sha256', secret).update(`token-expiry-unsubscribe:v1:${userId}:${issuedAtSeconds}`).digest('base64url');
}

/** The signed link for this user's warnings, issued now; null when UNSUBSCRIBE_SECRET is not set. */
export function unsubscribeLink(userId: string, settings: UnsubscribeSettings, now: Date): string | null {
  if (!settings.UNSUBSCRIBE_SECRET) return null;
  const issued = Math.floor(now.getTime() / 1000);
  const query = new URLSearchParams({ u: userId, t: String(issued), s: signature(settings.UNSUBSCRIBE_SECRET, userId, issued) });
  return `${settings.API_PUBLIC_URL}/unsubscribe?${query.toString()}`;
}

/** The headers a warning carries (RFC 2369 and RFC 8058); none without UNSUBSCRIBE_SECRET. */
export function unsubscribeHeaders(userId: string, settings: UnsubscribeSettings, now: Date): Record<string, string> | undefined {
  const link = unsubscribeLink(userId, settings, now);
  return link ? { 'List-Unsubscribe': `<${link}>`, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' } : undefined;
}

export type UnsubscribeCheck = { userId: string } | { refused: 'forged' | 'stale' };

/** Whose warnings a link turns off, or why it is refused: a signature that does not verify, or a link too old. */
export function checkUnsubscribe(query: URLSearchParams, secret: string, now: Date): UnsubscribeCheck {
  const userId = query.get('u') ?? '';
  const issuedText = query.get('t') ?? '';
  const presented = Buffer.from(query.get('s') ?? '');
  if (!/^[1-9][0-9]{0,17}$/.test(userId) || !/^[0-9]{1,12}$/.test(issuedText)) return { refused: 'forged' };
  const issued = Number(issuedText);
  const expected = Buffer.from(signature(secret, userId, issued));
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return { refused: 'forged' };
  const age = now.getTime() - issued * 1000;
  if (age > UNSUBSCRIBE_LINK_MAX_AGE_MS || age < -FUTURE_SKEW_MS) return { refused: 'stale' };
  return { userId };
}
