// What several scenarios do to the stack: start the workflows of seeded tokens, wait until they
// sleep, wait for the emails, and reconcile the fake Postmark's log with expiry_notifications.
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { runBackfill, type BackfillProgress, type BackfillSummary } from '../../src/sweep/backfill';
import type { FakePostmark, SentMessage } from '../../scripts/devtools/fakePostmark';
import type { Stack } from './stack';
import { registryAdapter } from '../../src/registry';

const quiet = { info: () => undefined, warn: () => undefined };

/**
 * Starts the workflow of every seeded token that has none, as the sweep and `token-expiry backfill`
 * do; `recheck: false` skips the second phase (describing every recorded workflow).
 */
export async function startMissingWorkflows(
  stack: Stack,
  {
    recheck = false,
    concurrency,
    onProgress,
  }: { recheck?: boolean; concurrency?: number; onProgress?: (p: BackfillProgress) => void } = {},
): Promise<BackfillSummary> {
  const summary = await runBackfill(
    { registry: registryAdapter(stack.config), db: stack.db, client: stack.client, config: stack.config, now: () => new Date(), log: quiet, concurrency },
    // A horizon of 0 ms finds no recorded workflow to describe.
    recheck ? {} : { recheckWithinMs: 0 },
    onProgress,
  );
  if (summary.failed > 0) {
    stack.log(`${summary.failed} workflow start(s) failed, e.g. ${JSON.stringify(summary.failures.slice(0, 3))}`);
  }
  return summary;
}

/** Workflows that have run their first task: they set NextReminderAt before they sleep. */
export async function sleepingCount(client: Client): Promise<number> {
  const { count } = await client.workflow.count('WorkflowType="tokenExpiryWorkflow" AND NextReminderAt IS NOT NULL');
  return count;
}

/** Waits until `n` workflows sleep, or until the deadline; returns when they did (ms epoch) or null. */
export async function waitUntilSleeping(client: Client, n: number, deadline: number): Promise<number | null> {
  for (;;) {
    const count = await sleepingCount(client).catch(() => -1);
    if (count >= n) return Date.now();
    if (Date.now() > deadline) return null;
    // Counting is a query over the server's visibility table: not too often once it is large.
    await sleep(n > 20_000 ? 3_000 : 1_000);
  }
}

/** Waits until the fake Postmark has accepted `n` messages, or until the deadline; false on timeout. */
export async function waitForSends(postmark: FakePostmark, n: number, deadline: number, worker?: { memory(): unknown }): Promise<boolean> {
  while (postmark.sent.length < n) {
    if (Date.now() > deadline) return false;
    if (worker && worker.memory() === null) throw new Error('the worker died while emails were due');
    await sleep(100);
  }
  return true;
}

export interface Reconciliation {
  /** Messages the fake Postmark accepted, and distinct dedupe keys among them. */
  messages: number;
  distinctReminders: number;
  /** Messages beyond the first for the same reminder: must be 0. */
  duplicates: number;
  /** expiry_notifications rows by status. */
  rows: Record<string, number>;
  /** Messages with no 'sent' row carrying their MessageID, and 'sent' rows with no such message. */
  unrecorded: number;
  unsent: number;
}

export async function reconcile(db: Pool, postmark: FakePostmark): Promise<Reconciliation> {
  const byKey = new Map<string, SentMessage[]>();
  for (const message of postmark.sent) {
    const key = message.Metadata.dedupe_key ?? message.MessageID;
    byKey.set(key, [...(byKey.get(key) ?? []), message]);
  }
  const { rows } = await db.query<{ status: string; n: string }>(
    'SELECT status, count(*) AS n FROM expiry_notifications GROUP BY status',
  );
  const { rows: sent } = await db.query<{ id: string | null }>(
    `SELECT provider_message_id AS id FROM expiry_notifications WHERE status = 'sent'`,
  );
  const recorded = new Set(sent.map((r) => r.id));
  const accepted = new Set(postmark.sent.map((m) => m.MessageID));
  return {
    messages: postmark.sent.length,
    distinctReminders: byKey.size,
    duplicates: postmark.sent.length - byKey.size,
    rows: Object.fromEntries(rows.map((r) => [r.status, Number(r.n)])),
    unrecorded: postmark.sent.filter((m) => !recorded.has(m.MessageID)).length,
    unsent: sent.filter((r) => !r.id || !accepted.has(r.id)).length,
  };
}

/** Transactions committed or rolled back in the stack's database so far, by anyone (the worker included). */
export async function postgresTransactions(db: Pool): Promise<number> {
  const { rows } = await db.query<{ n: string }>(
    'SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()',
  );
  return Number(rows[0]?.n ?? Number.NaN);
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Samples a process's memory every `everyMs` until stopped; returns the largest RSS seen. */
export function memorySampler(read: () => { rssMiB: number } | null, everyMs = 250) {
  let peak = 0;
  const samples: { at: number; rssMiB: number }[] = [];
  const timer = setInterval(() => {
    const memory = read();
    if (!memory) return;
    peak = Math.max(peak, memory.rssMiB);
    samples.push({ at: Date.now(), rssMiB: Math.round(memory.rssMiB) });
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return { peakMiB: peak, samples };
    },
  };
}
