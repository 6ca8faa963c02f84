// This service's bookkeeping of expiry workflows (its own schema): which tokens have one started, and which
// revoked tokens have had theirs cancelled. Keyed by the registry's token id, with no foreign key into its tables.
import type { Queryable } from './transaction';

export async function markExpiryWorkflowStarted(db: Queryable, id: string): Promise<Date> {
  const { rows } = await db.query<{ at: Date }>(
    `INSERT INTO expiry_workflows (token_id) VALUES ($1)
     ON CONFLICT (token_id) DO UPDATE SET started_at = now(), cancelled_at = NULL
     RETURNING started_at AS at`,
    [id],
  );
  return rows[0]?.at as Date;
}

/** Records that these tokens' workflows were started, in one statement. */
export async function markExpiryWorkflowsStarted(db: Queryable, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.query(
    `INSERT INTO expiry_workflows (token_id) SELECT unnest($1::bigint[])
     ON CONFLICT (token_id) DO UPDATE SET started_at = now(), cancelled_at = NULL`,
    [ids],
  );
}

/** Records that these revoked tokens' workflows are cancelled (or were not running): the sweep stops looking. */
export async function markExpiryWorkflowsCancelled(db: Queryable, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.query('UPDATE expiry_workflows SET cancelled_at = now() WHERE token_id = ANY($1::bigint[])', [ids]);
}
