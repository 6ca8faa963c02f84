// This service's bookkeeping of expiry workflows (its own schema): which tokens have one started, and which
// revoked tokens have had theirs cancelled. Keyed by the registry's token id, with no foreign key into its tables;
// the owner and expiry at the start are kept too, so that a user's tokens falling due together (digests) are
// found here by index, never by scanning the registry's tokens (crates.io has no index on api_tokens.user_id).
import type { TokenRow } from '../registry/adapter';
import type { Queryable } from './transaction';

type StartedToken = Pick<TokenRow, 'id' | 'userId' | 'expiredAt'>;

/**
 * Records that these tokens' workflows were started, in one statement; returns when. Rows are written in token id
 * order, so two passes recording overlapping tokens at once (a backfill beside a sweep) wait, never deadlock.
 */
export async function markExpiryWorkflowsStarted(db: Queryable, started: StartedToken[]): Promise<Date | null> {
  if (started.length === 0) return null;
  const tokens = [...started].sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : BigInt(a.id) > BigInt(b.id) ? 1 : 0));
  const { rows } = await db.query<{ at: Date }>(
    `INSERT INTO expiry_workflows (token_id, user_id, expires_at)
       SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[])
     ON CONFLICT (token_id) DO UPDATE
       SET started_at = now(), cancelled_at = NULL, user_id = excluded.user_id, expires_at = excluded.expires_at
     RETURNING started_at AS at`,
    [tokens.map((t) => t.id), tokens.map((t) => t.userId), tokens.map((t) => t.expiredAt)],
  );
  return rows[0]?.at ?? null;
}

/** Records that these revoked tokens' workflows are cancelled (or were not running): the sweep stops looking. */
export async function markExpiryWorkflowsCancelled(db: Queryable, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.query('UPDATE expiry_workflows SET cancelled_at = now() WHERE token_id = ANY($1::bigint[])', [ids]);
}

/**
 * The tokens of a user whose workflow may still be waiting: started, not cancelled, and expiring after `since`
 * (an expired notice may wait for the user's waking hours, up to a week after the expiry).
 */
export async function findWaitingTokenIdsOfUser(db: Queryable, userId: string, since: Date): Promise<string[]> {
  const { rows } = await db.query<{ token_id: string }>(
    `SELECT token_id::text FROM expiry_workflows
      WHERE user_id = $1 AND cancelled_at IS NULL AND expires_at > $2 ORDER BY token_id`,
    [userId, since],
  );
  return rows.map((row) => row.token_id);
}
