// One discovery pass: tokens created since the last pass get their workflows, with no call from the registry.
// It reads forward from a high-water mark of token ids (the primary key's order), less a margin for ids that
// commit out of order; the daily sweep remains the net for anything older.
import { withDiscoveryMark } from '../db/discovery';
import { addCounts, noCounts, SWEEP_PAGE_SIZE } from '../sweep/contract';
import { startMissingWorkflows } from '../sweep/pages';
import type { TokenBatchDeps } from '../tokenExpiry/batch';

/**
 * Ids below the mark that a pass reads again: a token whose id was drawn before the mark's but whose
 * transaction committed after the last pass read. A thousand ids is minutes of crates.io's token creation.
 */
export const DISCOVERY_ID_MARGIN = 1_000n;

export interface DiscoveryPass {
  /** The pass read token ids above this one... */
  afterId: string;
  /** ...up to this one (the highest id when it began); null when there are no tokens. */
  throughId: string | null;
  /** Tokens without a workflow it found, started, and could not start (tried again next pass). */
  scanned: number;
  started: number;
  failed: number;
}

/** Runs a pass unless another worker is running one (null then). */
export async function discoverNewTokens(deps: TokenBatchDeps, pageSize = SWEEP_PAGE_SIZE): Promise<DiscoveryPass | null> {
  return withDiscoveryMark(deps.db, async (mark) => {
    // Read before the scan: an id committed during the scan is above it, or within the next pass's margin.
    const top = await deps.registry.maxTokenId(deps.db);
    // The first pass reads only the margin below the newest token: older ones are the sweep's.
    const base = BigInt(mark ?? top ?? '0');
    const afterId = String(base > DISCOVERY_ID_MARGIN ? base - DISCOVERY_ID_MARGIN : 0n);
    let counts = noCounts();
    for (let page: string | null = afterId; page !== null; ) {
      const result = await startMissingWorkflows(deps, { afterId: page, limit: pageSize });
      counts = addCounts(counts, result.counts);
      page = result.nextAfterId;
    }
    const pass = { afterId, throughId: top, scanned: counts.scanned, started: counts.started, failed: counts.failed };
    // A token that could not be started keeps the mark where it was, so that the next pass tries it again.
    const next = counts.failed > 0 ? (mark ?? afterId) : (top ?? mark ?? '0');
    return { value: pass, mark: next };
  });
}
