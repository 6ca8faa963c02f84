// The forecast's query: reminders of active tokens that fall due in a time range and are not yet final, from
// api_tokens in crates.io's shape (both adapters read it) and this service's notification log.
import type { Queryable } from '../db/transaction';

export interface PlannedReminder {
  key: string;
  kind: 'warning' | 'expired';
  beforeExpiryMs: number;
}

export interface DueCount {
  /** UTC day, YYYY-MM-DD. */
  date: string;
  kind: 'warning' | 'expired';
  count: number;
}

/**
 * Per UTC day and kind, the reminders due in [from, to) of tokens not revoked: each token's due time is its
 * expiry minus the reminder's offset. Left out, as the workflow leaves them out: reminders due before the
 * token was created (created-inside-window) and those already sent, skipped, failed or suppressed.
 * One pass over api_tokens (the tokens expiring from `from` to `to` plus the longest offset), each joined
 * with the plan; the notification log is hashed once.
 */
export async function countDueReminders(db: Queryable, plan: PlannedReminder[], from: Date, to: Date): Promise<DueCount[]> {
  if (plan.length === 0) return [];
  const offsets = plan.map((p) => p.beforeExpiryMs);
  const { rows } = await db.query<{ date: string; kind: 'warning' | 'expired'; count: string }>(
    `WITH plan AS MATERIALIZED (
       SELECT key, kind, before_ms * interval '1 millisecond' AS before
         FROM unnest($1::text[], $2::text[], $3::bigint[]) AS p (key, kind, before_ms)
     ), due AS (
       SELECT t.id, plan.key, plan.kind, t.expired_at - plan.before AS due_at
         FROM api_tokens t
         JOIN plan ON t.expired_at >= $4::timestamptz + plan.before AND t.expired_at < $5::timestamptz + plan.before
        WHERE NOT t.revoked AND t.expired_at >= $6 AND t.expired_at < $7
          AND t.expired_at - plan.before >= t.created_at
     )
     SELECT ((due.due_at AT TIME ZONE 'UTC')::date)::text AS date, due.kind, count(*) AS count
       FROM due
       LEFT JOIN expiry_notifications n ON n.token_id = due.id AND n.reminder = due.key AND n.status <> 'sending'
      WHERE n.id IS NULL
      GROUP BY 1, 2`,
    [
      plan.map((p) => p.key),
      plan.map((p) => p.kind),
      offsets,
      from,
      to,
      new Date(from.getTime() + Math.min(...offsets)),
      new Date(to.getTime() + Math.max(...offsets)),
    ],
  );
  return rows.map((r) => ({ date: r.date, kind: r.kind, count: Number(r.count) }));
}
