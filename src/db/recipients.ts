// Who a reminder goes to, read at send time so that a changed address is used.
import { TOKEN_COLUMNS, type TokenRow } from './tokens';
import type { Queryable } from './transaction';

export interface ReminderRecipient {
  token: TokenRow;
  login: string;
  /** Null when the owner has no verified address. */
  email: string | null;
}

/** The token and its owner's verified address; null when the token is gone. */
export async function findReminderRecipient(db: Queryable, tokenId: string): Promise<ReminderRecipient | null> {
  const { rows } = await db.query<TokenRow & { login: string; email: string | null }>(
    `SELECT t.*, u.login, CASE WHEN e.verified THEN e.email END AS email
       FROM (SELECT ${TOKEN_COLUMNS} FROM api_tokens WHERE id = $1) t
       JOIN users u ON u.id = t."userId"::bigint
       LEFT JOIN emails e ON e.user_id = u.id`,
    [tokenId],
  );
  const row = rows[0];
  if (!row) return null;
  const { login, email, ...token } = row;
  return { token, login, email };
}

/** Several tokens and their owners' verified addresses, re-read when one email covers them all; gone ones are missing. */
export async function findReminderRecipients(db: Queryable, tokenIds: string[]): Promise<Map<string, ReminderRecipient>> {
  const { rows } = await db.query<TokenRow & { login: string; email: string | null }>(
    `SELECT t.id, t."userId", t.name, t."createdAt", t."lastUsedAt", t.revoked, t."crateScopes", t."endpointScopes",
            t."expiredAt", t."expiryNotificationAt", t."expiryWorkflowStartedAt",
            u.login, CASE WHEN e.verified THEN e.email END AS email
       FROM (SELECT ${TOKEN_COLUMNS} FROM api_tokens WHERE id = ANY($1::bigint[])) t
       JOIN users u ON u.id = t."userId"::bigint
       LEFT JOIN emails e ON e.user_id = u.id`,
    [tokenIds],
  );
  return new Map(rows.map(({ login, email, ...token }) => [token.id, { token, login, email }]));
}

/** A token a digest may cover: who owns it is the key (`userId`), the rule reads only its dates. */
export interface DigestCandidateRow {
  id: string;
  userId: string;
  createdAt: Date;
  expiredAt: Date;
  revoked: boolean;
}

/**
 * The user's other tokens whose expiry falls in [from, to]. Revoked ones too: a digest records why it left
 * them out.
 */
export async function findTokensOfUserExpiringBetween(
  db: Queryable,
  userId: string,
  excludeTokenId: string,
  from: Date,
  to: Date,
): Promise<DigestCandidateRow[]> {
  const { rows } = await db.query<DigestCandidateRow>(
    `SELECT id::text, user_id::text AS "userId", created_at AS "createdAt", expired_at AS "expiredAt", revoked
       FROM api_tokens
      WHERE user_id = $1 AND id <> $2 AND expired_at BETWEEN $3 AND $4
      ORDER BY expired_at, id`,
    [userId, excludeTokenId, from, to],
  );
  return rows;
}
