// This database's instance id: made once, by the first `migrate` (TOKEN_EXPIRY_INSTANCE, or a random id), kept in
// the service's own schema, and part of every workflow id and task queue (docs/design.md, Ids and instances).
import { randomBytes } from 'node:crypto';
import type { Queryable } from './transaction';

/** No instance id yet (run migrate), or TOKEN_EXPIRY_INSTANCE is not the stored one. */
export class InstanceError extends Error {}

/** A random id: 8 hex digits, fit for a workflow id; a clash between a namespace's few instances is negligible. */
function randomInstanceId(): string {
  return randomBytes(4).toString('hex');
}

/** The stored id, made now if this database has none; `wanted` (TOKEN_EXPIRY_INSTANCE) names a new one and must match an old one. */
export async function ensureInstance(db: Queryable, wanted: string | undefined): Promise<string> {
  await db.query('INSERT INTO instance (id) VALUES ($1) ON CONFLICT (singleton) DO NOTHING', [wanted ?? randomInstanceId()]);
  const id = await readInstance(db);
  if (wanted && wanted !== id) throw mismatch(wanted, id);
  return id;
}

/** The stored id; InstanceError when `migrate` has not made one yet. */
async function readInstance(db: Queryable): Promise<string> {
  const { rows } = await db
    .query<{ id: string }>('SELECT id FROM instance')
    .catch((err: { code?: string }) => (err.code === '42P01' ? { rows: [] } : Promise.reject(err)));
  const id = rows[0]?.id;
  if (!id) throw new InstanceError('this database has no instance id yet: run `token-expiry migrate` first');
  return id;
}

/**
 * The config with TOKEN_EXPIRY_INSTANCE set to the database's instance id, as every program runs with it;
 * a TOKEN_EXPIRY_INSTANCE set in the environment must be that id (InstanceError otherwise).
 */
export async function withInstance<C extends { TOKEN_EXPIRY_INSTANCE?: string }>(db: Queryable, config: C): Promise<C & { TOKEN_EXPIRY_INSTANCE: string }> {
  const id = await readInstance(db);
  if (config.TOKEN_EXPIRY_INSTANCE && config.TOKEN_EXPIRY_INSTANCE !== id) throw mismatch(config.TOKEN_EXPIRY_INSTANCE, id);
  return { ...config, TOKEN_EXPIRY_INSTANCE: id };
}

function mismatch(wanted: string, id: string): InstanceError {
  return new InstanceError(
    `TOKEN_EXPIRY_INSTANCE: is "${wanted}", but this database's instance is "${id}" (made by its first migrate, ` +
      'and in every workflow id since): unset it, or set it to that',
  );
}
