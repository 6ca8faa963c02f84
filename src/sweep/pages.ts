// One page of the sweep: start the expiry workflows that are missing, and start again the ones that were
// stopped by hand. The sweep workflow's activities and the backfill command both call these.
import { instanceOf } from '../config';
import { markExpiryWorkflowsCancelled } from '../db/workflows';
import type { TokenRow } from '../registry/adapter';
import { findUserPlans } from '../preferences/plans';
import { noCounts, type SweepCounts, type SweepPageInput, type SweepPageResult } from './contract';
import { startTokenExpiryWorkflow, tokenExpiryExecutionStatus } from '../tokenExpiry/client';
import { cancelRevoked, forEachToken, recordStarts, type Outcomes, type TokenBatchDeps } from '../tokenExpiry/batch';

/** Every token of a non-empty page failed: Temporal or the database is away, so stop and retry the page. */
export class SweepPageError extends Error {}

/**
 * Closed without the token's lifecycle asking (revoking cancels; finishing completes): reminders would
 * be lost, so the sweep starts these again. A CANCELLED workflow of a token that is not revoked was
 * cancelled by hand on purpose, and is left alone.
 */
const RESTART_WHEN: ReadonlySet<string> = new Set(['TERMINATED', 'TIMED_OUT', 'FAILED', 'NOT_FOUND']);

const FAILURES_KEPT = 5;

/** Starts the workflow of every token in the page that has none on record, and records the start. */
export async function startMissingWorkflows(deps: TokenBatchDeps, page: SweepPageInput): Promise<SweepPageResult> {
  const tokens = await deps.registry.findTokensWithoutWorkflow(deps.db, { afterId: page.afterId, limit: page.limit, now: deps.now() });
  const planOf = await findUserPlans(deps.db, tokens.map((t) => t.userId), deps.config);
  const outcomes = await forEachToken(deps, tokens, async (token) => {
    await startTokenExpiryWorkflow(deps.client, token, deps.config, deps.now(), planOf(token.userId));
    return true;
  });
  const started = await recordStarts(deps, outcomes.started);
  return pageResult(tokens, page.limit, outcomes, { scanned: tokens.length, started });
}

/**
 * Looks up the workflow of every token in the page that has one on record; starts again the ones that
 * were terminated or are gone (the notification log keeps reminders already sent from going out twice).
 */
export async function restartStoppedWorkflows(deps: TokenBatchDeps, page: SweepPageInput): Promise<SweepPageResult> {
  const now = deps.now();
  const until = page.recheckWithinMs === undefined ? null : new Date(now.getTime() + page.recheckWithinMs);
  const recordedBefore = page.recordedBefore === undefined ? null : new Date(page.recordedBefore);
  const tokens = await deps.registry.findStoppedCandidates(deps.db, {
    afterId: page.afterId,
    limit: page.limit,
    now,
    until,
    recordedBefore,
  });
  const cancelled: string[] = [];
  const planOf = await findUserPlans(deps.db, tokens.map((t) => t.userId), deps.config);
  const outcomes = await forEachToken(deps, tokens, async (token) => {
    if (token.revoked) {
      // Revoked in the registry's own tables (nothing called us): end its workflow now, once.
      await cancelRevoked(deps, token, cancelled);
      return false;
    }
    const execution = await tokenExpiryExecutionStatus(deps.client, token.id, instanceOf(deps.config));
    if (!RESTART_WHEN.has(execution)) return false;
    await startTokenExpiryWorkflow(deps.client, token, deps.config, now, planOf(token.userId));
    deps.log.info('expiry workflow started again', { tokenId: token.id, was: execution });
    return true;
  });
  await markExpiryWorkflowsCancelled(deps.db, cancelled);
  const restarted = await recordStarts(deps, outcomes.started);
  return pageResult(tokens, page.limit, outcomes, { checked: tokens.length, restarted });
}

function pageResult(
  tokens: TokenRow[],
  limit: number,
  { failures }: Outcomes,
  counts: Partial<SweepCounts>,
): SweepPageResult {
  if (tokens.length > 0 && failures.length === tokens.length) {
    const first = failures[0] as { tokenId: string; error: string };
    throw new SweepPageError(
      `none of the ${tokens.length} tokens from id ${tokens[0]?.id} could be handled (token ${first.tokenId}: ${first.error})`,
    );
  }
  const last = tokens[tokens.length - 1];
  return {
    counts: { ...noCounts(), ...counts, failed: failures.length },
    // A short page is the last one; a token made after it is the registry's to start, or the next sweep's.
    nextAfterId: tokens.length < limit || !last ? null : last.id,
    failures: failures.slice(0, FAILURES_KEPT),
  };
}
