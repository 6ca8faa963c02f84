// Reads of an `api_tokens` table in crates.io's shape (both adapters have one), joined with this service's
// own bookkeeping (expiry_workflows). Every query names its columns: a role may read only these.
import type { StoppedFilter, TokenPage, TokenRow } from './adapter';
import type { Queryable } from '../db/transaction';

/** The api_tokens columns every adapter reads; never `token` (the secret's hash). */
export const API_TOKEN_READS = [
  'id', 'user_id', 'name', 'created_at', 'last_used_at', 'revoked', 'crate_scopes', 'endpoint_scopes', 'expired_at',
];

export interface ApiTokenQueries {
  columns: string;
  findToken(db: Queryable, id: string): Promise<TokenRow | null>;
  findTokens(db: Queryable, ids: string[]): Promise<TokenRow[]>;
  listTokensOfUser(db: Queryable, userId: string, expiredDays: number): Promise<TokenRow[]>;
  findTokensWithoutWorkflow(db: Queryable, page: TokenPage): Promise<TokenRow[]>;
  findStoppedCandidates(db: Queryable, page: TokenPage & StoppedFilter): Promise<TokenRow[]>;
  countSweepCandidates(db: Queryable, filter: { now: Date } & StoppedFilter): Promise<{ missing: number; stopped: number }>;
}

/**
 * `notifiedColumn`: whether the table's expiry_notification_at is ours to read (builtin); crates.io's
 * belongs to its own expiry job.
 */
export function apiTokenQueries({ notifiedColumn }: { notifiedColumn: boolean }): ApiTokenQueries {
  const columns = `
    t.id::text, t.user_id::text AS "userId", t.name, t.created_at AS "createdAt", t.last_used_at AS "lastUsedAt",
    t.revoked, t.crate_scopes AS "crateScopes", t.endpoint_scopes AS "endpointScopes", t.expired_at AS "expiredAt",
    ${notifiedColumn ? 't.expiry_notification_at' : 'NULL::timestamptz'} AS "expiryNotificationAt",
    w.started_at AS "expiryWorkflowStartedAt"`;
  const from = 'api_tokens t LEFT JOIN expiry_workflows w ON w.token_id = t.id';
  // Pages are in t.id order (a bare "id" would be the text column of the select list, where "10" < "9"):
  // a merge of the two primary keys, which stops at the page's end.
  const missing = `w.token_id IS NULL AND t.expired_at IS NOT NULL AND NOT t.revoked AND t.expired_at > $1`;
  const stopped = `w.token_id IS NOT NULL AND (
      (NOT t.revoked AND t.expired_at > $1
        AND ($2::timestamptz IS NULL OR t.expired_at <= $2) AND ($3::timestamptz IS NULL OR w.started_at < $3))
      OR (t.revoked AND w.cancelled_at IS NULL))`;

  return {
    columns,
    async findToken(db, id) {
      const { rows } = await db.query<TokenRow>(`SELECT ${columns} FROM ${from} WHERE t.id = $1`, [id]);
      return rows[0] ?? null;
    },
    async findTokens(db, ids) {
      if (ids.length === 0) return [];
      const { rows } = await db.query<TokenRow>(`SELECT ${columns} FROM ${from} WHERE t.id = ANY($1::bigint[])`, [ids]);
      return rows;
    },
    async listTokensOfUser(db, userId, expiredDays) {
      const { rows } = await db.query<TokenRow>(
        `SELECT ${columns} FROM ${from}
          WHERE t.user_id = $1 AND NOT t.revoked
            AND (t.expired_at IS NULL OR t.expired_at > now() - make_interval(days => $2))
          ORDER BY t.id DESC`,
        [userId, expiredDays],
      );
      return rows;
    },
    async findTokensWithoutWorkflow(db, page) {
      const { rows } = await db.query<TokenRow>(
        `SELECT ${columns} FROM ${from} WHERE ${missing} AND t.id > $2 ORDER BY t.id LIMIT $3`,
        [page.now, page.afterId ?? '0', page.limit],
      );
      return rows;
    },
    async findStoppedCandidates(db, page) {
      const { rows } = await db.query<TokenRow>(
        `SELECT ${columns} FROM ${from} WHERE ${stopped} AND t.id > $4 ORDER BY t.id LIMIT $5`,
        [page.now, page.until, page.recordedBefore, page.afterId ?? '0', page.limit],
      );
      return rows;
    },
    async countSweepCandidates(db, { now, until, recordedBefore }) {
      const [m, s] = await Promise.all([
        db.query<{ n: string }>(`SELECT count(*) AS n FROM ${from} WHERE ${missing}`, [now]),
        db.query<{ n: string }>(`SELECT count(*) AS n FROM ${from} WHERE ${stopped}`, [now, until, recordedBefore]),
      ]);
      return { missing: Number(m.rows[0]?.n ?? 0), stopped: Number(s.rows[0]?.n ?? 0) };
    },
  };
}
