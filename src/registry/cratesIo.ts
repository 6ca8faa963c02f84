// crates.io's own tables, read-only (facts: users.gh_login is not unique, gh_id = -1 marks a GitHub account
// that is gone, one emails row per user with `verified`, api_tokens.id is int4). No writes, no token hash,
// no confirmation token; the registry keeps creating, revoking and emailing about its tokens itself.
import type { RegistryAdapter, UserRow } from './adapter';
import { isBigintId } from './tokenId';
import { API_TOKEN_READS, apiTokenQueries } from './apiTokens';

/** api_tokens.id and users.id are int4: a larger id cannot exist, and Postgres would reject it with an error. */
const INT4_MAX = 2_147_483_647;
const isTokenId = (id: string): boolean => isBigintId(id) && Number(id) <= INT4_MAX;

const tokens = apiTokenQueries({ greeting: 'gh_login', isTokenId });

export const cratesIoRegistry: RegistryAdapter = {
  name: 'crates-io',
  isTokenId,
  ...tokens.queries,

  async findUserByLogin(db, login) {
    // As crates.io looks a login up: case-insensitive, never a deleted GitHub account, the newest account first.
    const { rows } = await db.query<UserRow>(
      `SELECT id::text, gh_login AS login FROM users
        WHERE lower(gh_login) = lower($1) AND gh_id <> -1 ORDER BY gh_id DESC LIMIT 1`,
      [login],
    );
    return rows[0] ?? null;
  },

  reads: [
    { table: 'users', columns: ['id', 'gh_login', 'gh_id'] },
    { table: 'emails', columns: ['user_id', 'email', 'verified'] },
    { table: 'api_tokens', columns: API_TOKEN_READS },
  ],
  // The token's hash (a stolen hash is a stolen lookup key) and the email confirmation token (confirms any address).
  secrets: [
    { table: 'api_tokens', columns: ['token'] },
    { table: 'emails', columns: ['token'] },
  ],
};
