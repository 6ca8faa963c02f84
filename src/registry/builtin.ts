// The builtin registry: today's users, emails and api_tokens tables (src/db/migrations.ts creates them), for a
// registry that lets this service own its tokens, and for the demo. The only adapter that writes.
import type { RegistryAdapter, TokenRow, TokenWriter, UserRow } from './adapter';
import { isBigintId } from './tokenId';
import { API_TOKEN_READS, apiTokenQueries } from './apiTokens';
import type { Queryable } from '../db/transaction';

const tokens = apiTokenQueries({ greeting: 'login', isTokenId: isBigintId });

/** The columns of a token row just written (it is joined with our bookkeeping as it is read). */
async function returningToken(db: Queryable, cte: string, params: unknown[]): Promise<TokenRow | null> {
  const { rows } = await db.query<TokenRow>(
    `WITH t AS (${cte} RETURNING id, user_id, name, created_at, last_used_at, revoked, crate_scopes, endpoint_scopes,
       expired_at)
     SELECT ${tokens.columns} FROM t LEFT JOIN expiry_workflows w ON w.token_id = t.id`,
    params,
  );
  return rows[0] ?? null;
}

/** A user and their one address, in one statement. */
export async function insertUser(db: Queryable, user: { login: string; email: string; verified: boolean }): Promise<UserRow> {
  const { rows } = await db.query<UserRow>(
    `WITH u AS (INSERT INTO users (login) VALUES ($1) RETURNING id, login),
          e AS (INSERT INTO emails (user_id, email, verified) SELECT id, $2, $3 FROM u)
     SELECT id::text, login FROM u`,
    [user.login, user.email, user.verified],
  );
  return rows[0] as UserRow;
}

/** The writes this registry allows: the token API and the token CLI commands. */
export const builtinWriter: TokenWriter = {
  insertUser,
  async insertToken(db, token) {
    return (await returningToken(
      db,
      `INSERT INTO api_tokens (user_id, token, name, expired_at, crate_scopes, endpoint_scopes)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [token.userId, token.hash, token.name, token.expiredAt, token.crateScopes, token.endpointScopes],
    )) as TokenRow;
  },
  revokeActiveToken: (db, id) =>
    isBigintId(id) ? returningToken(db, 'UPDATE api_tokens SET revoked = true WHERE id = $1 AND NOT revoked', [id]) : Promise.resolve(null),
  revokeToken: (db, id) =>
    isBigintId(id) ? returningToken(db, 'UPDATE api_tokens SET revoked = true WHERE id = $1', [id]) : Promise.resolve(null),
};

export const builtinRegistry: RegistryAdapter = {
  name: 'builtin',
  isTokenId: isBigintId,
  ...tokens.queries,

  async findUserByLogin(db, login) {
    const { rows } = await db.query<UserRow>('SELECT id::text, login FROM users WHERE login = $1', [login]);
    return rows[0] ?? null;
  },

  reads: [
    { table: 'users', columns: ['id', 'login'] },
    { table: 'emails', columns: ['user_id', 'email', 'verified'] },
    { table: 'api_tokens', columns: API_TOKEN_READS },
  ],
  // The service owns these tables and mints the tokens itself: there is no one else's secret to keep from it.
  secrets: [],

  writer: builtinWriter,
};

