// The registry's users and their addresses (the builtin tables).
import type { Pool } from 'pg';
import { withTransaction, type Queryable } from './transaction';

export interface UserRow {
  id: string;
  login: string;
}

/** A user and their one address, together. */
export async function insertUser(pool: Pool, user: { login: string; email: string; verified: boolean }): Promise<UserRow> {
  return withTransaction(pool, async (client) => {
    const { rows } = await client.query<UserRow>('INSERT INTO users (login) VALUES ($1) RETURNING id::text, login', [
      user.login,
    ]);
    const row = rows[0] as UserRow;
    await client.query('INSERT INTO emails (user_id, email, verified) VALUES ($1, $2, $3)', [
      row.id,
      user.email,
      user.verified,
    ]);
    return row;
  });
}

export async function findUserByLogin(db: Queryable, login: string): Promise<UserRow | null> {
  const { rows } = await db.query<UserRow>('SELECT id::text, login FROM users WHERE login = $1', [login]);
  return rows[0] ?? null;
}
