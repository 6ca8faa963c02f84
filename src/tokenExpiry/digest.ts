// The digest rule (docs/design.md, Digests): which of a user's tokens one email covers, and how long an "expired"
// notice waits for the others. Pure, times in ms: the send activity applies it to what it read, the property
// test to generated users.

export interface DigestToken {
  tokenId: string;
  createdAt: number;
  expiresAt: number;
}

/** How early a warning `beforeExpiryMs` ahead may go out in another token's email: the window, at most a seventh of its lead. */
export function earlyAllowanceMs(windowMs: number, beforeExpiryMs: number): number {
  return Math.min(windowMs, Math.floor(beforeExpiryMs / 7));
}

/**
 * The expiries the activity reads candidates from, for the leader's reminder sent at `now`: wide enough for
 * every token the picks below may return.
 */
export function candidateExpiries(
  leader: DigestToken,
  reminder: { kind: 'warning' | 'expired'; beforeExpiryMs: number },
  windowMs: number,
  now: number,
): { from: number; to: number } {
  if (reminder.kind === 'expired') {
    return { from: leader.expiresAt - windowMs, to: Math.max(now, leader.expiresAt + windowMs) };
  }
  const allowance = earlyAllowanceMs(windowMs, reminder.beforeExpiryMs);
  return { from: leader.expiresAt - allowance, to: now + reminder.beforeExpiryMs + allowance };
}

/**
 * The other tokens a warning sent at `now` also covers: the same warning of theirs falls due no later than
 * `now` plus the allowance (so none goes out earlier than the rule allows), and no earlier than the allowance
 * before the leader's own (older ones are late already: their own workflow decides, e.g. superseded). A token
 * must have existed when its warning fell due, and not have expired yet.
 */
export function warningDigest(
  leader: DigestToken,
  others: DigestToken[],
  beforeExpiryMs: number,
  windowMs: number,
  now: number,
): DigestToken[] {
  const allowance = earlyAllowanceMs(windowMs, beforeExpiryMs);
  const leaderDue = leader.expiresAt - beforeExpiryMs;
  return others.filter((token) => {
    const due = token.expiresAt - beforeExpiryMs;
    return due >= leaderDue - allowance && due <= now + allowance && due >= token.createdAt && token.expiresAt > now;
  });
}

/**
 * An "expired" notice is never early. Called at its due time with the user's other tokens whose notice has
 * not gone out: if some expire after it inside the window, it waits for the last of them; if one expired
 * before it inside the window, that one's notice is waiting and will cover it, so it waits out that window
 * (and sends only if the other did not). Once `waited`, or with nothing to wait for, it covers every one of
 * them that has expired by now, back to a window before its own.
 */
export function expiredDigest(
  leader: DigestToken,
  pending: DigestToken[],
  windowMs: number,
  now: number,
  waited: boolean,
): { waitUntil: number } | { group: DigestToken[] } {
  if (!waited) {
    const inWindow = pending.filter((t) => Math.abs(t.expiresAt - leader.expiresAt) <= windowMs);
    const earlier = inWindow.filter((t) => t.expiresAt < leader.expiresAt);
    const later = inWindow.filter((t) => t.expiresAt > leader.expiresAt);
    const until = earlier.length > 0
      ? Math.min(...earlier.map((t) => t.expiresAt)) + windowMs
      : Math.max(leader.expiresAt, ...later.map((t) => t.expiresAt));
    if (until > now) return { waitUntil: until };
  }
  return { group: pending.filter((t) => t.expiresAt <= now && t.expiresAt >= leader.expiresAt - windowMs) };
}
