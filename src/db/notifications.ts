// The notification log: one row per (token, reminder), the audit trail and the guard that makes each send happen once.
import type { Pool } from 'pg';
import type { DigestTiming, NotificationStatus } from '../tokenExpiry/contract';
import { withTransaction, type Queryable } from './transaction';

export interface NotificationRow {
  reminder: string;
  dueAt: Date;
  status: NotificationStatus;
  reason: string | null;
  providerMessageId: string | null;
  submittedAt: Date | null;
  attempts: number;
  lastError: string | null;
  /** The email's dedupe key: one for every token a digest covered (EXPIRY_DIGEST_WINDOW). */
  digest: string;
  /** The token whose workflow claimed the row and sent it; null for rows from before digests. */
  sentByTokenId: string | null;
  /** Why it went when it did (DIGEST_TIMINGS); null for rows from before digests. */
  timing: DigestTiming | null;
  createdAt: Date;
  updatedAt: Date;
}

const NOTIFICATION_COLUMNS = `
  reminder, due_at AS "dueAt", status, reason, provider_message_id AS "providerMessageId",
  submitted_at AS "submittedAt", attempts, last_error AS "lastError", dedupe_key AS "digest",
  sent_by_token_id::text AS "sentByTokenId", timing, created_at AS "createdAt", updated_at AS "updatedAt"`;

/** Which row: the token and the reminder's key (and its due time, for the dedupe key). */
export interface ReminderRef {
  tokenId: string;
  reminder: string;
  dueAt: string;
}

/** Also sent to Postmark as Metadata, so an accepted message can be found again after an ambiguous failure. */
export function dedupeKey({ tokenId, reminder, dueAt }: ReminderRef): string {
  return `token-expiry:${tokenId}:${reminder}:${Math.floor(Date.parse(dueAt) / 1000)}`;
}

export type Claim =
  | { kind: 'claimed'; attempts: number }
  | { kind: 'final'; row: NotificationRow & { status: Exclude<NotificationStatus, 'sending'> } }
  | { kind: 'busy'; leaseMs: number | null }
  // The token row was deleted: its log rows went with it (ON DELETE CASCADE) and none can be written.
  | { kind: 'gone' };

/**
 * Takes the (token, reminder) row for one send attempt. A row already sent, skipped or failed is final;
 * a row whose claim has not lapsed belongs to an attempt still running elsewhere (a worker that stalled).
 */
export async function claimReminder(db: Queryable, ref: ReminderRef, leaseMs: number): Promise<Claim> {
  const { rows } = await db.query<{ attempts: number }>(
    `INSERT INTO expiry_notifications (token_id, reminder, due_at, dedupe_key, status, attempts, claimed_until)
     SELECT $1, $2, $3, $4, 'sending', 1, now() + $5 * interval '1 millisecond'
      WHERE EXISTS (SELECT 1 FROM api_tokens WHERE id = $1)
     ON CONFLICT (token_id, reminder) DO UPDATE
       SET attempts = expiry_notifications.attempts + 1, claimed_until = excluded.claimed_until, updated_at = now()
       WHERE expiry_notifications.status = 'sending'
         AND (expiry_notifications.claimed_until IS NULL OR expiry_notifications.claimed_until < now())
     RETURNING attempts`,
    [ref.tokenId, ref.reminder, ref.dueAt, dedupeKey(ref), leaseMs],
  );
  if (rows[0]) return { kind: 'claimed', attempts: rows[0].attempts };
  const { rows: current } = await db.query<NotificationRow & { leaseMs: number | null }>(
    `SELECT ${NOTIFICATION_COLUMNS}, ceil(extract(epoch FROM claimed_until - now()) * 1000)::int AS "leaseMs"
       FROM expiry_notifications WHERE token_id = $1 AND reminder = $2`,
    [ref.tokenId, ref.reminder],
  );
  // Neither claimed nor there: only a deleted token leaves no row (the insert checks it exists).
  if (!current[0]) return { kind: 'gone' };
  const { leaseMs: lease, ...row } = current[0];
  if (row.status === 'sending') return { kind: 'busy', leaseMs: lease };
  return { kind: 'final', row: { ...row, status: row.status } };
}

/** Lets the next attempt claim the row at once after this one failed in a way worth retrying. */
export async function releaseClaim(db: Queryable, ref: ReminderRef, error: string): Promise<void> {
  await db.query(
    `UPDATE expiry_notifications SET claimed_until = NULL, last_error = $3, updated_at = now()
      WHERE token_id = $1 AND reminder = $2 AND status = 'sending'`,
    [ref.tokenId, ref.reminder, error],
  );
}

/** The row and the token's expiry_notification_at in one statement: one round trip, atomic, instead of four. */
export async function markSent(
  db: Queryable,
  ref: ReminderRef,
  delivery: { messageId: string; submittedAt: Date },
): Promise<void> {
  await db.query(
    `WITH sent AS (
       UPDATE expiry_notifications
          SET status = 'sent', provider_message_id = $3, submitted_at = $4, claimed_until = NULL, updated_at = now()
        WHERE token_id = $1 AND reminder = $2
     )
     UPDATE api_tokens SET expiry_notification_at = now() WHERE id = $1`,
    [ref.tokenId, ref.reminder, delivery.messageId, delivery.submittedAt],
  );
}

/**
 * Records a reminder that will not be sent; a row that is already final keeps its outcome. A deleted token
 * gets no row: the foreign key would refuse it, and a retry would hit the same refusal forever.
 */
export async function markUnsent(
  db: Queryable,
  ref: ReminderRef,
  outcome: { status: 'skipped' | 'failed' | 'suppressed'; reason: string },
): Promise<void> {
  await db.query(
    `INSERT INTO expiry_notifications (token_id, reminder, due_at, dedupe_key, status, reason)
     SELECT $1, $2, $3, $4, $5, $6
      WHERE EXISTS (SELECT 1 FROM api_tokens WHERE id = $1)
     ON CONFLICT (token_id, reminder) DO UPDATE
       SET status = excluded.status, reason = excluded.reason, claimed_until = NULL, updated_at = now()
       WHERE expiry_notifications.status = 'sending'`,
    [ref.tokenId, ref.reminder, ref.dueAt, dedupeKey(ref), outcome.status, outcome.reason],
  );
}

export async function listNotifications(db: Queryable, tokenId: string): Promise<NotificationRow[]> {
  const { rows } = await db.query<NotificationRow>(
    `SELECT ${NOTIFICATION_COLUMNS} FROM expiry_notifications WHERE token_id = $1 ORDER BY due_at, reminder`,
    [tokenId],
  );
  return rows;
}

// ---- Digests: one email for several tokens of one user (EXPIRY_DIGEST_WINDOW) ----

/** One token's row in a digest: its reminder's due time, and the key of the email (part) it goes in. */
export interface DigestRow {
  tokenId: string;
  dueAt: string;
  digest: string;
}

export type DigestClaim =
  | { kind: 'claimed'; attempts: number; rows: DigestRow[] }
  | Exclude<Claim, { kind: 'claimed' }>;

/**
 * Claims the leader's row, and on its first attempt the members `pick` chooses that no one else has taken,
 * in one transaction under a lock per user: two workflows of one user waking in the same second never both
 * send. A later attempt takes back the rows its earlier attempts claimed (sent_by_token_id is the leader)
 * and adds none. Every claimed row keeps the key of the email it goes in.
 */
export async function claimDigest(
  pool: Pool,
  userId: string,
  leader: ReminderRef,
  leaseMs: number,
  pick: (db: Queryable) => Promise<DigestRow[]>,
): Promise<DigestClaim> {
  return withTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`token-expiry-digest:${userId}`]);
    const { rows } = await client.query<{ attempts: number }>(
      `INSERT INTO expiry_notifications
              (token_id, reminder, due_at, dedupe_key, status, attempts, claimed_until, sent_by_token_id)
       VALUES ($1, $2, $3, $4, 'sending', 1, now() + $5 * interval '1 millisecond', $1)
       ON CONFLICT (token_id, reminder) DO UPDATE
         SET attempts = expiry_notifications.attempts + 1, claimed_until = excluded.claimed_until,
             sent_by_token_id = excluded.sent_by_token_id, updated_at = now()
         WHERE expiry_notifications.status = 'sending'
           AND (expiry_notifications.claimed_until IS NULL OR expiry_notifications.claimed_until < now())
       RETURNING attempts`,
      [leader.tokenId, leader.reminder, leader.dueAt, dedupeKey(leader), leaseMs],
    );
    const claimed = rows[0];
    if (!claimed) {
      const claim = await claimReminder(client, leader, leaseMs);
      if (claim.kind === 'claimed') throw new Error('claimDigest: the row was free on the second look');
      return claim;
    }
    if (claimed.attempts === 1) {
      const members = await pick(client);
      const { rows: taken } = await client.query<DigestRow>(
        `INSERT INTO expiry_notifications
                (token_id, reminder, due_at, dedupe_key, status, attempts, claimed_until, sent_by_token_id)
         SELECT m.token_id, $2, m.due_at, m.dedupe_key, 'sending', 1, now() + $3 * interval '1 millisecond', $1
           FROM unnest($4::bigint[], $5::timestamptz[], $6::text[]) AS m (token_id, due_at, dedupe_key)
         ON CONFLICT (token_id, reminder) DO NOTHING
         RETURNING token_id::text AS "tokenId", due_at AS "dueAt", dedupe_key AS "digest"`,
        [
          leader.tokenId,
          leader.reminder,
          leaseMs,
          members.map((m) => m.tokenId),
          members.map((m) => m.dueAt),
          members.map((m) => m.digest),
        ],
      );
      const leaderRow = { tokenId: leader.tokenId, dueAt: leader.dueAt, digest: dedupeKey(leader) };
      return { kind: 'claimed', attempts: 1, rows: [leaderRow, ...taken.map(asDigestRow)] };
    }
    const { rows: again } = await client.query<DigestRow>(
      `UPDATE expiry_notifications SET claimed_until = now() + $3 * interval '1 millisecond', updated_at = now()
        WHERE sent_by_token_id = $1 AND reminder = $2 AND status = 'sending'
        RETURNING token_id::text AS "tokenId", due_at AS "dueAt", dedupe_key AS "digest"`,
      [leader.tokenId, leader.reminder, leaseMs],
    );
    return { kind: 'claimed', attempts: claimed.attempts, rows: again.map(asDigestRow) };
  });
}

function asDigestRow(row: { tokenId: string; dueAt: string | Date; digest: string }): DigestRow {
  return { ...row, dueAt: new Date(row.dueAt).toISOString() };
}

/** Moves the leader's row, taken over from another token's digest that never went out, to an email of its own. */
export async function rekeyDigestRow(db: Queryable, ref: ReminderRef): Promise<string> {
  const key = dedupeKey(ref);
  await db.query(
    `UPDATE expiry_notifications SET dedupe_key = $3, updated_at = now()
      WHERE token_id = $1 AND reminder = $2 AND status = 'sending'`,
    [ref.tokenId, ref.reminder, key],
  );
  return key;
}

/**
 * Records one email of a digest as sent for every row still claimed under its key. `now` is the send's time
 * (the activity's clock) and `waited` whether the leader's notice waited: together they say each row's timing.
 */
export async function markDigestSent(
  pool: Pool,
  key: string,
  delivery: { messageId: string; submittedAt: Date },
  at: { now: Date; waited: boolean },
): Promise<string[]> {
  return withTransaction(pool, async (client) => {
    const { rows } = await client.query<{ tokenId: string }>(
      `UPDATE expiry_notifications
          SET status = 'sent', provider_message_id = $2, submitted_at = $3, claimed_until = NULL, updated_at = now(),
              timing = CASE WHEN $5 AND (token_id = sent_by_token_id OR due_at <= $4) THEN 'waited-for-digest'
                            WHEN due_at > $4 THEN 'early-for-digest'
                            ELSE 'due' END
        WHERE dedupe_key = $1 AND status = 'sending'
        RETURNING token_id::text AS "tokenId"`,
      [key, delivery.messageId, delivery.submittedAt, at.now, at.waited],
    );
    await client.query('UPDATE api_tokens SET expiry_notification_at = now() WHERE id = ANY($1::bigint[])', [
      rows.map((r) => r.tokenId),
    ]);
    return rows.map((r) => r.tokenId);
  });
}

/** Which of these tokens already have a row for the reminder (claimed or final): a digest does not wait for those. */
export async function tokensWithRow(db: Queryable, tokenIds: string[], reminder: string): Promise<Set<string>> {
  const { rows } = await db.query<{ tokenId: string }>(
    `SELECT token_id::text AS "tokenId" FROM expiry_notifications WHERE token_id = ANY($1::bigint[]) AND reminder = $2`,
    [tokenIds, reminder],
  );
  return new Set(rows.map((r) => r.tokenId));
}
