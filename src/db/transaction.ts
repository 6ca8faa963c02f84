import type { Pool, PoolClient } from 'pg';

/** A pool, or one client inside a transaction: every query function takes either. */
export type Queryable = Pool | PoolClient;

/** Runs `work` in one transaction on one client: committed if it resolves, rolled back if it throws. */
export async function withTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    // The connection may be the thing that failed; the original error is the one worth reporting.
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
