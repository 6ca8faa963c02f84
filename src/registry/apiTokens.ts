// Reads of `api_tokens`, `users` and `emails` tables in crates.io's shape (both adapters have them), joined with
// this service's own bookkeeping (expiry_workflows). Every query names its columns: a role may read only these.
import type { DigestCandidateRow, ReminderRecipient, RegistryAdapter, TokenRow } from './adapter';

/** The api_tokens columns every adapter reads; never `token` (the secret's hash). */
export const API_TOKEN_READS = [
  'id', 'user_id', 'name', 'created_at', 'last_used_at', 'revoked', 'crate_scopes', 'endpoint_scopes', 'expired_at',
];

/** What both adapters answer the same way, from tables in crates.io's shape. */
type ApiTokenReads = Pick<
  RegistryAdapter,
  | 'findTokens'
  | 'findRecipients'
  | 'findTokensOfUserExpiringBetween'
  | 'listTokensOfUser'
  | 'findTokensWithoutWorkflow'
  | 'findStoppedCandidates'
  | 'countSweepCandidates'
  | 'maxTokenId'
  | 'findToken'
  | 'findRecipient'
>;

export interface ApiTokenQueries {
  /** The select list of a TokenRow, over `api_tokens t LEFT JOIN expiry_workflows w`. */
  columns: string;
  queries: ApiTokenReads;
}

/**
 * `greeting`: the users column a reminder greets by (a login); `isTokenId`: the id column's range (an id
 * outside it is not found, instead of an error from Postgres).
 */
export function apiTokenQueries({ greeting, isTokenId }: { greeting: string; isTokenId: (id: string) => boolean }): ApiTokenQueries {
  const columns = `
    t.id::text, t.user_id::text AS "userId", t.name, t.created_at AS "createdAt", t.last_used_at AS "lastUsedAt",
    t.revoked, t.crate_scopes AS "crateScopes", t.endpoint_scopes AS "endpointScopes", t.expired_at AS "expiredAt",
    w.started_at AS "expiryWorkflowStartedAt"`;
  const from = 'api_tokens t LEFT JOIN expiry_workflows w ON w.token_id = t.id';
  // Pages are in t.id order (a bare "id" would be the text column of the select list, where "10" < "9"):
  // a merge of the two primary keys, which stops at the page's end.
  const missing = `w.token_id IS NULL AND t.expired_at IS NOT NULL AND NOT t.revoked AND t.expired_at > $1`;
  const stopped = `w.token_id IS NOT NULL AND (
      (NOT t.revoked AND t.expired_at > $1
        AND ($2::timestamptz IS NULL OR t.expired_at <= $2) AND ($3::timestamptz IS NULL OR w.started_at < $3))
      OR (t.revoked AND w.cancelled_at IS NULL))`;

  const queries: ApiTokenReads = {
    async findToken(db, id) {
      if (!isTokenId(id)) return null;
      const { rows } = await db.query<TokenRow>(`SELECT ${columns} FROM ${from} WHERE t.id = $1`, [id]);
      return rows[0] ?? null;
    },
    async findTokens(db, all) {
      const ids = all.filter(isTokenId);
      if (ids.length === 0) return [];
      const { rows } = await db.query<TokenRow>(`SELECT ${columns} FROM ${from} WHERE t.id = ANY($1::bigint[])`, [ids]);
      return rows;
    },
    findRecipient: async (db, id) => (await queries.findRecipients(db, [id])).get(id) ?? null,
    // One round trip per send: the token, its owner's greeting and verified address (one emails row per user).
    async findRecipients(db, all) {
      const ids = all.filter(isTokenId);
      if (ids.length === 0) return new Map<string, ReminderRecipient>();
      const { rows } = await db.query<TokenRow & { greeting: string; email: string | null }>(
        `SELECT ${columns}, u.${greeting} AS greeting, CASE WHEN e.verified THEN e.email END AS email
           FROM ${from} JOIN users u ON u.id = t.user_id LEFT JOIN emails e ON e.user_id = u.id
          WHERE t.id = ANY($1::bigint[])`,
        [ids],
      );
      return new Map(rows.map(({ greeting: name, email, ...token }) => [token.id, { token, greeting: name, email }]));
    },
    // By our own index (user, expiry at start), then each token's current state by its primary key.
    async findTokensOfUserExpiringBetween(db, { userId, excludeTokenId, from: start, to }) {
      const { rows } = await db.query<DigestCandidateRow>(
        `SELECT t.id::text, t.user_id::text AS "userId", t.created_at AS "createdAt", t.expired_at AS "expiredAt", t.revoked
           FROM expiry_workflows w JOIN api_tokens t ON t.id = w.token_id
          WHERE w.user_id = $1 AND w.expires_at BETWEEN $3 AND $4 AND w.token_id <> $2
            AND t.user_id = $1 AND t.expired_at BETWEEN $3 AND $4
          ORDER BY t.expired_at, t.id`,
        [userId, excludeTokenId, start, to],
      );
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
    async maxTokenId(db) {
      // The primary key's last entry: one index probe however large the table.
      const { rows } = await db.query<{ id: string | null }>('SELECT max(id)::text AS id FROM api_tokens');
      return rows[0]?.id ?? null;
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
  return { columns, queries };
}
