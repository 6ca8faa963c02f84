// A batch of tokens whose expiry workflows are started or cancelled, a few at a time, and recorded: the sweep's
// pages (src/sweep/pages.ts) and discovery (src/discovery/) both work in such batches.
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { instanceOf } from '../config';
import { markExpiryWorkflowsCancelled, markExpiryWorkflowsStarted } from '../db/workflows';
import type { RegistryAdapter, TokenRow } from '../registry/adapter';
import { cancelTokenExpiryWorkflow, type ReminderSettings } from './client';

/** Temporal calls in flight at once within a batch: enough for well over 500 starts a second. */
const BATCH_CONCURRENCY = 50;

export interface TokenBatchLog {
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
}

export type TokenBatchSettings = ReminderSettings;

export interface TokenBatchDeps {
  db: Pool;
  registry: RegistryAdapter;
  client: Client;
  config: TokenBatchSettings;
  now: () => Date;
  log: TokenBatchLog;
  concurrency?: number;
}

/** Ends a revoked token's workflow (none running is fine) and notes it in `cancelled`, to be recorded. */
export async function cancelRevoked(deps: TokenBatchDeps, token: TokenRow, cancelled: string[]): Promise<void> {
  if (await cancelTokenExpiryWorkflow(deps.client, token, instanceOf(deps.config))) {
    deps.log.info('expiry workflow of a revoked token cancelled', { tokenId: token.id });
  }
  cancelled.push(token.id);
}

export interface Outcomes {
  /** Tokens whose workflow this batch started. */
  started: TokenRow[];
  failures: { tokenId: string; error: string }[];
}

/** Runs `fn` for each token, `concurrency` at a time; true means it started a workflow. */
export async function forEachToken(
  deps: TokenBatchDeps,
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
  const concurrency = Math.max(1, deps.concurrency ?? BATCH_CONCURRENCY);
  await Promise.all(Array.from({ length: Math.min(concurrency, tokens.length) }, runner));
  return outcomes;
}

/** Records the starts; a token revoked while its workflow was being started gets that workflow cancelled. */
export async function recordStarts(deps: TokenBatchDeps, started: TokenRow[]): Promise<number> {
  await markExpiryWorkflowsStarted(deps.db, started);
  const current = await deps.registry.findTokens(deps.db, started.map((t) => t.id));
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
