// A fresh, migrated PostgreSQL database for one test file or bench scenario, dropped afterwards.
import { randomBytes } from 'node:crypto';
import { Client, type Pool } from 'pg';
import { migrate } from '../../src/db/migrate';
import { createPool } from '../../src/db/pool';

export interface ScratchDatabase {
  name: string;
  url: string;
  pool: Pool;
  /** Its instance id (src/db/instance.ts), made by its first migrate. */
  instance: string;
  /** Safe to call twice. */
  drop(): Promise<void>;
}

/**
 * `prefix` names who made it, so that one left behind by a killed run is easy to spot; `instance` names its
 * instance (a random one when absent).
 */
export async function createScratchDatabase(adminUrl: string, prefix: string, poolSize = 10, instance?: string): Promise<ScratchDatabase> {
  const name = `${prefix.replace(/[^a-z0-9]/g, '_')}_${randomBytes(6).toString('hex')}`;
  await adminQuery(adminUrl, `CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const pool = createPool(url.toString(), poolSize);
  const migrated = await migrate(pool, { schema: 'token_expiry', registry: 'builtin', instance });
  let dropped = false;
  return {
    name,
    instance: migrated.instance,
    url: url.toString(),
    pool,
    async drop() {
      if (dropped) return;
      dropped = true;
      await pool.end().catch(() => undefined);
      await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/** One statement on the admin connection; the first column of each row, as text. */
export async function adminQuery(adminUrl: string, sql: string): Promise<string[]> {
  const client = new Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    const { rows } = await client.query<Record<string, unknown>>(sql);
    return rows.map((row) => String(Object.values(row)[0]));
  } finally {
    await client.end();
  }
}
