import { Pool } from 'pg';
import { logger } from '../log';

export function createPool(databaseUrl: string, max = 10): Pool {
  const pool = new Pool({ connectionString: databaseUrl, max });
  // An idle client whose connection dies (a restart, pg_terminate_backend) must not crash the process.
  pool.on('error', (err) => logger.warn('idle database connection lost', { error: err.message }));
  return pool;
}
