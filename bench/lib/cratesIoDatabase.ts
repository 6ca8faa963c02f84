// A scratch database in crates.io's shape, attached as docs/operations.md, "Attach to your registry", says: the registry's
// tables, `registry-sql`'s output run through psql (with the change trigger when asked), and the service's
// schema migrated by the restricted role it creates. Dropped afterwards, the role with it.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import { migrate } from '../../src/db/migrate';
import { createPool } from '../../src/db/pool';
import { cratesIoRegistry } from '../../src/registry/cratesIo';
import { registrySql } from '../../src/registry/grants';
import { adminQuery, type ScratchDatabase } from '../../scripts/devtools/scratchDatabase';

/** The columns the adapter reads, with crates.io's types and indexes (and none more). */
const REGISTRY_TABLES = `
  CREATE TABLE users (id serial PRIMARY KEY, gh_login varchar NOT NULL, gh_id integer NOT NULL, username varchar NOT NULL);
  CREATE TABLE emails (id serial PRIMARY KEY, user_id integer NOT NULL UNIQUE REFERENCES users (id), email varchar NOT NULL,
    verified boolean NOT NULL DEFAULT false, token text NOT NULL DEFAULT md5(random()::text));
  CREATE TABLE api_tokens (id serial PRIMARY KEY, user_id integer NOT NULL REFERENCES users (id), token bytea NOT NULL UNIQUE,
    name varchar NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), last_used_at timestamptz,
    revoked boolean NOT NULL DEFAULT false, crate_scopes text[], endpoint_scopes text[], expired_at timestamptz,
    expiry_notification_at timestamptz);`;

const SERVICE_SCHEMA = 'token_expiry';

/**
 * `url` and `pool` are the service's, as the restricted role (what the worker runs as); `registry` is the
 * registry's own connection (the tables' owner), which writes tokens by plain SQL as crates.io does.
 */
export interface CratesIoDatabase extends ScratchDatabase {
  role: string;
  registry: Pool;
}

export async function createCratesIoDatabase(
  adminUrl: string,
  prefix: string,
  { trigger = false, poolSize = 4 }: { trigger?: boolean; poolSize?: number } = {},
): Promise<CratesIoDatabase> {
  const suffix = randomBytes(6).toString('hex');
  const name = `${prefix.replace(/[^a-z0-9]/g, '_')}_${suffix}`;
  const role = `token_expiry_bench_${suffix}`;
  // The role's password, set as docs/operations.md has the DBA do: the server may ask for one.
  const password = randomBytes(12).toString('hex');
  await adminQuery(adminUrl, `CREATE DATABASE ${name}`);
  const urlAs = (user?: string): string => {
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    if (user) {
      url.username = user;
      url.password = password;
    }
    return url.toString();
  };
  const registry = createPool(urlAs(), poolSize, SERVICE_SCHEMA);
  const pool = createPool(urlAs(role), poolSize, SERVICE_SCHEMA);
  let dropped = false;
  const drop = async (): Promise<void> => {
    if (dropped) return;
    dropped = true;
    await Promise.allSettled([registry.end(), pool.end()]);
    await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await adminQuery(adminUrl, `DROP ROLE IF EXISTS ${role}`);
  };
  let instance = '';
  try {
    await registry.query(REGISTRY_TABLES);
    const sql = registrySql({ role, schema: SERVICE_SCHEMA, registry: cratesIoRegistry, trigger });
    execFileSync('psql', [urlAs(), '-q', '-v', 'ON_ERROR_STOP=1', '-f', '-'], { input: sql, stdio: ['pipe', 'ignore', 'pipe'] });
    await adminQuery(adminUrl, `ALTER ROLE ${role} PASSWORD '${password}'`);
    instance = (await migrate(pool, { schema: SERVICE_SCHEMA, registry: 'crates-io' })).instance;
  } catch (err) {
    await drop();
    throw err;
  }
  return { name, url: urlAs(role), pool, instance, role, registry, drop };
}
