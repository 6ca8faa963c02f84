// The replan update sent to waiting token expiry workflows, a bounded number at a time: `token-expiry replan` sends
// each waiting workflow its owner's plan (today's EXPIRY_REMINDERS and EXPIRED_NOTICE for those who never chose), with
// progress; a change of one user's preferences sends their plan to that user's waiting workflows at once.
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { instanceOf, taskQueueOf, type Config } from '../config';
import { drawProgressBar, ratePerSecond, type ProgressStream } from '../progressBar';
import type { tokenExpiryWorkflow } from '../../workflows/tokenExpiry';
import { inputBeforeFirstTask } from './client';
import type { Queryable } from '../db/transaction';
import { findOwnerPreferences } from '../db/preferences';
import { findWaitingTokenIdsOfUser } from '../db/workflows';
import { userPlan, type UserPlan } from '../preferences/rules';
import {
  replanUpdate,
  searchAttributes,
  tokenExpiryWorkflowId,
  type ReplanInput,
  type ReplanRefusal,
  type ReplanResult,
  type TokenExpiryInput,
} from './contract';
import { tokenPlan } from './userPlan';
import type { RegistryAdapter } from '../registry/adapter';

export type ReplanSettings = Pick<
  Config,
  'TEMPORAL_TASK_QUEUE' | 'TOKEN_EXPIRY_INSTANCE' | 'EXPIRY_REMINDERS' | 'EXPIRED_NOTICE' | 'EXPIRY_REMINDER_MENU' | 'EXPIRY_SPREAD' | 'EXPIRY_START_DELAY'
>;

/** A waiting run as the replan sees it: from a visibility listing, or named by its token's id. */
interface ReplanTarget {
  workflowId: string;
  runId?: string;
  /** When its first workflow task may run: later than now while in its start delay; unknown: look at its history. */
  executionTime?: Date;
}

/** The replan input of one token of this plan: its lead times, and the due times its owner's waking hours moved. */
function replanInput(token: { tokenId: string; expiresAt: string }, plan: UserPlan, settings: Pick<ReplanSettings, 'EXPIRY_SPREAD'>): ReplanInput {
  const { reminders, expiredNotice, wakingDueAt } = tokenPlan(token, plan, settings.EXPIRY_SPREAD);
  return { reminders, expiredNotice, ...(wakingDueAt ? { wakingDueAt } : {}) };
}

/**
 * Each listed run's plan: its owner's (a lookup of the token's owner and their preferences), or, with no database,
 * the operator's plan for every run.
 */
export function ownersPlans(db: Queryable | null, settings: ReplanSettings): (execution: ListedRun) => Promise<ReplanInput> {
  const operator: ReplanInput = { reminders: settings.EXPIRY_REMINDERS, expiredNotice: settings.EXPIRED_NOTICE };
  return async ({ tokenId, expiresAt }) => {
    if (!db || !tokenId || !expiresAt) return operator;
    const preferences = await findOwnerPreferences(db, tokenId);
    return preferences ? replanInput({ tokenId, expiresAt: expiresAt.toISOString() }, userPlan(preferences, settings), settings) : operator;
  };
}

/** What a listing says of a run: the token and the expiry it waits for (search attributes). */
export interface ListedRun {
  tokenId?: string;
  expiresAt?: Date;
}

export interface ReplanSummary {
  /** Waiting runs the visibility query listed. */
  matched: number;
  /** Took the new plan (`delayed` of them were in their start delay: see below). */
  replanned: number;
  /** Had the plan already: refused by the workflow, or, in a start delay, read from its start input. */
  unchanged: number;
  /** In their start delay and on another plan: the update ended the delay (their first workflow task ran now). */
  delayed: number;
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

/**
 * Every running token expiry workflow of this task queue that says it is waiting for a reminder: the queue is
 * the instance's own (TEMPORAL_TASK_QUEUE-<instance>), so another instance's workflows are never listed.
 */
export function waitingWorkflowsQuery(taskQueue: string): string {
  return `WorkflowType="tokenExpiryWorkflow" AND ExecutionStatus="Running" AND ExpiryState="waiting" AND TaskQueue="${taskQueue.replace(/"/g, '\\"')}"`;
}

type Outcome = { kind: 'replanned'; result: ReplanResult; delayed: boolean } | { kind: 'unchanged' | 'gone' } | { kind: 'failed'; error: string };

/**
 * Sends the plan to every waiting workflow, `concurrency` updates in flight. Safe to run twice (the second
 * run finds every plan unchanged) and while tokens are created (a new run either has the plan already or
 * is not listed yet). A run still in its start delay is compared with its start input first, so that only
 * runs whose plan differs are woken: an update ends a start delay.
 */
export async function runReplan(
  client: Client,
  settings: ReplanSettings,
  {
    concurrency = 16,
    now = () => new Date(),
    planFor = ownersPlans(null, settings),
  }: { concurrency?: number; now?: () => Date; planFor?: (run: ListedRun) => Promise<ReplanInput> } = {},
  onProgress: (progress: ReplanProgress) => void = () => undefined,
): Promise<ReplanSummary> {
  const query = waitingWorkflowsQuery(taskQueueOf(settings));
  const total = (await client.workflow.count(query)).count;
  // A fixed number of senders share one listing: the listing pages as they pull from it.
  const listing = client.workflow.list({ query })[Symbol.asyncIterator]();
  const next = async () => {
    const item = await listing.next();
    if (item.done) return null;
    const run = item.value;
    const listed = { tokenId: run.typedSearchAttributes.get(searchAttributes.tokenId), expiresAt: run.typedSearchAttributes.get(searchAttributes.expiresAt) };
    return { target: run, plan: () => planFor(listed) };
  };
  return replanEach(client, next, total, { concurrency, now }, onProgress);
}

/**
 * Sends one user's plan to each of their tokens' waiting workflows (those on record as started, not cancelled, and
 * not expired more than a week ago: an expired notice may wait for the user's waking hours), `concurrency` at a time.
 * A run in its start delay whose plan this does not change is woken by the refused update: one workflow task.
 */
export async function replanUserTokens(
  temporal: () => Promise<Client>,
  db: Queryable,
  registry: RegistryAdapter,
  settings: ReplanSettings & Pick<Config, 'TOKEN_EXPIRY_INSTANCE'>,
  user: { userId: string; plan: UserPlan },
  { concurrency = 32, now = () => new Date() }: { concurrency?: number; now?: () => Date } = {},
): Promise<ReplanSummary> {
  const ids = await findWaitingTokenIdsOfUser(db, user.userId, new Date(now().getTime() - WAKING_WAIT_MS));
  const tokens = (await registry.findTokens(db, ids)).filter((t) => t.expiredAt && !t.revoked);
  const gone = ids.length - tokens.length;
  let index = 0;
  const next = async () => {
    const token = tokens[index++];
    if (!token?.expiredAt) return null;
    const target = { workflowId: tokenExpiryWorkflowId(token.id, instanceOf(settings)) };
    // The expiry as the registry has it now: a run still waiting for an older one is moved to it.
    const expiresAt = token.expiredAt.toISOString();
    return { target, plan: async () => ({ ...replanInput({ tokenId: token.id, expiresAt }, user.plan, settings), expiresAt }) };
  };
  // Temporal is asked only when a run may be waiting; unreachable, every run counts as failed (replan again later).
  const client = tokens.length > 0 ? await temporal().catch((err: unknown) => err as Error) : null;
  const summary =
    client instanceof Error
      ? { ...emptySummary(), matched: tokens.length, failed: tokens.length, failures: [{ workflowId: '*', error: `Temporal: ${client.message}` }] }
      : // No look at each run's history for a start delay first: a change mostly moves every run's plan (the update
        // ends the delay anyway), and the look costs as much as the update (bench preferences-replan).
        await replanEach(client as Client, next, tokens.length, { concurrency, now, delays: false });
  summary.matched += gone;
  summary.gone += gone;
  return summary;
}

/** An expired notice waits for the owner's waking hours at most this long (a week without one ends sooner). */
const WAKING_WAIT_MS = 8 * 86_400_000;

function emptySummary(): ReplanSummary {
  return {
    matched: 0, replanned: 0, unchanged: 0, delayed: 0, gone: 0, failed: 0,
    added: {}, dropped: {}, seconds: 0, perSecond: 0, failures: [],
  };
}

type NextRun = () => Promise<{ target: ReplanTarget; plan: () => Promise<ReplanInput> } | null>;

async function replanEach(
  client: Client,
  nextRun: NextRun,
  total: number,
  { concurrency, now, delays = true }: { concurrency: number; now: () => Date; delays?: boolean },
  onProgress: (progress: ReplanProgress) => void = () => undefined,
): Promise<ReplanSummary> {
  const started = Date.now();
  const summary = emptySummary();
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

  const sender = async () => {
    for (let next = await nextRun(); next; next = await nextRun()) {
      summary.matched++;
      const { target, plan } = next;
      const outcome = await plan().then(
        (input) => replanOne(client, target, input, now(), delays),
        (err: unknown): Outcome => ({ kind: 'failed', error: `its plan could not be read: ${(err as Error).message}` }),
      );
      record(target.workflowId, outcome);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, sender));
  summary.seconds = (Date.now() - started) / 1000;
  summary.perSecond = Math.round(summary.matched / Math.max(summary.seconds, 0.001));
  return summary;
}

/** `delays`: runs may be started with a delay (EXPIRY_START_DELAY), so a run without a known execution time may be in one. */
async function replanOne(client: Client, target: ReplanTarget, plan: ReplanInput, now: Date, delays: boolean): Promise<Outcome> {
  const handle = client.workflow.getHandle<typeof tokenExpiryWorkflow>(target.workflowId, target.runId);
  try {
    // The listing keeps a run's first execution time after an update ended its delay: the history tells.
    const mayBeDelayed = target.executionTime ? target.executionTime.getTime() > now.getTime() : delays;
    const delayedInput = mayBeDelayed ? await inputBeforeFirstTask(handle) : null;
    if (delayedInput && samePlan(delayedInput, plan)) return { kind: 'unchanged' };
    return { kind: 'replanned', result: await handle.executeUpdate(replanUpdate, { args: [plan] }), delayed: delayedInput !== null };
  } catch (err) {
    const refusal = err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure ? (err.cause.type as ReplanRefusal) : null;
    if (refusal === 'PlanUnchanged') return { kind: 'unchanged' };
    if (err instanceof WorkflowNotFoundError || /already completed/i.test((err as Error).message)) return { kind: 'gone' };
    return { kind: 'failed', error: err instanceof WorkflowUpdateFailedError ? `${err.message}: ${err.cause?.message}` : (err as Error).message };
  }
}

/** A run in its start delay has had no replan: its plan is its start input. */
function samePlan(input: TokenExpiryInput, plan: ReplanInput): boolean {
  if (input.expiredNotice !== plan.expiredNotice || input.reminders.length !== plan.reminders.length) return false;
  if ((plan.expiresAt ?? input.expiresAt) !== input.expiresAt) return false;
  const moved = (times: Record<string, string> | undefined) => JSON.stringify(Object.entries(times ?? {}).sort());
  if (moved(input.wakingDueAt) !== moved(plan.wakingDueAt)) return false;
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
