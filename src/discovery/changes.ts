// A change notification's tokens (the registry's trigger, docs/operations.md, Attach to your registry): a new
// token's workflow started, a revoked token's cancelled, as the sweep would; any other is left alone.
import { findUserPlans } from '../preferences/plans';
import { startTokenExpiryWorkflow } from '../tokenExpiry/client';
import { cancelRevoked, forEachToken, recordStarts, type TokenBatchDeps } from '../tokenExpiry/batch';
import { markExpiryWorkflowsCancelled } from '../db/workflows';

export async function applyTokenChanges(deps: TokenBatchDeps, ids: string[]): Promise<{ started: number; cancelled: number; failed: number }> {
  const now = deps.now();
  const tokens = await deps.registry.findTokens(deps.db, ids);
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
