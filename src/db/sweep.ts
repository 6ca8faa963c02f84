// The sweep's queries: tokens that should have an expiry workflow, a page at a time in id order.
import { TOKEN_COLUMNS, type TokenRow } from './tokens';
import type { Queryable } from './transaction';

export interface TokenPage {
  /** The last id of the previous page; null for the first page. */
  afterId: string | null;
  limit: number;
  /** The caller's clock (under the time-skipping test server it runs ahead of the database's now()). */
  now: Date;
}

// Pages are ordered by api_tokens.id: a bare "id" would be the text column of the select list, where "10" < "9".
// Matches the partial index api_tokens_expiry_workflow_missing, which serves it in id order.
const MISSING = `expiry_workflow_started_at IS NULL AND expired_at IS NOT NULL AND NOT revoked AND expired_at > $1`;
const STOPPED_CANDIDATES = `expiry_workflow_started_at IS NOT NULL AND NOT revoked AND expired_at > $1
  AND ($2::timestamptz IS NULL OR expired_at <= $2) AND ($3::timestamptz IS NULL OR expiry_workflow_started_at < $3)`;

/** Active tokens with a future expiry whose workflow was never started (or never recorded as started). */
export async function findTokensWithoutWorkflow(db: Queryable, page: TokenPage): Promise<TokenRow[]> {
  const { rows } = await db.query<TokenRow>(
    `SELECT ${TOKEN_COLUMNS} FROM api_tokens
      WHERE ${MISSING} AND id > $2 ORDER BY api_tokens.id LIMIT $3`,
    [page.now, page.afterId ?? '0', page.limit],
  );
  return rows;
}

export interface StoppedFilter {
  /** Only tokens expiring by then; all future ones when null. */
  until: Date | null;
  /** Only tokens recorded as started before then; all when null. */
  recordedBefore: Date | null;
}

/** Active tokens with a future expiry whose workflow is on record as started: it may have been stopped since. */
export async function findStoppedCandidates(db: Queryable, page: TokenPage & StoppedFilter): Promise<TokenRow[]> {
  // A scan of the primary key with a filter: over all pages of a sweep, one pass over the table.
  const { rows } = await db.query<TokenRow>(
    `SELECT ${TOKEN_COLUMNS} FROM api_tokens
      WHERE ${STOPPED_CANDIDATES} AND id > $4 ORDER BY api_tokens.id LIMIT $5`,
    [page.now, page.until, page.recordedBefore, page.afterId ?? '0', page.limit],
  );
  return rows;
}

/** How many tokens each phase will look at, for the backfill's progress bar; tokens made meanwhile add to it. */
export async function countSweepCandidates(
  db: Queryable,
  { now, until, recordedBefore }: { now: Date } & StoppedFilter,
): Promise<{ missing: number; stopped: number }> {
  const [missing, stopped] = await Promise.all([
    db.query<{ n: string }>(`SELECT count(*) AS n FROM api_tokens WHERE ${MISSING}`, [now]),
    db.query<{ n: string }>(`SELECT count(*) AS n FROM api_tokens WHERE ${STOPPED_CANDIDATES}`, [now, until, recordedBefore]),
  ]);
  return { missing: Number(missing.rows[0]?.n ?? 0), stopped: Number(stopped.rows[0]?.n ?? 0) };
}

/**
 * Records that these tokens' workflows were started, in one statement, and returns the ids of those
 * revoked meanwhile: their workflow was started after the revocation looked for it, so the caller cancels it.
 */
export async function markExpiryWorkflowsStarted(db: Queryable, ids: string[]): Promise<{ revoked: string[] }> {
  if (ids.length === 0) return { revoked: [] };
  const { rows } = await db.query<{ id: string; revoked: boolean }>(
    `UPDATE api_tokens SET expiry_workflow_started_at = now()
      WHERE id = ANY($1::bigint[]) RETURNING id::text, revoked`,
    [ids],
  );
  return { revoked: rows.filter((row) => row.revoked).map((row) => row.id) };
}
