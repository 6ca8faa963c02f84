/**
 * The claim protocol on its own, against the real PostgreSQL: whoever holds a reminder's row (its fence) is the
 * only one whose writes change it. A stale attempt (its lease lapsed, another took the row) writes nothing.
 */
import type { ReminderRef } from '../src/db/notifications';
import { dedupeKey, listNotifications } from '../src/db/notifications';
import {
  claimRows,
  confirmClaim,
  markOutcomeUnknown,
  recordSent,
  recordUnsent,
  rekeyRow,
  releaseClaim,
  type Claim,
} from '../src/db/claims';
import { builtinWriter, insertUser } from '../src/registry/builtin';
import { DROPPED_FROM_PLAN } from '../src/tokenExpiry/contract';
import { createTestDatabase, type TestDatabase } from './helpers/database';

let database: TestDatabase;
let userId: string;
let tokens = 0;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  database = await createTestDatabase();
  userId = (await insertUser(database.pool, { login: 'claimer', email: 'c@example.com', verified: true })).id;
});
afterAll(async () => {
  await database?.drop();
});

async function reminder(reminderName = '7d'): Promise<ReminderRef> {
  const row = await builtinWriter.insertToken(database.pool, {
    userId,
    hash: Buffer.from(`claims-${++tokens}`),
    name: 'ci',
    expiredAt: new Date('2030-06-17T12:00:00Z'),
    crateScopes: null,
    endpointScopes: null,
  });
  return { tokenId: row.id, reminder: reminderName, dueAt: '2030-06-10T12:00:00.000Z' };
}

const claim = (leader: ReminderRef, leaseMs: number, members: ReminderRef[] = []) =>
  claimRows(database.pool, {
    lockKey: userId,
    leader,
    leaseMs,
    members: members.map((m) => ({ tokenId: m.tokenId, dueAt: m.dueAt, dedupeKey: dedupeKey(leader) })),
  });

function claimed(c: Claim): Extract<Claim, { kind: 'claimed' }> {
  if (c.kind !== 'claimed') throw new Error(`expected to claim the row, got ${JSON.stringify(c)}`);
  return c;
}

async function row(ref: ReminderRef) {
  const rows = await listNotifications(database.pool, ref.tokenId);
  return rows.find((r) => r.reminder === ref.reminder)!;
}

const sent = { messageId: 'msg-1', submittedAt: new Date('2030-06-10T12:00:01Z') };
const at = { now: new Date('2030-06-10T12:00:00Z'), waited: false };

test('a stale claim: once its lease lapsed and another attempt took the row, none of its writes changes anything', async () => {
  const ref = await reminder();
  const stale = claimed(await claim(ref, 1));
  await pause(20);
  const fresh = claimed(await claim(ref, 60_000));
  expect(fresh.attempts).toBe(2);
  const key = dedupeKey(ref);

  expect(await confirmClaim(database.pool, stale.fence, [ref.tokenId], 60_000, `${key}:stale`)).toEqual([]);
  expect(await markOutcomeUnknown(database.pool, stale.fence, 'stale', 60_000)).toEqual([]);
  expect(await releaseClaim(database.pool, stale.fence, 'stale')).toEqual([]);
  expect(await recordUnsent(database.pool, stale.fence, [ref.tokenId], { status: 'failed', reason: 'stale' })).toEqual([]);
  await rekeyRow(database.pool, stale.fence, ref);
  expect(await recordSent(database.pool, stale.fence, key, sent, at)).toEqual([]);
  const untouched = await row(ref);
  expect(untouched).toMatchObject({ status: 'sending', digest: key, lastError: null, providerMessageId: null, attempts: 2 });

  // The holder's own writes do change it, and it is recorded as sent once.
  expect(await confirmClaim(database.pool, fresh.fence, [ref.tokenId], 60_000, `${key}:a2`)).toEqual([ref.tokenId]);
  expect(await recordSent(database.pool, fresh.fence, `${key}:a2`, sent, at)).toEqual([ref.tokenId]);
  expect(await row(ref)).toMatchObject({ status: 'sent', providerMessageId: 'msg-1', digest: `${key}:a2`, timing: 'due' });
  // Sent is final: neither the stale nor the fresh claim writes again, and a new attempt answers the sent row.
  expect(await recordSent(database.pool, fresh.fence, `${key}:a2`, { ...sent, messageId: 'msg-2' }, at)).toEqual([]);
  const again = await claim(ref, 60_000);
  expect(again).toMatchObject({ kind: 'final', row: { status: 'sent', providerMessageId: 'msg-1' } });
});

test('a live claim keeps the row: another attempt is told it is busy and for how long', async () => {
  const ref = await reminder();
  claimed(await claim(ref, 30_000));
  const busy = await claim(ref, 30_000);
  expect(busy.kind).toBe('busy');
  const leaseMs = (busy as { leaseMs: number }).leaseMs;
  expect(leaseMs).toBeGreaterThan(20_000);
  expect(leaseMs).toBeLessThanOrEqual(30_000);
});

test('an ambiguous failure keeps the row held until its lease passes, and the next attempt knows since when', async () => {
  const ref = await reminder();
  const first = claimed(await claim(ref, 60_000));
  expect(first).toMatchObject({ attempts: 1, outcomeUnknownSince: null });
  expect(await confirmClaim(database.pool, first.fence, [ref.tokenId], 60_000, dedupeKey(ref))).toEqual([ref.tokenId]);
  expect(await markOutcomeUnknown(database.pool, first.fence, 'timeout', 300)).toEqual([ref.tokenId]);
  // A release (what a definite refusal does) does not free a row whose send may have gone.
  expect(await releaseClaim(database.pool, first.fence, 'refused')).toEqual([]);
  expect((await claim(ref, 60_000)).kind).toBe('busy');
  expect(await row(ref)).toMatchObject({ status: 'sending', lastError: 'timeout' });
  await pause(400);
  const next = claimed(await claim(ref, 60_000));
  expect(next.attempts).toBe(2);
  expect(next.outcomeUnknownSince).toBeInstanceOf(Date);
  // The search said nothing went: the confirm clears the unknown outcome, and a refusal now frees the row at once.
  expect(await confirmClaim(database.pool, next.fence, [ref.tokenId], 60_000, `${dedupeKey(ref)}:a2`)).toEqual([ref.tokenId]);
  expect(await releaseClaim(database.pool, next.fence, 'refused')).toEqual([ref.tokenId]);
  const third = claimed(await claim(ref, 60_000));
  expect(third).toMatchObject({ attempts: 3, outcomeUnknownSince: null });
});

test('a definite refusal gives the row back at once; a permanent one is recorded once and answers every retry', async () => {
  const ref = await reminder();
  const first = claimed(await claim(ref, 60_000));
  expect(await releaseClaim(database.pool, first.fence, '500')).toEqual([ref.tokenId]);
  expect(await row(ref)).toMatchObject({ status: 'sending', lastError: '500' });
  const second = claimed(await claim(ref, 60_000));
  expect(second.attempts).toBe(2);
  expect(await recordUnsent(database.pool, second.fence, [ref.tokenId], { status: 'failed', reason: 'inactive recipient' })).toEqual([ref.tokenId]);
  expect(await recordUnsent(database.pool, second.fence, [ref.tokenId], { status: 'failed', reason: 'again' })).toEqual([]);
  expect(await claim(ref, 60_000)).toMatchObject({ kind: 'final', row: { status: 'failed', reason: 'inactive recipient', attempts: 2 } });
});

test("a first attempt takes the user's other rows into its email; a later one takes back only those, once they lapsed", async () => {
  const leader = await reminder();
  const member = await reminder();
  const taken = await reminder();
  // Another attempt holds `taken` already: the leader's email does not list it.
  claimed(await claim(taken, 60_000));
  const first = claimed(await claim(leader, 1, [member, taken]));
  expect(first.rows.map((r) => r.tokenId)).toEqual([leader.tokenId, member.tokenId]);
  expect(first.rows[1]).toEqual({ tokenId: member.tokenId, dueAt: member.dueAt, dedupeKey: dedupeKey(leader) });
  expect(await row(member)).toMatchObject({ status: 'sending', sentByTokenId: leader.tokenId, digest: dedupeKey(leader) });
  await pause(20);
  const extra = await reminder();
  const second = claimed(await claim(leader, 60_000, [extra]));
  expect(second.attempts).toBe(2);
  expect(second.rows.map((r) => r.tokenId)).toEqual([leader.tokenId, member.tokenId]);
  // The first attempt's record finds the rows taken back, and writes nothing.
  expect(await recordSent(database.pool, first.fence, dedupeKey(leader), sent, at)).toEqual([]);
  expect(await recordSent(database.pool, second.fence, dedupeKey(leader), sent, { now: at.now, waited: true })).toEqual([
    leader.tokenId,
    member.tokenId,
  ]);
  expect((await row(leader)).timing).toBe('waited-for-digest');
});

test('a reminder a replan dropped and a later one put back is claimed afresh, with its new due time and key', async () => {
  const ref = await reminder();
  const first = claimed(await claim(ref, 60_000));
  await recordUnsent(database.pool, first.fence, [ref.tokenId], { status: 'skipped', reason: DROPPED_FROM_PLAN });
  const back = { ...ref, dueAt: '2030-06-11T12:00:00.000Z' };
  const restored = claimed(await claim(back, 60_000));
  expect(restored.attempts).toBe(1);
  expect(restored.rows[0]).toEqual({ tokenId: ref.tokenId, dueAt: back.dueAt, dedupeKey: dedupeKey(back) });
  expect(await row(ref)).toMatchObject({ status: 'sending', reason: null, dueAt: new Date(back.dueAt) });
  // Skipped for another reason stays final.
  await recordUnsent(database.pool, restored.fence, [ref.tokenId], { status: 'skipped', reason: 'token-revoked' });
  expect(await claim(back, 60_000)).toMatchObject({ kind: 'final', row: { status: 'skipped', reason: 'token-revoked' } });
});

test("the holder moves its leader's row to an email of its own; the rest of the old email keeps its key", async () => {
  const leader = await reminder();
  const member = await reminder();
  const first = claimed(await claim(leader, 1, [member]));
  await pause(20);
  // The member's own attempt takes its row back from the dead leader's digest and rekeys it to its own email.
  const own = claimed(await claim(member, 60_000));
  expect(own.rows[0]!.dedupeKey).toBe(dedupeKey(leader));
  expect(await rekeyRow(database.pool, own.fence, member)).toBe(dedupeKey(member));
  expect(await row(member)).toMatchObject({ status: 'sending', digest: dedupeKey(member) });
  expect(await row(leader)).toMatchObject({ digest: dedupeKey(leader) });
  expect(first.fence).not.toBe(own.fence);
});
