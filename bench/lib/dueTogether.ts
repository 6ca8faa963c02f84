// Tokens whose reminder falls due within the same second, each with its workflow started and asleep
// before then. Fan-in and rate-cap run the worker with EXPIRY_REMINDERS=1d, EXPIRED_NOTICE=false,
// EXPIRY_SPREAD=0 and one email per token (EXPIRY_DIGEST_WINDOW=0): they measure sends; the digest one,
// digests. The mass expiry keeps the defaults and shapes its tokens itself (DueTogetherShape).
import type { SentMessage } from '../../scripts/devtools/fakePostmark';
import { insertTokens, seedUsers } from './seed';
import type { Stack } from './stack';
import { startMissingWorkflows, waitUntilSleeping } from './workload';

// No spread and no digests: these measure how fast one second's worth of reminders drains.
export const DUE_TOGETHER_ENV = { EXPIRY_REMINDERS: '1d', EXPIRED_NOTICE: 'false', EXPIRY_SPREAD: '0', EXPIRY_DIGEST_WINDOW: '0' };
const REMINDER_MS = 86_400_000;
const SPREAD_MS = 1_000;

/** Which reminder falls due together, and how the tokens are laid out. */
export interface DueTogetherShape {
  /** The reminder's lead before expiry (0: the expired notice); its nominal due time is expiry minus this. */
  beforeExpiryMs: number;
  /** How far before its nominal due time a reminder may fall due (EXPIRY_SPREAD's offset): setup ends before then. */
  earlyMs: number;
  /** One user per this many tokens. */
  tokensPerUser: number;
}
const ONE_DAY_AHEAD: DueTogetherShape = { beforeExpiryMs: REMINDER_MS, earlyMs: 0, tokensPerUser: 10 };

export interface DueTogether {
  /** Start of the common second; reminder i is nominally due at dueAt + i * SPREAD_MS / count. */
  dueAt: number;
  /** Seconds the starts took, and when every workflow was asleep (null: not before the due time). */
  startSeconds: number;
  /** Setup time per workflow measured by the probe, in ms. */
  setupMsPerWorkflow: number;
  asleepBeforeDue: boolean;
  secondsToSpare: number;
  /** Nominal due time of each token's reminder (expiry minus its lead, before any spread). */
  dueOf: Map<string, number>;
}

/**
 * How long starting one workflow and putting it to sleep takes on this machine now, from a probe of
 * far-off tokens (they stay asleep through the run): the due time must leave room for all of them.
 */
async function setupMsPerWorkflow(stack: Stack, users: { firstId: number; count: number }, probe: number): Promise<number> {
  await insertTokens(stack.db, { count: probe, users, firstExpiry: new Date(Date.now() + 60 * REMINDER_MS), spreadMs: REMINDER_MS });
  const started = Date.now();
  await startMissingWorkflows(stack);
  await waitUntilSleeping(stack.client, probe, Date.now() + 600_000);
  return (Date.now() - started) / probe;
}

/** `leadMs` 0: from the probe, half as long again as the setup should take, and 15 s more. */
export async function scheduleDueTogether(
  stack: Stack,
  count: number,
  leadMs: number,
  shape: DueTogetherShape = ONE_DAY_AHEAD,
): Promise<DueTogether> {
  const users = await seedUsers(stack.db, Math.max(1, Math.ceil(count / shape.tokensPerUser)));
  const probe = Math.max(100, Math.round(count / 20));
  const perWorkflowMs = await setupMsPerWorkflow(stack, users, probe);
  const lead = leadMs > 0 ? leadMs : 15_000 + 1.5 * count * perWorkflowMs;
  stack.log(`setting up one workflow takes ${perWorkflowMs.toFixed(1)} ms now: due in ${(lead / 1000).toFixed(0)} s`);
  const dueAt = Math.ceil((Date.now() + lead + shape.earlyMs) / 1000) * 1000;
  await insertTokens(stack.db, { count, users, firstExpiry: new Date(dueAt + shape.beforeExpiryMs), spreadMs: SPREAD_MS });
  const { rows } = await stack.db.query<{ id: string; due: Date }>(
    `SELECT t.id::text, t.expired_at - $1 * interval '1 millisecond' AS due FROM api_tokens t
      WHERE NOT EXISTS (SELECT 1 FROM expiry_workflows w WHERE w.token_id = t.id)`,
    [shape.beforeExpiryMs],
  );
  const dueOf = new Map(rows.map((r) => [r.id, r.due.getTime()]));
  stack.log(`${count} reminders due at ${new Date(dueAt).toISOString()} (+1 s); starting their workflows`);
  const startedAt = Date.now();
  const summary = await startMissingWorkflows(stack);
  const startSeconds = (Date.now() - startedAt) / 1000;
  const firstDueAt = dueAt - shape.earlyMs;
  const asleepAt = await waitUntilSleeping(stack.client, probe + count, firstDueAt - 1_000);
  const secondsToSpare = (firstDueAt - (asleepAt ?? Date.now())) / 1000;
  stack.log(
    `${summary.started} started in ${startSeconds.toFixed(1)} s; ` +
      (asleepAt ? `all asleep ${secondsToSpare.toFixed(1)} s before the first is due` : 'NOT all asleep before the due time: raise --fan-in-lead'),
  );
  return { dueAt, startSeconds, setupMsPerWorkflow: perWorkflowMs, asleepBeforeDue: asleepAt !== null, secondsToSpare, dueOf };
}

/** Milliseconds from each message's reminder falling due to the fake Postmark receiving it. */
export function latenesses(messages: SentMessage[], dueOf: Map<string, number>): number[] {
  return messages.map((m) => m.receivedAt.getTime() - (dueOf.get(m.Metadata.token_id ?? '') ?? Number.NaN));
}
