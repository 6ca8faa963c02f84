import { Pool } from 'pg';
import { logger } from '../log';

/** Resolves when the database answers a query. */
export async function pingDatabase(db: Pool): Promise<void> {
  await db.query('SELECT 1');
}

export function createPool(databaseUrl: string, max = 10): Pool {
  // A host that drops packets must fail a query, not hold a pool slot forever.
  const pool = new Pool({ connectionString: databaseUrl, max, connectionTimeoutMillis: 10_000 });
  // An idle client whose connection dies (a restart, pg_terminate_backend) must not crash the process.
  pool.on('error', (err) => logger.warn('idle database connection lost', { error: err.message }));
  // So must one that dies while checked out (markSent waiting on a lock): pg-pool listens only while a
  // client is idle, and an 'error' event with no listener kills the process. The query fails with it anyway.
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}
