import { ApplicationFailure, log } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import type { SweepPageInput, SweepPageResult } from '../src/sweep/contract';
import {
  restartStoppedWorkflows,
  startMissingWorkflows,
  SweepPageError,
} from '../src/sweep/pages';
import type { RegistryAdapter } from '../src/registry/adapter';
import type { TokenBatchDeps, TokenBatchSettings } from '../src/tokenExpiry/batch';
import type { Clock } from '../src/tokenExpiry/contract';

export interface SweepActivityDeps {
  db: Pool;
  registry: RegistryAdapter;
  /** Starts and describes the token workflows (a worker's NativeConnection cannot). */
  client: Client;
  clock: Clock;
  config: TokenBatchSettings;
  /** Temporal calls in flight at once within a page. */
  concurrency?: number;
}

/** The sweep's activities: one page of tokens each, idempotent, so a retried page repeats safely. */
export function createSweepActivities({ db, registry, client, clock, config, concurrency }: SweepActivityDeps) {
  // The clock is read inside the activity (the test server's clock is only known there), once per page.
  const deps = async (): Promise<TokenBatchDeps> => {
    const now = await clock.now();
    return { db, registry, client, config, concurrency, now: () => now, log };
  };

  async function page(
    run: (deps: TokenBatchDeps, input: SweepPageInput) => Promise<SweepPageResult>,
    input: SweepPageInput,
  ): Promise<SweepPageResult> {
    try {
      return await run(await deps(), input);
    } catch (err) {
      if (err instanceof SweepPageError) throw ApplicationFailure.retryable(err.message, 'SweepPageFailed');
      throw err;
    }
  }

  return {
    /** Starts the workflows of one page of active tokens that have none on record. */
    async startMissingExpiryWorkflows(input: SweepPageInput): Promise<SweepPageResult> {
      return page(startMissingWorkflows, input);
    },

    /** Starts again the workflows of one page of tokens whose workflow was terminated or is gone. */
    async restartStoppedExpiryWorkflows(input: SweepPageInput): Promise<SweepPageResult> {
      return page(restartStoppedWorkflows, input);
    },
  };
}
