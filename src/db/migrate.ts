import type { Pool, PoolClient } from 'pg';
import type { RegistrySchema } from '../registry/kinds';
import { ensureInstance } from './instance';
import { quoteIdent } from './sqlName';
import { migrations } from './migrations';

// Any constant works; it only keeps two migrators from racing.
const MIGRATION_LOCK = 7_233_001;

export interface MigrateOptions {
  /** TOKEN_EXPIRY_DB_SCHEMA: where the service's tables and its migration history live. */
  schema: string;
  /** REGISTRY_SCHEMA: builtin also gets the registry tables; another registry's tables are left alone. */
  registry: RegistrySchema;
  /** TOKEN_EXPIRY_INSTANCE: the instance id the first migrate stores (random when absent); later ones must match it. */
  instance?: string;
}

export class MigrationError extends Error {}

/** The schema, made if missing: a restricted role cannot, so its DBA makes it first (`registry-sql`). */
async function ensureSchema(client: PoolClient, schema: string): Promise<void> {
  const { rowCount } = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
  if (rowCount) return;
  try {
    await client.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
  } catch (err) {
    throw new MigrationError(
      `cannot create schema ${schema} (${(err as Error).message}): have the database's owner run the output of ` +
        '`token-expiry registry-sql --role <this role>` first',
    );
  }
}

/**
 * Applies the migrations not yet applied, each in its own transaction; safe to run twice or concurrently.
 * A builtin database from before the service had a schema of its own keeps its history: public.schema_migrations
 * moves into the schema.
 */
export async function migrate(
  pool: Pool,
  { schema, registry, instance }: MigrateOptions = { schema: 'token_expiry', registry: 'builtin' },
): Promise<{ applied: number[]; current: number; instance: string }> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await ensureSchema(client, schema);
    const history = `${quoteIdent(schema)}.schema_migrations`;
    if (registry === 'builtin') {
      const { rows } = await client.query<{ old: string | null; ours: string | null }>(
        `SELECT to_regclass('public.schema_migrations')::text AS old, to_regclass($1)::text AS ours`,
        [history],
      );
      if (rows[0]?.old && !rows[0].ours) {
        await client.query(`ALTER TABLE public.schema_migrations SET SCHEMA ${quoteIdent(schema)}`);
      }
    }
    await client.query(`
      CREATE TABLE IF NOT EXISTS ${history} (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
    const done = new Set(
      (await client.query<{ version: number }>(`SELECT version FROM ${history}`)).rows.map((r) => r.version),
    );
    const applied: number[] = [];
    for (const migration of migrations) {
      if (done.has(migration.version) || (migration.only && migration.only !== registry)) continue;
      await client.query('BEGIN');
      try {
        const searchPath = migration.target === 'service' ? `${quoteIdent(schema)}, public` : 'public';
        await client.query(`SET LOCAL search_path TO ${searchPath}`);
        await client.query(migration.sql);
        await client.query(`INSERT INTO ${history} (version, name) VALUES ($1, $2)`, [migration.version, migration.name]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw err;
      }
      applied.push(migration.version);
    }
    await client.query('BEGIN');
    try {
      await client.query(`SET LOCAL search_path TO ${quoteIdent(schema)}`);
      const id = await ensureInstance(client, instance);
      await client.query('COMMIT');
      return { applied, current: Math.max(0, ...done, ...applied), instance: id };
    } catch (err) {
      await client.query('ROLLBACK');
      throw err;
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    client.release();
  }
}
