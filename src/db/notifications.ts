// The notification log: one row per (token, reminder), the audit trail and the guard that makes each send happen once.
import type { Pool, PoolClient } from 'pg';
import type { NotificationStatus } from '../tokenExpiry/contract';
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
  createdAt: Date;
  updatedAt: Date;
}

const NOTIFICATION_COLUMNS = `
  reminder, due_at AS "dueAt", status, reason, provider_message_id AS "providerMessageId",
  submitted_at AS "submittedAt", attempts, last_error AS "lastError", created_at AS "createdAt",
  updated_at AS "updatedAt"`;

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
  | { kind: 'busy'; leaseMs: number | null };

/**
 * Takes the (token, reminder) row for one send attempt. A row already sent, skipped or failed is final;
 * a row whose claim has not lapsed belongs to an attempt still running elsewhere (a worker that stalled).
 */
export async function claimReminder(db: Queryable, ref: ReminderRef, leaseMs: number): Promise<Claim> {
  const { rows } = await db.query<{ attempts: number }>(
    `INSERT INTO expiry_notifications (token_id, reminder, due_at, dedupe_key, status, attempts, claimed_until)
     VALUES ($1, $2, $3, $4, 'sending', 1, now() + $5 * interval '1 millisecond')
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
  if (!current[0]) return { kind: 'busy', leaseMs: null };
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

/** `noteOnToken` runs in the same transaction: the builtin registry's expiry_notification_at; none elsewhere. */
export async function markSent(
  pool: Pool,
  ref: ReminderRef,
  delivery: { messageId: string; submittedAt: Date },
  noteOnToken?: (client: PoolClient, tokenId: string) => Promise<void>,
): Promise<void> {
  await withTransaction(pool, async (client) => {
    await client.query(
      `UPDATE expiry_notifications
          SET status = 'sent', provider_message_id = $3, submitted_at = $4, claimed_until = NULL, updated_at = now()
        WHERE token_id = $1 AND reminder = $2`,
      [ref.tokenId, ref.reminder, delivery.messageId, delivery.submittedAt],
    );
    await noteOnToken?.(client, ref.tokenId);
  });
}

/** Records a reminder that will not be sent; a row that is already final keeps its outcome. */
export async function markUnsent(
  db: Queryable,
  ref: ReminderRef,
  outcome: { status: 'skipped' | 'failed' | 'suppressed'; reason: string },
): Promise<void> {
  await db.query(
    `INSERT INTO expiry_notifications (token_id, reminder, due_at, dedupe_key, status, reason)
     VALUES ($1, $2, $3, $4, $5, $6)
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
