// The claim protocol on the notification log: a send attempt takes its rows with a fencing token (claim_id),
// and every later write for those rows names it. A write that finds another claim holding a row changes nothing.
import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import { DROPPED_FROM_PLAN, type NotificationStatus, type UnsentOutcome } from '../tokenExpiry/contract';
import { dedupeKey, NOTIFICATION_COLUMNS, type NotificationRow, type ReminderRef } from './notifications';
import { withTransaction, type Queryable } from './transaction';

/** One row a claim holds: its token, its reminder's due time, and the key of the email (part) it goes in. */
export interface ClaimedRow {
  tokenId: string;
  dueAt: string;
  dedupeKey: string;
}

export type Claim =
  | {
      kind: 'claimed';
      /** The fencing token: every later write for these rows is conditional on it. */
      fence: string;
      attempts: number;
      /** Set when an earlier attempt's send ended without a definite answer. */
      outcomeUnknownSince: Date | null;
      rows: ClaimedRow[];
    }
  | { kind: 'final'; row: NotificationRow & { status: Exclude<NotificationStatus, 'sending'> } }
  | { kind: 'busy'; leaseMs: number | null };

const LEASE = `now() + $LEASE * interval '1 millisecond'`;
const lease = (param: number) => LEASE.replace('$LEASE', `$${param}`);
const LAPSED = `(expiry_notifications.claimed_until IS NULL OR expiry_notifications.claimed_until < now())`;
// A reminder a replan dropped, never sent, that a later replan put back: its workflow sends it afresh.
const RESTORED = `(expiry_notifications.status = 'skipped' AND expiry_notifications.reason = '${DROPPED_FROM_PLAN}')`;
const CLAIMED_ROW = `token_id::text AS "tokenId", due_at AS "dueAt", dedupe_key AS "dedupeKey"`;

/**
 * Takes the leader's row and, on its first attempt, the `members` (rows chosen for its digest) that no one else
 * has taken, under a lock per user (`lockKey`; null for a token that is gone, or with digests off), so two
 * workflows of one user waking in the same second never both send. A later attempt takes back the rows its
 * earlier attempts held (sent_by_token_id is the leader) once their lease has lapsed, and adds none. A row
 * already final answers as is, except one a replan dropped and a later one put back, which is claimed afresh; a
 * row another attempt holds is busy until its lease lapses.
 *
 * A claim of the leader's row alone (the common case: no digest members) is one statement, the lock taken in it
 * and held to its commit; members are inserted in the same transaction as the leader's row.
 */
export async function claimRows(
  pool: Pool,
  { lockKey, leader, leaseMs, members }: { lockKey: string | null; leader: ReminderRef; leaseMs: number; members: ClaimedRow[] },
): Promise<Claim> {
  const fence = randomUUID();
  if (members.length === 0) {
    const claimed = await claimLeader(pool, { lockKey, leader, leaseMs, fence });
    if (!claimed) return currentHolder(pool, leader);
    if (claimed.attempts === 1) return claimResult(fence, leader, claimed, []);
    // A later attempt: the leader's row is held already; its earlier attempts' rows are taken back under the lock.
    return withTransaction(pool, async (client) => claimResult(fence, leader, claimed, await takeBack(client, { lockKey, leader, leaseMs, fence })));
  }
  return withTransaction(pool, async (client) => {
    const claimed = await claimLeader(client, { lockKey, leader, leaseMs, fence });
    if (!claimed) return currentHolder(client, leader);
    if (claimed.attempts > 1) return claimResult(fence, leader, claimed, await takeBack(client, { lockKey: null, leader, leaseMs, fence }));
    const { rows: taken } = await client.query<ClaimedRow>(
      `INSERT INTO expiry_notifications
              (token_id, reminder, due_at, dedupe_key, status, attempts, claimed_until, sent_by_token_id, claim_id)
       SELECT m.token_id, $2, m.due_at, m.dedupe_key, 'sending', 1, ${lease(3)}, $1, $7
         FROM unnest($4::bigint[], $5::timestamptz[], $6::text[]) AS m (token_id, due_at, dedupe_key)
       ON CONFLICT (token_id, reminder) DO NOTHING
       RETURNING ${CLAIMED_ROW}`,
      [
        leader.tokenId,
        leader.reminder,
        leaseMs,
        members.map((m) => m.tokenId),
        members.map((m) => m.dueAt),
        members.map((m) => m.dedupeKey),
        fence,
      ],
    );
    return claimResult(fence, leader, claimed, taken);
  });
}

interface ClaimedLeader {
  attempts: number;
  outcomeUnknownSince: Date | null;
  dedupeKey: string;
}

/**
 * The user's lock (when `lockKey` is set; held until the transaction, or this statement alone, commits), then
 * the leader's row: new, or taken back from an attempt whose lease lapsed. Undefined when another holds it or it is final.
 */
async function claimLeader(
  db: Queryable,
  { lockKey, leader, leaseMs, fence }: { lockKey: string | null; leader: ReminderRef; leaseMs: number; fence: string },
): Promise<ClaimedLeader | undefined> {
  const { rows } = await db.query<ClaimedLeader>(
    `INSERT INTO expiry_notifications
            (token_id, reminder, due_at, dedupe_key, status, attempts, claimed_until, sent_by_token_id, claim_id)
     SELECT $1, $2, $3, $4, 'sending', 1, ${lease(5)}, $1, $6
       FROM (SELECT 1) AS one
       LEFT JOIN LATERAL (SELECT pg_advisory_xact_lock(hashtextextended($7::text, 0)) WHERE $7::text IS NOT NULL) AS user_lock ON true
     ON CONFLICT (token_id, reminder) DO UPDATE
       SET attempts = CASE WHEN ${RESTORED} THEN 1 ELSE expiry_notifications.attempts + 1 END,
           due_at = CASE WHEN ${RESTORED} THEN excluded.due_at ELSE expiry_notifications.due_at END,
           dedupe_key = CASE WHEN ${RESTORED} THEN excluded.dedupe_key ELSE expiry_notifications.dedupe_key END,
           status = 'sending', reason = NULL, claimed_until = excluded.claimed_until,
           sent_by_token_id = excluded.sent_by_token_id, claim_id = excluded.claim_id, updated_at = now()
       WHERE (expiry_notifications.status = 'sending' AND ${LAPSED}) OR ${RESTORED}
     RETURNING attempts, outcome_unknown_at AS "outcomeUnknownSince", dedupe_key AS "dedupeKey"`,
    [leader.tokenId, leader.reminder, leader.dueAt, dedupeKey(leader), leaseMs, fence, lockKey === null ? null : userLockKey(lockKey)],
  );
  return rows[0];
}

/** A later attempt's rows from its earlier attempts' digest, whose lease has lapsed (`lockKey`: take the user's lock first). */
async function takeBack(
  client: PoolClient,
  { lockKey, leader, leaseMs, fence }: { lockKey: string | null; leader: ReminderRef; leaseMs: number; fence: string },
): Promise<ClaimedRow[]> {
  if (lockKey) await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [userLockKey(lockKey)]);
  const { rows } = await client.query<ClaimedRow>(
    `UPDATE expiry_notifications SET claimed_until = ${lease(3)}, claim_id = $4, updated_at = now()
      WHERE sent_by_token_id = $1 AND reminder = $2 AND token_id <> $1 AND status = 'sending' AND ${LAPSED}
      RETURNING ${CLAIMED_ROW}`,
    [leader.tokenId, leader.reminder, leaseMs, fence],
  );
  return rows;
}

const userLockKey = (userId: string) => `token-expiry-digest:${userId}`;

function claimResult(fence: string, leader: ReminderRef, claimed: ClaimedLeader, others: ClaimedRow[]): Claim {
  const own: ClaimedRow = { tokenId: leader.tokenId, dueAt: leader.dueAt, dedupeKey: claimed.dedupeKey };
  return {
    kind: 'claimed',
    fence,
    attempts: claimed.attempts,
    outcomeUnknownSince: claimed.outcomeUnknownSince,
    rows: [own, ...others.map(asClaimedRow)],
  };
}

async function currentHolder(db: Queryable, ref: ReminderRef): Promise<Exclude<Claim, { kind: 'claimed' }>> {
  const { rows } = await db.query<NotificationRow & { leaseMs: number | null }>(
    `SELECT ${NOTIFICATION_COLUMNS}, ceil(extract(epoch FROM claimed_until - now()) * 1000)::int AS "leaseMs"
       FROM expiry_notifications WHERE token_id = $1 AND reminder = $2`,
    [ref.tokenId, ref.reminder],
  );
  if (!rows[0]) return { kind: 'busy', leaseMs: null };
  const { leaseMs, ...row } = rows[0];
  if (row.status === 'sending') return { kind: 'busy', leaseMs };
  return { kind: 'final', row: { ...row, status: row.status } };
}

function asClaimedRow(row: { tokenId: string; dueAt: string | Date; dedupeKey: string }): ClaimedRow {
  return { ...row, dueAt: new Date(row.dueAt).toISOString() };
}

/** The tokens whose rows this write changed; the caller compares them with the rows it meant to write. */
type Written = Promise<string[]>;

/**
 * Right before the send: confirms that the claim still holds every row of the email and extends it to
 * `leaseMs`, clearing an earlier unknown outcome (the search has just said it was not sent), and puts the key
 * the email goes out with on exactly those rows. Fewer rows than asked for: the claim lost the row of at least
 * one, and the email must not go.
 */
export async function confirmClaim(db: Queryable, fence: string, tokenIds: string[], leaseMs: number, key: string): Written {
  return written(
    db,
    `UPDATE expiry_notifications SET claimed_until = ${lease(3)}, outcome_unknown_at = NULL, dedupe_key = $4, updated_at = now()
      WHERE claim_id = $1 AND token_id = ANY($2::bigint[]) AND status = 'sending'
      RETURNING token_id::text AS "tokenId"`,
    [fence, tokenIds, leaseMs, key],
  );
}

/**
 * After an ambiguous failure: the rows stay held, marked unknown, until Postmark's search can be trusted,
 * counted from now (the send is over), which shortens the confirm's lease that covered a send still running.
 */
export async function markOutcomeUnknown(db: Queryable, fence: string, error: string, leaseMs: number): Written {
  return written(
    db,
    `UPDATE expiry_notifications
        SET outcome_unknown_at = now(), claimed_until = ${lease(3)}, last_error = $2, updated_at = now()
      WHERE claim_id = $1 AND status = 'sending'
      RETURNING token_id::text AS "tokenId"`,
    [fence, error, leaseMs],
  );
}

/** After a definite refusal (nothing was accepted): the next attempt may claim the rows at once. */
export async function releaseClaim(db: Queryable, fence: string, error: string): Written {
  return written(
    db,
    `UPDATE expiry_notifications SET claimed_until = NULL, last_error = $2, updated_at = now()
      WHERE claim_id = $1 AND status = 'sending' AND outcome_unknown_at IS NULL
      RETURNING token_id::text AS "tokenId"`,
    [fence, error],
  );
}

/** Moves the leader's row, taken over from another token's digest that never went out, to an email of its own. */
export async function rekeyRow(db: Queryable, fence: string, ref: ReminderRef): Promise<string> {
  const key = dedupeKey(ref);
  await db.query(
    `UPDATE expiry_notifications SET dedupe_key = $3, updated_at = now()
      WHERE claim_id = $1 AND token_id = $2 AND status = 'sending'`,
    [fence, ref.tokenId, key],
  );
  return key;
}

/**
 * Records one email as sent on every row the claim still holds under its key. `now` is the send's time and
 * `waited` whether the leader's notice waited: together they say each row's timing.
 */
export async function recordSent(
  db: Queryable,
  fence: string,
  key: string,
  delivery: { messageId: string; submittedAt: Date },
  at: { now: Date; waited: boolean },
): Written {
  return written(
    db,
    `UPDATE expiry_notifications
        SET status = 'sent', provider_message_id = $3, submitted_at = $4, claimed_until = NULL, outcome_unknown_at = NULL,
            updated_at = now(),
            timing = CASE WHEN $6 AND (token_id = sent_by_token_id OR due_at <= $5) THEN 'waited-for-digest'
                          WHEN due_at > $5 THEN 'early-for-digest'
                          ELSE 'due' END
      WHERE claim_id = $1 AND dedupe_key = $2 AND status = 'sending'
      RETURNING token_id::text AS "tokenId"`,
    [fence, key, delivery.messageId, delivery.submittedAt, at.now, at.waited],
  );
}

/** Records reminders of the claim that will not be sent (skipped, suppressed, refused for good). */
export async function recordUnsent(
  db: Queryable,
  fence: string,
  tokenIds: string[],
  outcome: { status: UnsentOutcome; reason: string },
): Written {
  return written(
    db,
    `UPDATE expiry_notifications SET status = $3, reason = $4, claimed_until = NULL, updated_at = now()
      WHERE claim_id = $1 AND token_id = ANY($2::bigint[]) AND status = 'sending'
      RETURNING token_id::text AS "tokenId"`,
    [fence, tokenIds, outcome.status, outcome.reason],
  );
}

async function written(db: Queryable, sql: string, params: unknown[]): Written {
  const { rows } = await db.query<{ tokenId: string }>(sql, params);
  return rows.map((r) => r.tokenId);
}
