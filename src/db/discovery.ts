// Discovery's high-water mark (the service's own schema): the highest registry token id a pass has looked at.
import type { Pool } from 'pg';
import { withTransaction } from './transaction';

/**
 * Runs one discovery pass holding the mark's row, so that one worker at a time runs a pass; null (and `pass`
 * not run) when another worker holds it. `pass` gets the mark (null before the first pass) and returns the
 * new one, which is kept only if the pass succeeds and only if it is higher.
 */
export async function withDiscoveryMark<T>(
  pool: Pool,
  pass: (mark: string | null) => Promise<{ value: T; mark: string }>,
): Promise<T | null> {
  return withTransaction(pool, async (client) => {
    const { rows } = await client.query<{ mark: string | null }>(
      'SELECT high_water::text AS mark FROM token_discovery FOR UPDATE SKIP LOCKED',
    );
    const row = rows[0];
    if (!row) return null;
    const { value, mark } = await pass(row.mark);
    await client.query(
      'UPDATE token_discovery SET high_water = GREATEST(high_water, $1::bigint), passed_at = now()',
      [mark],
    );
    return value;
  });
}
