import { Pool } from 'pg';
import { logger } from '../log';

/** Resolves when the database answers a query. */
export async function pingDatabase(db: Pool): Promise<void> {
  await db.query('SELECT 1');
}

/**
 * `schema` is TOKEN_EXPIRY_DB_SCHEMA: first on every connection's search path, so the service's own tables
 * (expiry_notifications, expiry_workflows) are found there and the registry's (users, emails, api_tokens) in public.
 */
export function createPool(databaseUrl: string, max = 10, schema = 'token_expiry'): Pool {
  const pool = new Pool({
    connectionString: databaseUrl,
    max,
    // A host that drops packets must fail a query, not hold a pool slot forever.
    connectionTimeoutMillis: 10_000,
    options: `-c search_path=${schema},public`,
  });
  // An idle client whose connection dies (a restart, pg_terminate_backend) must not crash the process.
  pool.on('error', (err) => logger.warn('idle database connection lost', { error: err.message }));
  // So must one that dies while checked out (markSent waiting on a lock): pg-pool listens only while a
  // client is idle, and an 'error' event with no listener kills the process. The query fails with it anyway.
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}
