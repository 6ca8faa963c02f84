import { continueAsNew, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { createSweepActivities } from '../activities/sweep';
import {
  addCounts,
  noCounts,
  SWEEP_PAGE_SIZE,
  SWEEP_PAGES_PER_RUN,
  type SweepCursor,
  type SweepInput,
  type SweepPageResult,
  type SweepResult,
} from '../src/sweep/contract';

type Activities = ReturnType<typeof createSweepActivities>;

const { startMissingExpiryWorkflows, restartStoppedExpiryWorkflows } = proxyActivities<Activities>({
  // A page is one query and 500 Temporal calls, 50 at a time: a second or two. Two minutes leave room
  // for a slow server, yet a page held by a worker that died is handed to another one soon.
  startToCloseTimeout: '2 minutes',
  // 10 s doubling to 10 min; 12 attempts ride out about an hour of Temporal or database trouble. After
  // that the sweep fails where ops can see it, and the next scheduled sweep starts over: every page is
  // idempotent (USE_EXISTING starts, and a token left unmarked is simply found again).
  retry: { initialInterval: '10 seconds', backoffCoefficient: 2, maximumInterval: '10 minutes', maximumAttempts: 12 },
});

/**
 * Finds active tokens whose expiry workflow is missing and starts it, then finds workflows that were
 * terminated or lost and starts them again, a page at a time, continuing as new every `pagesPerRun` pages.
 */
export async function tokenExpirySweepWorkflow(input: SweepInput = {}): Promise<SweepResult> {
  const pageSize = input.pageSize ?? SWEEP_PAGE_SIZE;
  const pagesPerRun = input.pagesPerRun ?? SWEEP_PAGES_PER_RUN;
  const runs = input.runs ?? 1;
  // Workflow time, so the same on replay; kept across continue-as-new.
  const recordedBefore = input.recordedBefore ?? new Date().toISOString();
  let cursor: SweepCursor = input.cursor ?? { phase: 'missing', afterId: null };
  let totals = input.totals ?? noCounts();

  for (let pages = 0; ; pages++) {
    if (pages >= pagesPerRun || workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof tokenExpirySweepWorkflow>({ ...input, recordedBefore, cursor, totals, runs: runs + 1 });
    }
    const page = { afterId: cursor.afterId, limit: pageSize, recheckWithinMs: input.recheckWithinMs, recordedBefore };
    const result: SweepPageResult =
      cursor.phase === 'missing' ? await startMissingExpiryWorkflows(page) : await restartStoppedExpiryWorkflows(page);
    totals = addCounts(totals, result.counts);
    if (result.nextAfterId !== null) {
      cursor = { phase: cursor.phase, afterId: result.nextAfterId };
    } else if (cursor.phase === 'missing') {
      cursor = { phase: 'stopped', afterId: null };
    } else {
      return { ...totals, runs };
    }
  }
}
