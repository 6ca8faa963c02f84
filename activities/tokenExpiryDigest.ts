// Which of the user's other tokens one email covers (EXPIRY_DIGEST_WINDOW), chosen before the claim; the claim
// takes those still free. With digests off, or for a token that is gone, an email covers its own token only.
import type { Pool } from 'pg';
import type { SendReminderInput } from '../src/tokenExpiry/contract';
import { candidateExpiries, expiredDigest, warningDigest, type DigestToken } from '../src/tokenExpiry/digest';
import { tokensWithRow } from '../src/db/notifications';
import type { RegistryAdapter } from '../src/registry/adapter';
import type { Config } from '../src/config';
import { findPreferences } from '../src/db/preferences';
import { userPlan } from '../src/preferences/rules';
import { latestWakingAtOrBefore } from '../src/tokenExpiry/wakingHours';

export type Members = { members: DigestToken[] } | { waitUntil: string };

export function createMemberChooser(
  db: Pool,
  registry: RegistryAdapter,
  settings: Pick<Config, 'EXPIRY_DIGEST_WINDOW' | 'EXPIRY_REMINDERS' | 'EXPIRED_NOTICE' | 'EXPIRY_REMINDER_MENU'>,
) {
  const windowMs = settings.EXPIRY_DIGEST_WINDOW;
  return async function chooseMembers(input: SendReminderInput, userId: string, createdAt: Date, now: Date): Promise<Members> {
    if (windowMs <= 0) return { members: [] };
    const leader: DigestToken = { tokenId: input.tokenId, createdAt: createdAt.getTime(), expiresAt: Date.parse(input.expiresAt) };
    const beforeExpiryMs = leader.expiresAt - Date.parse(input.dueAt);
    const range = candidateExpiries(leader, { kind: input.kind, beforeExpiryMs }, windowMs, now.getTime());
    const rows = await registry.findTokensOfUserExpiringBetween(db, {
      userId,
      excludeTokenId: input.tokenId,
      from: new Date(range.from),
      to: new Date(range.to),
    });
    const candidates = rows.map((row) => ({
      tokenId: row.id,
      createdAt: row.createdAt.getTime(),
      expiresAt: row.expiredAt.getTime(),
      revoked: row.revoked,
    }));
    if (input.kind === 'warning') {
      return { members: warningDigest(leader, candidates, beforeExpiryMs, windowMs, now.getTime()) };
    }
    const taken = await tokensWithRow(db, [input.tokenId, ...candidates.map((c) => c.tokenId)], input.reminder);
    if (taken.has(input.tokenId)) return { members: [] }; // covered or claimed already: the claim says which
    const pending = candidates.filter((c) => !taken.has(c.tokenId));
    // Only a token that may still go out is worth waiting for; a revoked one is recorded with its reason.
    const plan = expiredDigest(leader, pending.filter((c) => !c.revoked), windowMs, now.getTime(), input.waited === true);
    if ('waitUntil' in plan) {
      // Never past the end of the owner's waking hours: the notice goes then, with those expired by then; the
      // others' own notices go at the start of the next window.
      const hours = userPlan(await findPreferences(db, userId), settings).wakingHours;
      const until = hours ? latestWakingAtOrBefore(plan.waitUntil, hours) : plan.waitUntil;
      if (until > now.getTime()) return { waitUntil: new Date(until).toISOString() };
    }
    return { members: (expiredDigest(leader, pending, windowMs, now.getTime(), true) as { group: DigestToken[] }).group };
  };
}
