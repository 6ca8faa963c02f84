// The digest rule over generated users (seeded, so a failure can be replayed): creation times, lifetimes,
// windows and reminder lists. Each token's workflow wakes at its due time and calls the rule, as the send
// activity does (candidates read through candidateExpiries' range, those already sent left out).
import { candidateExpiries, earlyAllowanceMs, expiredDigest, warningDigest, type DigestToken } from '../src/tokenExpiry/digest';
import { random } from './helpers/random';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const TRIALS = 400;

/** A revoked token's workflow is cancelled: it wakes no more and is not waited for. */
type Token = DigestToken & { revokedAt: number };

interface User {
  tokens: Token[];
  windowMs: number;
  reminders: number[];
}

function generateUser(next: () => number): User {
  const pick = <T>(items: T[]): T => items[Math.floor(next() * items.length)] as T;
  const windowMs = pick([MINUTE, 10 * MINUTE, HOUR, 6 * HOUR, DAY, 3 * DAY]);
  const reminders = [30 * DAY, 7 * DAY, 3 * DAY, DAY, 12 * HOUR, HOUR, 10 * MINUTE].filter(() => next() < 0.4);
  const tokens: Token[] = [];
  const count = 1 + Math.floor(next() * 12);
  // Batches: a few creation moments, tokens made seconds to hours apart around each, lifetimes shared or not.
  const batches = Array.from({ length: 1 + Math.floor(next() * 3) }, () => Math.floor(next() * 10 * DAY));
  for (let i = 0; i < count; i++) {
    const createdAt = pick(batches) + Math.floor(next() * pick([MINUTE, HOUR, DAY]));
    const lifetime = pick([HOUR, DAY, 7 * DAY, 30 * DAY, 90 * DAY]) + Math.floor(next() * pick([1_000, MINUTE, 2 * HOUR]));
    const revokedAt = next() < 0.2 ? createdAt + Math.floor(next() * lifetime * 1.2) : Infinity;
    tokens.push({ tokenId: String(i + 1), createdAt, expiresAt: createdAt + lifetime, revokedAt });
  }
  return { tokens, windowMs, reminders };
}

type Sent = Map<string, { at: number; by: string }>;

/** One warning (lead `beforeExpiryMs`) of every token, each workflow waking at its due time. */
function simulateWarning(user: User, beforeExpiryMs: number): Sent {
  const sent: Sent = new Map();
  const due = (t: Token) => t.expiresAt - beforeExpiryMs;
  // A warning due before the token existed is skipped by its workflow (created-inside-window).
  const wakes = user.tokens.filter((t) => due(t) >= t.createdAt).sort((a, b) => due(a) - due(b) || Number(a.tokenId) - Number(b.tokenId));
  for (const leader of wakes) {
    const now = due(leader);
    if (sent.has(leader.tokenId) || leader.revokedAt <= now) continue;
    const range = candidateExpiries(leader, { kind: 'warning', beforeExpiryMs }, user.windowMs, now);
    const candidates = user.tokens.filter(
      (t) =>
        t !== leader && t.createdAt <= now && t.revokedAt > now && !sent.has(t.tokenId) && t.expiresAt >= range.from && t.expiresAt <= range.to,
    );
    for (const t of [leader, ...warningDigest(leader, candidates, beforeExpiryMs, user.windowMs, now)]) {
      sent.set(t.tokenId, { at: now, by: leader.tokenId });
    }
  }
  return sent;
}

/** The "expired" notice of every token: a workflow wakes at expiry, and again when the rule asks it to wait. */
function simulateExpired(user: User): Sent {
  const sent: Sent = new Map();
  const wakes = user.tokens.map((t) => ({ token: t, at: t.expiresAt, waited: false }));
  while (wakes.length > 0) {
    wakes.sort((a, b) => a.at - b.at || Number(a.token.tokenId) - Number(b.token.tokenId));
    const { token: leader, at: now, waited } = wakes.shift()!;
    if (sent.has(leader.tokenId) || leader.revokedAt <= now) continue;
    const range = candidateExpiries(leader, { kind: 'expired', beforeExpiryMs: 0 }, user.windowMs, now);
    const pending = user.tokens.filter(
      (t) =>
        t !== leader && t.createdAt <= now && t.revokedAt > now && !sent.has(t.tokenId) && t.expiresAt >= range.from && t.expiresAt <= range.to,
    );
    const plan = expiredDigest(leader, pending, user.windowMs, now, waited);
    if ('waitUntil' in plan) {
      expect(plan.waitUntil).toBeGreaterThan(now);
      wakes.push({ token: leader, at: plan.waitUntil, waited: true });
      continue;
    }
    for (const t of [leader, ...plan.group]) sent.set(t.tokenId, { at: now, by: leader.tokenId });
  }
  return sent;
}

const users = Array.from({ length: TRIALS }, (_, seed) => ({ seed, user: generateUser(random(seed + 1)) }));

test.each(users.map(({ seed, user }) => [seed, user] as const))(
  'seed %i: no warning later than its due time or earlier than the rule allows, each sent once',
  (_seed, user) => {
    for (const beforeExpiryMs of user.reminders) {
      const sent = simulateWarning(user, beforeExpiryMs);
      // The rule, written out: the window, at most a seventh of the warning's lead.
      const allowance = Math.min(user.windowMs, beforeExpiryMs / 7);
      for (const token of user.tokens) {
        const due = token.expiresAt - beforeExpiryMs;
        const record = sent.get(token.tokenId);
        if (token.revokedAt <= due) continue; // revoked before it fell due: may or may not have gone early
        if (due < token.createdAt) {
          expect(record).toBeUndefined();
          continue;
        }
        expect(record).toBeDefined();
        expect(record!.at).toBeLessThanOrEqual(due);
        expect(due - record!.at).toBeLessThanOrEqual(allowance);
        // Only ever while the token exists.
        expect(record!.at).toBeGreaterThanOrEqual(token.createdAt);
      }
    }
  },
);

test.each(users.map(({ seed, user }) => [seed, user] as const))(
  'seed %i: no "expired" notice early, none more than the window late, and late only beside another token',
  (_seed, user) => {
    const sent = simulateExpired(user);
    for (const token of user.tokens) {
      const record = sent.get(token.tokenId);
      if (token.revokedAt <= token.expiresAt + user.windowMs) continue; // its workflow may have been cancelled while waiting
      expect(record).toBeDefined();
      const late = record!.at - token.expiresAt;
      expect(late).toBeGreaterThanOrEqual(0);
      expect(late).toBeLessThanOrEqual(user.windowMs);
      if (late > 0) {
        const neighbours = user.tokens.filter((t) => t !== token && Math.abs(t.expiresAt - token.expiresAt) <= user.windowMs);
        expect(neighbours.length).toBeGreaterThan(0);
      }
    }
  },
);

test('the allowance: a 7d warning at most a day early, a 1d one at most about 3.4 hours, never more than the window', () => {
  expect(earlyAllowanceMs(3 * DAY, 7 * DAY)).toBe(DAY);
  expect(earlyAllowanceMs(DAY, DAY) / HOUR).toBeCloseTo(3.43, 2);
  expect(earlyAllowanceMs(HOUR, 7 * DAY)).toBe(HOUR);
});

test('the generator makes digests happen: most users share some email', () => {
  const shared = users.filter(({ user }) => {
    const sent = simulateExpired(user);
    return [...sent.entries()].some(([tokenId, { by }]) => tokenId !== by);
  });
  expect(shared.length).toBeGreaterThan(TRIALS / 4);
});
