// Users and tokens written straight into the tables, thousands per statement, as a backfill would find them.
import { randomBytes } from 'node:crypto';
import type { Pool } from 'pg';

/** `count` users, each with a verified address; returns the first id (ids are consecutive). */
export async function seedUsers(db: Pool, count: number): Promise<{ firstId: number; count: number }> {
  const tag = randomBytes(3).toString('hex');
  const { rows } = await db.query<{ first: string }>(
    `WITH made AS (
       INSERT INTO users (login) SELECT 'bench-' || $2 || '-' || g FROM generate_series(1, $1) g RETURNING id, login
     ), mails AS (
       INSERT INTO emails (user_id, email, verified) SELECT id, login || '@example.com', true FROM made
     )
     SELECT min(id)::text AS first FROM made`,
    [count, tag],
  );
  return { firstId: Number(rows[0]?.first), count };
}

export interface TokenBatch {
  count: number;
  users: { firstId: number; count: number };
  /** Token i of the batch expires at firstExpiry + i * spreadMs / count. */
  firstExpiry: Date;
  spreadMs: number;
}

/** Inserts tokens with no workflow on record (no expiry_workflows row), in slices of 50,000. */
export async function insertTokens(db: Pool, batch: TokenBatch): Promise<void> {
  const tag = randomBytes(4).toString('hex');
  const slice = 50_000;
  for (let from = 0; from < batch.count; from += slice) {
    const to = Math.min(batch.count, from + slice) - 1;
    await db.query(
      `INSERT INTO api_tokens (user_id, token, name, expired_at)
       SELECT $3 + (g % $4), sha256(convert_to($5 || g, 'UTF8')), 'bench ' || g,
              $6::timestamptz + (g * $7::float8 / $8) * interval '1 millisecond'
         FROM generate_series($1::int, $2::int) g`,
      [from, to, batch.users.firstId, batch.users.count, tag, batch.firstExpiry, batch.spreadMs, batch.count],
    );
  }
}
