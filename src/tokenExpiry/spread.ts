// The per-token jitter that keeps a mass expiry (one date set for many tokens) from waking them all in
// the same second. Bundled with the workflow: pure arithmetic, the same answer on every replay.

/** A warning moves earlier by at most this share of its lead time: a 7d warning by at most 1h 40m 48s. */
export const MAX_SPREAD_SHARE = 0.01;

/** FNV-1a over the token id, as a fraction in [0, 1): the same for a token everywhere, spread evenly across ids. */
function tokenFraction(tokenId: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < tokenId.length; i++) {
    hash = Math.imul(hash ^ tokenId.charCodeAt(i), 0x01000193) >>> 0;
  }
  // Fold the high bits in: consecutive ids differ mostly in their low bits after one multiply.
  hash = Math.imul(hash ^ (hash >>> 15), 0x2c1b3c6d);
  return ((hash ^ (hash >>> 12)) >>> 0) / 0x1_0000_0000;
}

/**
 * Every warning goes out at least this share of its spread early (a minute of a 15-minute spread): the send's
 * own latency, seconds when thousands share a second, then never makes it later than its nominal due time.
 */
const MIN_EARLY_SHARE = 1 / 15;

/**
 * How much earlier than `beforeExpiryMs` before expiry this token's warning goes out: from a fifteenth of the
 * bound to the bound, where the bound is `spreadMs` (EXPIRY_SPREAD) but never more than 1 % of the lead time;
 * whole milliseconds. The "expired" notice gets none.
 */
export function warningOffsetMs(tokenId: string, beforeExpiryMs: number, spreadMs: number): number {
  const bound = Math.min(spreadMs, Math.floor(beforeExpiryMs * MAX_SPREAD_SHARE));
  if (bound <= 0) return 0;
  return Math.floor((MIN_EARLY_SHARE + (1 - MIN_EARLY_SHARE) * tokenFraction(tokenId)) * bound);
}
