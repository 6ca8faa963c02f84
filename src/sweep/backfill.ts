// `token-expiry backfill`: the sweep, run on demand from the command's own process, with its progress.
import { drawProgressBar, ratePerSecond, type ProgressStream } from '../progressBar';
import { restartStoppedWorkflows, startMissingWorkflows } from './pages';
import type { TokenBatchDeps } from '../tokenExpiry/batch';
import { addCounts, noCounts, SWEEP_PAGE_SIZE, type SweepCounts, type SweepPhase } from './contract';

export interface BackfillOptions {
  pageSize?: number;
  /** Look for stopped workflows only among tokens expiring within this many ms; all future tokens when absent. */
  recheckWithinMs?: number;
}

export interface BackfillProgress {
  phase: SweepPhase;
  /** Tokens done in this phase, and how many the phase was expected to see when the backfill began. */
  done: number;
  total: number;
  /** This was the phase's last page. */
  phaseDone: boolean;
  totals: SweepCounts;
  /** Time since this phase began. */
  elapsedMs: number;
}

export interface BackfillSummary extends SweepCounts {
  pages: number;
  seconds: number;
  /** The first failures (token id and error); `failed` counts them all. */
  failures: { tokenId: string; error: string }[];
}

const FAILURES_SHOWN = 20;

/**
 * Starts every missing expiry workflow and restarts every stopped one, a page at a time. Safe to run
 * twice, beside the scheduled sweep, and while tokens are being created: every start is idempotent.
 */
export async function runBackfill(
  deps: TokenBatchDeps,
  options: BackfillOptions = {},
  onProgress: (progress: BackfillProgress) => void = () => undefined,
): Promise<BackfillSummary> {
  const started = Date.now();
  const now = deps.now();
  const until = options.recheckWithinMs === undefined ? null : new Date(now.getTime() + options.recheckWithinMs);
  // Workflows started by this backfill (or by the registry meanwhile) are not looked up again.
  const recordedBefore = now.toISOString();
  const expected = await deps.registry.countSweepCandidates(deps.db, { now, until, recordedBefore: now });
  const limit = options.pageSize ?? SWEEP_PAGE_SIZE;
  let totals = noCounts();
  let pages = 0;
  const failures: BackfillSummary['failures'] = [];

  for (const phase of ['missing', 'stopped'] as const) {
    const runPage = phase === 'missing' ? startMissingWorkflows : restartStoppedWorkflows;
    const total = expected[phase];
    const phaseStarted = Date.now();
    let afterId: string | null = null;
    do {
      const page = await runPage(deps, { afterId, limit, recheckWithinMs: options.recheckWithinMs, recordedBefore });
      pages++;
      totals = addCounts(totals, page.counts);
      failures.push(...page.failures.slice(0, FAILURES_SHOWN - failures.length));
      afterId = page.nextAfterId;
      const done = phase === 'missing' ? totals.scanned : totals.checked;
      // Tokens created meanwhile can push `done` past the count taken at the start.
      onProgress({
        phase,
        done,
        total: Math.max(total, done),
        phaseDone: afterId === null,
        totals,
        elapsedMs: Date.now() - phaseStarted,
      });
    } while (afterId !== null);
  }
  return { ...totals, pages, seconds: (Date.now() - started) / 1000, failures };
}

const PHASE_LABEL: Record<SweepPhase, string> = {
  missing: 'starting missing workflows',
  stopped: 'checking recorded workflows',
};

/** A progress bar redrawn in place on a terminal; one plain line per page otherwise (logs, CI, pipes). */
export function progressReporter(stream: ProgressStream): {
  update: (progress: BackfillProgress) => void;
  finish: () => void;
} {
  let drawnAt = 0;
  let drawn = false;
  let lastPhase: SweepPhase | undefined;

  const describe = ({ phase, totals }: BackfillProgress): string =>
    phase === 'missing'
      ? `${totals.started} started, ${totals.failed} failed`
      : `${totals.restarted} restarted, ${totals.failed} failed`;

  if (!stream.isTTY) {
    return {
      update: (p) => stream.write(`backfill: ${PHASE_LABEL[p.phase]}: ${p.done}/${p.total} tokens, ${describe(p)}\n`),
      finish: () => undefined,
    };
  }

  return {
    update(p) {
      const now = Date.now();
      // Redraw at most ten times a second, but always show a phase's first and last state.
      if (p.phase === lastPhase && !p.phaseDone && now - drawnAt < 100) return;
      if (lastPhase !== undefined && p.phase !== lastPhase) stream.write('\n');
      lastPhase = p.phase;
      drawnAt = now;
      drawn = true;
      const fraction = p.total === 0 ? 1 : Math.min(1, p.done / p.total);
      const text = `${PHASE_LABEL[p.phase]} ${p.done}/${p.total} ${Math.floor(fraction * 100)}% ${describe(p)} ${ratePerSecond(p.done, p.elapsedMs)}`;
      drawProgressBar(stream, fraction, text);
    },
    finish() {
      if (drawn) stream.write('\n');
    },
  };
}
