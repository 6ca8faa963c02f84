// `token-expiry replan`: today's EXPIRY_REMINDERS and EXPIRED_NOTICE sent, as the replan update, to every
// waiting token expiry workflow that a visibility query finds, a bounded number at a time, with progress.
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client, type WorkflowExecutionInfo } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../config';
import { drawProgressBar, ratePerSecond, type ProgressStream } from '../progressBar';
import type { tokenExpiryWorkflow } from '../../workflows/tokenExpiry';
import { inputBeforeFirstTask } from './client';
import { replanUpdate, type ReplanInput, type ReplanRefusal, type ReplanResult, type TokenExpiryInput } from './contract';

export type ReplanSettings = Pick<Config, 'TEMPORAL_TASK_QUEUE' | 'EXPIRY_REMINDERS' | 'EXPIRED_NOTICE'>;

export interface ReplanSummary {
  /** Waiting runs the visibility query listed. */
  matched: number;
  /** Took the new plan (`delayed` of them were in their start delay: see below). */
  replanned: number;
  /** Had the plan already: refused by the workflow, or, in a start delay, read from its start input. */
  unchanged: number;
  /** In their start delay and on another plan: the update ended the delay (their first workflow task ran now). */
  delayed: number;
  /** Sleeping on a timer from before the replan patch: they keep their plan until their next reminder; run again then. */
  predatesReplan: number;
  /** Closed between the listing and the update (revoked, completed). */
  gone: number;
  failed: number;
  /** Reminder keys the replanned runs gained, lost (recorded as dropped-from-plan) or moved, with how many runs each. */
  added: Record<string, number>;
  dropped: Record<string, number>;
  seconds: number;
  perSecond: number;
  /** The first failures (workflow id and error); `failed` counts them all. */
  failures: { workflowId: string; error: string }[];
}

export interface ReplanProgress {
  done: number;
  /** The count taken at the start; runs created meanwhile can push `done` past it. */
  total: number;
  summary: ReplanSummary;
  elapsedMs: number;
}

const FAILURES_SHOWN = 20;

/** Every running token expiry workflow of this task queue that says it is waiting for a reminder. */
export function waitingWorkflowsQuery(taskQueue: string): string {
  return `WorkflowType="tokenExpiryWorkflow" AND ExecutionStatus="Running" AND ExpiryState="waiting" AND TaskQueue="${taskQueue.replace(/"/g, '\\"')}"`;
}

type Outcome = { kind: 'replanned'; result: ReplanResult; delayed: boolean } | { kind: 'unchanged' | 'predatesReplan' | 'gone' } | { kind: 'failed'; error: string };

/**
 * Sends the plan to every waiting workflow, `concurrency` updates in flight. Safe to run twice (the second
 * run finds every plan unchanged) and while tokens are created (a new run either has the plan already or
 * is not listed yet). A run still in its start delay is compared with its start input first, so that only
 * runs whose plan differs are woken: an update ends a start delay.
 */
export async function runReplan(
  client: Client,
  settings: ReplanSettings,
  { concurrency = 16, now = () => new Date() }: { concurrency?: number; now?: () => Date } = {},
  onProgress: (progress: ReplanProgress) => void = () => undefined,
): Promise<ReplanSummary> {
  const started = Date.now();
  const plan: ReplanInput = { reminders: settings.EXPIRY_REMINDERS, expiredNotice: settings.EXPIRED_NOTICE };
  const query = waitingWorkflowsQuery(settings.TEMPORAL_TASK_QUEUE);
  const total = (await client.workflow.count(query)).count;
  const summary: ReplanSummary = {
    matched: 0, replanned: 0, unchanged: 0, delayed: 0, predatesReplan: 0, gone: 0, failed: 0,
    added: {}, dropped: {}, seconds: 0, perSecond: 0, failures: [],
  };
  let done = 0;
  const tally = (keys: string[], into: Record<string, number>) => keys.forEach((key) => (into[key] = (into[key] ?? 0) + 1));
  const record = (workflowId: string, outcome: Outcome) => {
    if (outcome.kind === 'replanned') {
      summary.replanned++;
      if (outcome.delayed) summary.delayed++;
      tally(outcome.result.added, summary.added);
      tally(outcome.result.dropped, summary.dropped);
    } else if (outcome.kind === 'failed') {
      summary.failed++;
      if (summary.failures.length < FAILURES_SHOWN) summary.failures.push({ workflowId, error: outcome.error });
    } else summary[outcome.kind]++;
    done++;
    onProgress({ done, total: Math.max(total, summary.matched), summary, elapsedMs: Date.now() - started });
  };

  // A fixed number of senders share one listing: the listing pages as they pull from it.
  const listing = client.workflow.list({ query })[Symbol.asyncIterator]();
  const sender = async () => {
    for (let next = await listing.next(); !next.done; next = await listing.next()) {
      summary.matched++;
      const execution = next.value;
      record(execution.workflowId, await replanOne(client, execution, plan, now()));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, sender));
  summary.seconds = (Date.now() - started) / 1000;
  summary.perSecond = Math.round(summary.matched / Math.max(summary.seconds, 0.001));
  return summary;
}

async function replanOne(client: Client, execution: WorkflowExecutionInfo, plan: ReplanInput, now: Date): Promise<Outcome> {
  const handle = client.workflow.getHandle<typeof tokenExpiryWorkflow>(execution.workflowId, execution.runId);
  try {
    // The listing keeps a run's first execution time after an update ended its delay: the history tells.
    const mayBeDelayed = (execution.executionTime?.getTime() ?? 0) > now.getTime();
    const delayedInput = mayBeDelayed ? await inputBeforeFirstTask(handle) : null;
    if (delayedInput && samePlan(delayedInput, plan)) return { kind: 'unchanged' };
    return { kind: 'replanned', result: await handle.executeUpdate(replanUpdate, { args: [plan] }), delayed: delayedInput !== null };
  } catch (err) {
    const refusal = err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure ? (err.cause.type as ReplanRefusal) : null;
    if (refusal === 'PlanUnchanged') return { kind: 'unchanged' };
    if (refusal === 'RunPredatesReplan') return { kind: 'predatesReplan' };
    if (err instanceof WorkflowNotFoundError || /already completed/i.test((err as Error).message)) return { kind: 'gone' };
    return { kind: 'failed', error: err instanceof WorkflowUpdateFailedError ? `${err.message}: ${err.cause?.message}` : (err as Error).message };
  }
}

/** A run in its start delay has had no replan: its plan is its start input. */
function samePlan(input: TokenExpiryInput, plan: ReplanInput): boolean {
  if (input.expiredNotice !== plan.expiredNotice || input.reminders.length !== plan.reminders.length) return false;
  return input.reminders.every((r, i) => r.key === plan.reminders[i]?.key && r.beforeExpiryMs === plan.reminders[i]?.beforeExpiryMs);
}

/** A bar redrawn in place (at most ten times a second) on a terminal; otherwise a plain line every 1,000 runs and at the end. */
export function replanProgressReporter(stream: ProgressStream): { update: (progress: ReplanProgress) => void; finish: () => void } {
  let drawnAt = 0;
  let last: ReplanProgress | undefined;
  const describe = ({ done, total, summary: s, elapsedMs }: ReplanProgress) =>
    `${done}/${total}: ${s.replanned} replanned, ${s.unchanged} unchanged, ${s.failed} failed ${ratePerSecond(done, elapsedMs)}`;
  return {
    update(progress) {
      last = progress;
      if (!stream.isTTY) {
        if (progress.done % 1000 === 0) stream.write(`replan: ${describe(progress)}\n`);
        return;
      }
      const now = Date.now();
      if (now - drawnAt < 100 && progress.done < progress.total) return;
      drawnAt = now;
      drawProgressBar(stream, progress.total === 0 ? 1 : progress.done / progress.total, `replan ${describe(progress)}`);
    },
    finish() {
      if (!last) return;
      if (stream.isTTY) {
        drawProgressBar(stream, 1, `replan ${describe(last)}`);
        stream.write('\n');
      } else if (last.done % 1000 !== 0) stream.write(`replan: ${describe(last)}\n`);
    },
  };
}
