// What the sweep workflow shares with its activities, its schedule and the backfill command. The
// workflow bundle imports this file, so it stays free of Node built-ins and I/O.

/**
 * An instance's sweep schedule, and its workflows' id (the schedule appends the start time:
 * token-expiry-sweep-<instance>-2026-01-31T00:00:00Z): one schedule per instance sharing a namespace.
 */
export function sweepScheduleId(instance: string): string {
  return `token-expiry-sweep-${instance}`;
}

/** Tokens per activity call: one keyset-paginated query, then this many starts. */
export const SWEEP_PAGE_SIZE = 500;
/**
 * Pages per workflow run before it continues as new: about 6 events a page, so ~600 events and
 * 50,000 tokens a run, far below the history limits however many tokens there are.
 */
export const SWEEP_PAGES_PER_RUN = 100;

/**
 * missing: active tokens with a future expiry and no workflow on record (no expiry_workflows row).
 * stopped: tokens with a workflow on record, looked up to find the ones terminated or lost in Temporal, and
 * revoked ones whose workflow is not yet on record as cancelled (revoked in the registry's own tables).
 */
export type SweepPhase = 'missing' | 'stopped';

export interface SweepCounts {
  /** Tokens without a workflow that the sweep found. */
  scanned: number;
  /** Of those, the ones whose workflow is now running (started, or found already running). */
  started: number;
  /** Starts and checks that failed; the next sweep tries these tokens again. */
  failed: number;
  /** Tokens with a workflow on record whose workflow was looked up in Temporal. */
  checked: number;
  /** Of those, workflows found terminated, timed out, failed or missing, and started again. */
  restarted: number;
}

export interface SweepCursor {
  phase: SweepPhase;
  /** The last token id done in this phase; null before the first page. */
  afterId: string | null;
}

export interface SweepInput {
  pageSize?: number;
  pagesPerRun?: number;
  /**
   * Look for stopped workflows only among tokens expiring within this many ms (the schedule sets it
   * so that every token is checked before its first reminder falls due); every future token when absent.
   */
  recheckWithinMs?: number;
  /**
   * Look for stopped workflows only among tokens recorded as started before this time (ISO): the
   * sweep's own start, so that the workflows it has just started are not looked up again.
   */
  recordedBefore?: string;
  /** Where the previous run stopped and what it had done: carried across continue-as-new. */
  cursor?: SweepCursor;
  totals?: SweepCounts;
  runs?: number;
}

export type SweepResult = SweepCounts & { runs: number };

export interface SweepPageInput {
  afterId: string | null;
  limit: number;
  recheckWithinMs?: number;
  recordedBefore?: string;
}

export interface SweepPageResult {
  counts: SweepCounts;
  /** The last token id of this page; null when the page was the last one of its phase. */
  nextAfterId: string | null;
  /** A few of the page's failures (token id and error), for logs and the backfill summary. */
  failures: { tokenId: string; error: string }[];
}

export function noCounts(): SweepCounts {
  return { scanned: 0, started: 0, failed: 0, checked: 0, restarted: 0 };
}

export function addCounts(a: SweepCounts, b: SweepCounts): SweepCounts {
  return {
    scanned: a.scanned + b.scanned,
    started: a.started + b.started,
    failed: a.failed + b.failed,
    checked: a.checked + b.checked,
    restarted: a.restarted + b.restarted,
  };
}
