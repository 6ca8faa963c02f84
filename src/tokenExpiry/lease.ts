// How long a claim on a reminder's row lasts, sized from the timeouts it must outlive, in one place.
// Pure: the workflow takes the send activity's timeout from here, the activities their leases.

/** The send activity's start-to-close timeout: pace, claim, checks, one Postmark call, record. */
export const SEND_ACTIVITY_TIMEOUT_MS = 30_000;
/** One Postmark call at most; below the activity's timeout, leaving room for the claim, checks and record. */
export const POSTMARK_CALL_MAX_MS = 20_000;
/** A send with less time than this left is not started: the attempt gives the row back and is retried. */
export const MIN_SEND_MS = 1_000;
/** Slack for the confirm's own round trip and for the two clocks (ours, the database's) running apart. */
const MARGIN_MS = 2_000;

/**
 * Taken at the claim, for the checks and the render up to the confirm. An attempt that outlives it (the
 * activity timed out, the worker stalled) finds at its confirm that it lost the row, and sends nothing.
 */
export const CLAIM_LEASE_MS = SEND_ACTIVITY_TIMEOUT_MS + MARGIN_MS;

/** The time one Postmark call may take: its cap, and never past the attempt's own deadline. */
export function sendBudgetMs(msLeftInAttempt: number): number {
  return Math.min(POSTMARK_CALL_MAX_MS, msLeftInAttempt - MARGIN_MS);
}

/**
 * Set by the confirm right before the send: the send's bound, then Postmark's search lag, so that whoever
 * takes the row after it lapses (the attempt crashed mid-send) can trust a search that finds nothing.
 * This is also how long a crashed send delays its reminder.
 */
export function sendLeaseMs(sendMs: number, searchLagMs: number): number {
  return sendMs + searchLagMs + MARGIN_MS;
}

/** After an ambiguous failure the row stays held until Postmark's search can be trusted. */
export function unknownLeaseMs(searchLagMs: number): number {
  return searchLagMs + MARGIN_MS;
}
