// The notification log: one row per (token, reminder), the audit trail and the guard that makes each send happen once.
import type { DigestTiming, NotificationStatus, UnsentOutcome } from '../tokenExpiry/contract';
import type { Queryable } from './transaction';

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

export const NOTIFICATION_COLUMNS = `
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

/**
 * Records a reminder the workflow decided not to send, or gave up on, without a claim: a row that is final,
 * held by a live claim, or whose send's outcome is unknown keeps what it says (src/db/claims.ts decides those),
 * and is returned as it stands (e.g. sent already in another token's digest); null when written.
 */
export async function markUnsent(
  db: Queryable,
  ref: ReminderRef,
  outcome: { status: UnsentOutcome; reason: string },
): Promise<NotificationRow | null> {
  const { rowCount } = await db.query(
    `INSERT INTO expiry_notifications (token_id, reminder, due_at, dedupe_key, status, reason)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (token_id, reminder) DO UPDATE
       SET status = excluded.status, reason = excluded.reason, claimed_until = NULL, updated_at = now()
       WHERE expiry_notifications.status = 'sending' AND expiry_notifications.outcome_unknown_at IS NULL
         AND (expiry_notifications.claimed_until IS NULL OR expiry_notifications.claimed_until < now())
     RETURNING 1`,
    [ref.tokenId, ref.reminder, ref.dueAt, dedupeKey(ref), outcome.status, outcome.reason],
  );
  if (rowCount) return null;
  const { rows } = await db.query<NotificationRow>(
    `SELECT ${NOTIFICATION_COLUMNS} FROM expiry_notifications WHERE token_id = $1 AND reminder = $2`,
    [ref.tokenId, ref.reminder],
  );
  return rows[0] ?? null;
}

export async function listNotifications(db: Queryable, tokenId: string): Promise<NotificationRow[]> {
  const { rows } = await db.query<NotificationRow>(
    `SELECT ${NOTIFICATION_COLUMNS} FROM expiry_notifications WHERE token_id = $1 ORDER BY due_at, reminder`,
    [tokenId],
  );
  return rows;
}

/** Which of these tokens already have a row for the reminder (claimed or final): a digest does not wait for those. */
export async function tokensWithRow(db: Queryable, tokenIds: string[], reminder: string): Promise<Set<string>> {
  const { rows } = await db.query<{ tokenId: string }>(
    `SELECT token_id::text AS "tokenId" FROM expiry_notifications WHERE token_id = ANY($1::bigint[]) AND reminder = $2`,
    [tokenIds, reminder],
  );
  return new Set(rows.map((r) => r.tokenId));
}
