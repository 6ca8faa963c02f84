// Users' webhooks and the webhook channel's delivery log (this service's own schema). A delivery row is claimed
// and fenced like an email's (src/db/claims.ts): a claim hands out a fence, and every later write names it.
import { randomUUID } from 'node:crypto';
import type { Queryable } from './transaction';

export const WEBHOOK_CHANNELS = ['email', 'webhook'] as const;
export type WebhookChannel = (typeof WEBHOOK_CHANNELS)[number];

export interface UserWebhook {
  url: string;
  secret: string;
  /** Where reminders go while the webhook is set: always webhook, and email unless the user turned it off. */
  channels: WebhookChannel[];
  createdAt: Date;
  rotatedAt: Date;
}

const WEBHOOK_COLUMNS = 'url, secret, channels, created_at AS "createdAt", rotated_at AS "rotatedAt"';

export async function findUserWebhook(db: Queryable, userId: string): Promise<UserWebhook | null> {
  const { rows } = await db.query<UserWebhook>(`SELECT ${WEBHOOK_COLUMNS} FROM user_webhooks WHERE user_id = $1`, [userId]);
  return rows[0] ?? null;
}

/** Sets the user's URL and channels; `newSecret` is stored only when the user has no webhook yet. */
export async function saveUserWebhook(
  db: Queryable,
  userId: string,
  change: { url: string; channels: WebhookChannel[] | null; newSecret: string },
): Promise<{ webhook: UserWebhook; created: boolean }> {
  const { rows } = await db.query<UserWebhook & { created: boolean }>(
    `INSERT INTO user_webhooks (user_id, url, secret, channels) VALUES ($1, $2, $3, coalesce($4::text[], '{email,webhook}'))
     ON CONFLICT (user_id) DO UPDATE SET url = excluded.url, channels = coalesce($4::text[], user_webhooks.channels)
     RETURNING ${WEBHOOK_COLUMNS}, (xmax = 0) AS created`,
    [userId, change.url, change.newSecret, change.channels],
  );
  const { created, ...webhook } = rows[0]!;
  return { webhook, created };
}

/** The user's secret is now `secret`; the old one no longer signs anything. Null: the user has no webhook. */
export async function rotateWebhookSecret(db: Queryable, userId: string, secret: string): Promise<UserWebhook | null> {
  const { rows } = await db.query<UserWebhook>(
    `UPDATE user_webhooks SET secret = $2, rotated_at = now() WHERE user_id = $1 RETURNING ${WEBHOOK_COLUMNS}`,
    [userId, secret],
  );
  return rows[0] ?? null;
}

export async function deleteUserWebhook(db: Queryable, userId: string): Promise<boolean> {
  return ((await db.query('DELETE FROM user_webhooks WHERE user_id = $1', [userId])).rowCount ?? 0) > 0;
}

export const WEBHOOK_DELIVERY_STATUSES = ['sending', 'sent', 'failed', 'skipped'] as const;
export type WebhookDeliveryStatus = (typeof WEBHOOK_DELIVERY_STATUSES)[number];

export interface WebhookDeliveryRow {
  reminder: string;
  webhookId: string;
  status: WebhookDeliveryStatus;
  reason: string | null;
  attempts: number;
  lastError: string | null;
  /** The receiver's last HTTP status; null when it never answered. */
  responseStatus: number | null;
  deliveredAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

const DELIVERY_COLUMNS = `reminder, webhook_id AS "webhookId", status, reason, attempts, last_error AS "lastError",
  response_status AS "responseStatus", delivered_at AS "deliveredAt", created_at AS "createdAt", updated_at AS "updatedAt"`;

export async function listWebhookDeliveries(db: Queryable, tokenId: string): Promise<WebhookDeliveryRow[]> {
  const { rows } = await db.query<WebhookDeliveryRow>(
    `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries WHERE token_id = $1 ORDER BY created_at, reminder`,
    [tokenId],
  );
  return rows;
}

export type DeliveryClaim =
  | { kind: 'claimed'; fence: string; attempts: number; createdAt: Date }
  | { kind: 'final'; row: WebhookDeliveryRow }
  | { kind: 'busy'; leaseMs: number | null };

/** Takes the row of one notification for one attempt, unless it is final or another attempt's lease is live. */
export async function claimDelivery(
  db: Queryable,
  ref: { tokenId: string; reminder: string; webhookId: string },
  leaseMs: number,
): Promise<DeliveryClaim> {
  const fence = randomUUID();
  const { rows } = await db.query<{ attempts: number; createdAt: Date }>(
    `INSERT INTO webhook_deliveries (token_id, reminder, webhook_id, status, attempts, claim_id, claimed_until)
     VALUES ($1, $2, $3, 'sending', 1, $4, now() + $5 * interval '1 millisecond')
     ON CONFLICT (token_id, reminder) DO UPDATE
       SET attempts = webhook_deliveries.attempts + 1, claim_id = excluded.claim_id,
           claimed_until = excluded.claimed_until, updated_at = now()
       WHERE webhook_deliveries.status = 'sending'
         AND (webhook_deliveries.claimed_until IS NULL OR webhook_deliveries.claimed_until < now())
     RETURNING attempts, created_at AS "createdAt"`,
    [ref.tokenId, ref.reminder, ref.webhookId, fence, leaseMs],
  );
  if (rows[0]) return { kind: 'claimed', fence, ...rows[0] };
  const { rows: held } = await db.query<WebhookDeliveryRow & { leaseMs: number | null }>(
    `SELECT ${DELIVERY_COLUMNS}, ceil(extract(epoch FROM claimed_until - now()) * 1000)::int AS "leaseMs"
       FROM webhook_deliveries WHERE token_id = $1 AND reminder = $2`,
    [ref.tokenId, ref.reminder],
  );
  const row = held[0];
  if (!row || row.status === 'sending') return { kind: 'busy', leaseMs: row?.leaseMs ?? null };
  const { leaseMs: _, ...final } = row;
  return { kind: 'final', row: final };
}

/** Records the attempt's end under its fence: final (sent, failed, skipped), or given back for the next attempt. */
export async function recordDelivery(
  db: Queryable,
  fence: string,
  outcome: { status: WebhookDeliveryStatus; responseStatus: number | null; reason?: string; error?: string },
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE webhook_deliveries
        SET status = $2, response_status = coalesce($3, response_status), reason = coalesce($4, reason),
            last_error = coalesce($5, last_error), claimed_until = NULL, updated_at = now(),
            delivered_at = CASE WHEN $2 = 'sent' THEN now() ELSE delivered_at END
      WHERE claim_id = $1 AND status = 'sending'`,
    [fence, outcome.status, outcome.responseStatus, outcome.reason ?? null, outcome.error ?? null],
  );
  return (rowCount ?? 0) > 0;
}
