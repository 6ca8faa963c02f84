// The forecast's query: reminders of active tokens that fall due in a time range and are not yet final, from
// api_tokens in crates.io's shape (both adapters read it) and this service's notification log.
import type { Queryable } from '../db/transaction';

export interface PlannedReminder {
  key: string;
  kind: 'warning' | 'expired';
  beforeExpiryMs: number;
  /** Digests: a user's same reminders falling due up to this long after the first go in its email; 0: one email each. */
  digestSpanMs: number;
}

export interface DueCount {
  /** UTC day, YYYY-MM-DD. */
  date: string;
  kind: 'warning' | 'expired';
  /** Token reminders due that day. */
  count: number;
  /** Emails whose first reminder falls due that day. */
  emails: number;
}

/**
 * Per UTC day and kind, the reminders due in [from, to) of tokens not revoked: each token's due time is its
 * expiry minus the reminder's offset. Left out, as the workflow leaves them out: reminders due before the
 * token was created (created-inside-window) and those already sent, skipped, failed or suppressed.
 * One pass over api_tokens (the tokens expiring from `from` to `to` plus the longest offset), each joined
 * with the plan; the notification log is hashed once.
 *
 * Emails: a user's same reminders form one email while each falls due within the digest span of the one
 * before it (gaps and islands: one sort of the due reminders, two window passes over it), in parts of at most `perEmail` tokens. The digest
 * activity starts a new email once the span from the first is over, so a chain of reminders each close to
 * the last but spanning more than the window counts here as one email where it sends several.
 */
export async function countDueReminders(
  db: Queryable,
  plan: PlannedReminder[],
  { from, to, perEmail, exceptUserIds = [] }: { from: Date; to: Date; perEmail: number; exceptUserIds?: string[] },
): Promise<DueCount[]> {
  if (plan.length === 0) return [];
  const offsets = plan.map((p) => p.beforeExpiryMs);
  const { rows } = await db.query<{ date: string; kind: 'warning' | 'expired'; count: string; emails: string }>(
    `WITH plan AS MATERIALIZED (
       SELECT key, kind, before_ms * interval '1 millisecond' AS before, span_ms * interval '1 millisecond' AS span
         FROM unnest($1::text[], $2::text[], $3::bigint[], $8::bigint[]) AS p (key, kind, before_ms, span_ms)
     ), due AS (
       SELECT t.id, t.user_id, plan.key, plan.kind, plan.span, t.expired_at - plan.before AS due_at
         FROM api_tokens t
         JOIN plan ON t.expired_at >= $4::timestamptz + plan.before AND t.expired_at < $5::timestamptz + plan.before
        WHERE NOT t.revoked AND t.expired_at >= $6 AND t.expired_at < $7
          AND t.expired_at - plan.before >= t.created_at
          -- Users with preferences of their own are counted by their own plans (countOwnPlans).
          AND t.user_id <> ALL($10::bigint[])
     ), marked AS (
       SELECT due.id, due.user_id, due.key, due.due_at, due.kind,
              row_number() OVER w AS n,
              -- A new email where digests are off, or where this user's last such reminder fell due more than the span before.
              CASE WHEN due.span = interval '0' OR lag(due.due_at) OVER w IS NULL OR due.due_at - lag(due.due_at) OVER w > due.span
                   THEN true ELSE false END AS starts_email
         FROM due
         LEFT JOIN expiry_notifications n ON n.token_id = due.id AND n.reminder = due.key AND n.status <> 'sending'
        WHERE n.id IS NULL
       WINDOW w AS (PARTITION BY due.user_id, due.key ORDER BY due.due_at, due.id)
     ), emails AS (
       -- The same order again (no second sort): each reminder's email's first due time and its place in that email.
       SELECT due_at, kind,
              max(CASE WHEN starts_email THEN due_at END) OVER w AS email_due_at,
              n - max(CASE WHEN starts_email THEN n END) OVER w AS place
         FROM marked
       WINDOW w AS (PARTITION BY user_id, key ORDER BY due_at, id ROWS UNBOUNDED PRECEDING)
     ), days AS (
       -- Per reminder's day, its email's day and kind: a handful of groups, then each count by its own day.
       SELECT (due_at AT TIME ZONE 'UTC')::date AS day, (email_due_at AT TIME ZONE 'UTC')::date AS email_day, kind,
              count(*) AS reminders, count(*) FILTER (WHERE place % $9 = 0) AS emails
         FROM emails
        GROUP BY 1, 2, 3
     )
     SELECT day::text AS date, kind, sum(reminders) AS count, sum(emails) AS emails
       FROM (SELECT day, kind, reminders, 0 AS emails FROM days UNION ALL SELECT email_day, kind, 0, emails FROM days) AS by_day
      GROUP BY 1, 2`,
    [
      plan.map((p) => p.key),
      plan.map((p) => p.kind),
      offsets,
      from,
      to,
      new Date(from.getTime() + Math.min(...offsets)),
      new Date(to.getTime() + Math.max(...offsets)),
      plan.map((p) => p.digestSpanMs),
      perEmail,
      exceptUserIds,
    ],
  );
  return rows.map((r) => ({ date: r.date, kind: r.kind, count: Number(r.count), emails: Number(r.emails) }));
}

/** A token whose reminders the forecast works out itself: its owner has a plan of their own. */
export interface ForecastToken {
  id: string;
  userId: string;
  createdAt: Date;
  expiredAt: Date;
}

/**
 * The active tokens of these users expiring in [from, to), with the reminders of theirs already final in the
 * notification log (`<tokenId>:<reminder>`). One pass over api_tokens by user (crates.io has no index on user_id:
 * a scan, as the forecast's main query is).
 */
export async function findForecastTokensOfUsers(
  db: Queryable,
  userIds: string[],
  { from, to }: { from: Date; to: Date },
): Promise<{ tokens: ForecastToken[]; final: Set<string> }> {
  if (userIds.length === 0) return { tokens: [], final: new Set() };
  const { rows } = await db.query<ForecastToken & { final: string[] | null }>(
    `SELECT t.id::text, t.user_id::text AS "userId", t.created_at AS "createdAt", t.expired_at AS "expiredAt",
            (SELECT array_agg(n.reminder) FROM expiry_notifications n WHERE n.token_id = t.id AND n.status <> 'sending') AS final
       FROM api_tokens t
      WHERE t.user_id = ANY($1::bigint[]) AND NOT t.revoked AND t.expired_at >= $2 AND t.expired_at < $3`,
    [userIds, from, to],
  );
  const final = new Set(rows.flatMap((row) => (row.final ?? []).map((reminder) => `${row.id}:${reminder}`)));
  return { tokens: rows.map(({ final: _, ...token }) => token), final };
}
