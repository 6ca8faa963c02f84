// One page of the sweep: start the expiry workflows that are missing, and start again the ones that were
// stopped by hand. The sweep workflow's activities and the backfill command both call these.
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { instanceOf, type Config } from '../config';
import { markExpiryWorkflowsCancelled, markExpiryWorkflowsStarted } from '../db/workflows';
import type { TokenRow } from '../registry/adapter';
import { registryAdapter } from '../registry';
import { findUserPlans } from '../preferences/plans';
import { noCounts, type SweepCounts, type SweepPageInput, type SweepPageResult } from './contract';
import {
  cancelTokenExpiryWorkflow,
  startTokenExpiryWorkflow,
  tokenExpiryExecutionStatus,
  type ReminderSettings,
} from '../tokenExpiry/client';

/** Temporal calls in flight at once within a page: enough for well over 500 starts a second. */
const SWEEP_CONCURRENCY = 50;

export interface SweepLog {
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
}

export type SweepSettings = ReminderSettings & Pick<Config, 'REGISTRY_SCHEMA'>;

export interface SweepDeps {
  db: Pool;
  client: Client;
  config: SweepSettings;
  now: () => Date;
  log: SweepLog;
  concurrency?: number;
}

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
export async function startMissingWorkflows(deps: SweepDeps, page: SweepPageInput): Promise<SweepPageResult> {
  const tokens = await registryAdapter(deps.config).findTokensWithoutWorkflow(deps.db, { afterId: page.afterId, limit: page.limit, now: deps.now() });
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
export async function restartStoppedWorkflows(deps: SweepDeps, page: SweepPageInput): Promise<SweepPageResult> {
  const now = deps.now();
  const until = page.recheckWithinMs === undefined ? null : new Date(now.getTime() + page.recheckWithinMs);
  const recordedBefore = page.recordedBefore === undefined ? null : new Date(page.recordedBefore);
  const tokens = await registryAdapter(deps.config).findStoppedCandidates(deps.db, {
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

/**
 * The tokens a change notification named (the registry's trigger, docs/operations.md, Attach to your registry): a new token's workflow
 * started, a revoked token's cancelled, as the sweep would; any other is left alone.
 */
export async function applyTokenChanges(deps: SweepDeps, ids: string[]): Promise<{ started: number; cancelled: number; failed: number }> {
  const now = deps.now();
  const tokens = await registryAdapter(deps.config).findTokens(deps.db, ids);
  const cancelled: string[] = [];
  const planOf = await findUserPlans(deps.db, tokens.map((t) => t.userId), deps.config);
  const outcomes = await forEachToken(deps, tokens, async (token) => {
    if (!token.expiryWorkflowStartedAt && !token.revoked && token.expiredAt && token.expiredAt > now) {
      await startTokenExpiryWorkflow(deps.client, token, deps.config, now, planOf(token.userId));
      return true;
    }
    if (token.revoked && token.expiryWorkflowStartedAt) await cancelRevoked(deps, token, cancelled);
    return false;
  });
  await markExpiryWorkflowsCancelled(deps.db, cancelled);
  const started = await recordStarts(deps, outcomes.started);
  return { started, cancelled: cancelled.length, failed: outcomes.failures.length };
}

/** Ends a revoked token's workflow (none running is fine) and notes it in `cancelled`, to be recorded. */
async function cancelRevoked(deps: SweepDeps, token: TokenRow, cancelled: string[]): Promise<void> {
  if (await cancelTokenExpiryWorkflow(deps.client, token, instanceOf(deps.config))) {
    deps.log.info('expiry workflow of a revoked token cancelled', { tokenId: token.id });
  }
  cancelled.push(token.id);
}

interface Outcomes {
  /** Tokens whose workflow this page started. */
  started: TokenRow[];
  failures: { tokenId: string; error: string }[];
}

/** Runs `fn` for each token, `concurrency` at a time; true means it started a workflow. */
async function forEachToken(
  deps: SweepDeps,
  tokens: TokenRow[],
  fn: (token: TokenRow) => Promise<boolean>,
): Promise<Outcomes> {
  const outcomes: Outcomes = { started: [], failures: [] };
  let next = 0;
  const runner = async (): Promise<void> => {
    for (let token = tokens[next++]; token; token = tokens[next++]) {
      try {
        if (await fn(token)) outcomes.started.push(token);
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err);
        deps.log.warn('expiry workflow could not be started or looked up', { tokenId: token.id, error });
        outcomes.failures.push({ tokenId: token.id, error });
      }
    }
  };
  const concurrency = Math.max(1, deps.concurrency ?? SWEEP_CONCURRENCY);
  await Promise.all(Array.from({ length: Math.min(concurrency, tokens.length) }, runner));
  return outcomes;
}

/** Records the starts; a token revoked while its workflow was being started gets that workflow cancelled. */
async function recordStarts(deps: SweepDeps, started: TokenRow[]): Promise<number> {
  await markExpiryWorkflowsStarted(deps.db, started);
  const current = await registryAdapter(deps.config).findTokens(deps.db, started.map((t) => t.id));
  const cancelled: string[] = [];
  for (const token of current.filter((row) => row.revoked)) {
    const tokenId = token.id;
    // Its reminders re-read the revoked flag and would be skipped anyway; cancelling just ends it sooner.
    // One that cannot be cancelled now stays on record as not cancelled: the next sweep tries again.
    await cancelTokenExpiryWorkflow(deps.client, token, instanceOf(deps.config)).then(
      () => cancelled.push(tokenId),
      (err: unknown) =>
        deps.log.warn('could not cancel the workflow of a token revoked during the sweep', {
          tokenId,
          error: err instanceof Error ? err.message : String(err),
        }),
    );
  }
  await markExpiryWorkflowsCancelled(deps.db, cancelled);
  return started.length;
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
