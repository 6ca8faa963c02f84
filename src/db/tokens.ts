// The registry's API tokens (the builtin tables).
import type { Queryable } from './transaction';

export interface TokenRow {
  id: string;
  userId: string;
  name: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revoked: boolean;
  crateScopes: string[] | null;
  endpointScopes: string[] | null;
  expiredAt: Date | null;
  expiryNotificationAt: Date | null;
  expiryWorkflowStartedAt: Date | null;
}

export const TOKEN_COLUMNS = `
  id::text, user_id::text AS "userId", name, created_at AS "createdAt", last_used_at AS "lastUsedAt", revoked,
  crate_scopes AS "crateScopes", endpoint_scopes AS "endpointScopes", expired_at AS "expiredAt",
  expiry_notification_at AS "expiryNotificationAt", expiry_workflow_started_at AS "expiryWorkflowStartedAt"`;

/** Postgres rejects ids outside bigint with an error; an id that cannot exist is simply not found. */
export function isTokenId(id: string): boolean {
  return /^[1-9][0-9]{0,17}$/.test(id);
}

export interface NewTokenRow {
  userId: string;
  hash: Buffer;
  name: string;
  expiredAt: Date | null;
  crateScopes: string[] | null;
  endpointScopes: string[] | null;
}

export async function insertToken(db: Queryable, token: NewTokenRow): Promise<TokenRow> {
  const { rows } = await db.query<TokenRow>(
    `INSERT INTO api_tokens (user_id, token, name, expired_at, crate_scopes, endpoint_scopes)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${TOKEN_COLUMNS}`,
    [token.userId, token.hash, token.name, token.expiredAt, token.crateScopes, token.endpointScopes],
  );
  return rows[0] as TokenRow;
}

export async function findToken(db: Queryable, id: string): Promise<TokenRow | null> {
  if (!isTokenId(id)) return null;
  const { rows } = await db.query<TokenRow>(`SELECT ${TOKEN_COLUMNS} FROM api_tokens WHERE id = $1`, [id]);
  return rows[0] ?? null;
}

/** Marks an active token revoked; null when it was revoked already (or is not there). */
export async function revokeActiveToken(db: Queryable, id: string): Promise<TokenRow | null> {
  if (!isTokenId(id)) return null;
  const { rows } = await db.query<TokenRow>(
    `UPDATE api_tokens SET revoked = true WHERE id = $1 AND NOT revoked RETURNING ${TOKEN_COLUMNS}`,
    [id],
  );
  return rows[0] ?? null;
}

/** Marks the token revoked; returns it as it is now, or null when there is no such token. */
export async function revokeTokenRow(db: Queryable, id: string): Promise<TokenRow | null> {
  if (!isTokenId(id)) return null;
  const { rows } = await db.query<TokenRow>(
    `UPDATE api_tokens SET revoked = true WHERE id = $1 RETURNING ${TOKEN_COLUMNS}`,
    [id],
  );
  return rows[0] ?? null;
}

export async function markExpiryWorkflowStarted(db: Queryable, id: string): Promise<Date> {
  const { rows } = await db.query<{ at: Date }>(
    'UPDATE api_tokens SET expiry_workflow_started_at = now() WHERE id = $1 RETURNING expiry_workflow_started_at AS at',
    [id],
  );
  return rows[0]?.at as Date;
}

/**
 * A user's tokens as crates.io lists them: not revoked, newest first, and not expired, or expired
 * within the last `expiredDays` days.
 */
export async function listTokensOfUser(db: Queryable, userId: string, expiredDays = 0): Promise<TokenRow[]> {
  const { rows } = await db.query<TokenRow>(
    `SELECT ${TOKEN_COLUMNS} FROM api_tokens
      WHERE user_id = $1 AND NOT revoked
        AND (expired_at IS NULL OR expired_at > now() - make_interval(days => $2))
      ORDER BY api_tokens.id DESC`,
    [userId, expiredDays],
  );
  return rows;
}
