// Every call this service makes to a token's expiry workflow: start, cancel and describe.
import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription, type WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { instanceOf, taskQueueOf, type Config } from '../config';
import type { TokenRow } from '../registry/adapter';
import { executionStatus } from '../temporal/connection';
import type { tokenExpiryWorkflow } from '../../workflows/tokenExpiry';
import {
  searchAttributes,
  statusQuery,
  TOKEN_CREATED_AT_MEMO,
  tokenExpiryWorkflowId,
  type TokenExpiryInput,
  type TokenExpiryStatus,
} from './contract';
import { initialStatus } from './plan';
import { workflowDetails, workflowSummary } from './summaries';
import { tokenPlan } from './userPlan';
import { defaultPlan, type UserPlan } from '../preferences/rules';

export type ReminderSettings = Pick<
  Config,
  | 'TEMPORAL_TASK_QUEUE'
  | 'EXPIRY_REMINDERS'
  | 'EXPIRED_NOTICE'
  | 'EXPIRY_REMINDER_MENU'
  | 'EXPIRY_SPREAD'
  | 'EXPIRY_START_DELAY'
  | 'TOKEN_EXPIRY_INSTANCE'
>;

/**
 * The workflow's input: ids, dates and the reminder plan of the owner (`plan`: their preferences, or the operator's
 * settings), nothing personal: waking hours arrive as the due times they moved, not as a time zone.
 */
export function tokenExpiryInput(token: TokenRow, settings: ReminderSettings, plan: UserPlan = defaultPlan(settings)): TokenExpiryInput {
  if (!token.expiredAt) throw new Error(`token ${token.id} has no expiry`);
  const dates = { tokenId: token.id, createdAt: token.createdAt.toISOString(), expiresAt: token.expiredAt.toISOString() };
  return {
    instance: instanceOf(settings),
    ...dates,
    ...tokenPlan(dates, plan, settings.EXPIRY_SPREAD),
    ...(settings.EXPIRY_SPREAD > 0 ? { spreadMs: settings.EXPIRY_SPREAD } : {}),
  };
}

/**
 * When the workflow first has something to do: its earliest reminder that the user was not already inside
 * (those are only recorded as skipped); null when none.
 */
export function firstReminderDue(input: TokenExpiryInput): Date | null {
  const { nextDueAt } = initialStatus(input);
  return nextDueAt ? new Date(nextDueAt) : null;
}

/** A delay shorter than this is not worth it: start at once. */
const MIN_START_DELAY_MS = 1_000;

/**
 * A running workflow with this token's id that was started for another token: a database restored from
 * another's dump (it carries that one's instance id). Left alone (it may be another registry's), and reported
 * instead of being taken for this token's.
 */
class TokenWorkflowCollision extends Error {}

/** Whether a run was started for this token: the same expiry, and the same creation time when it carries one. */
function startedFor(description: WorkflowExecutionDescription, token: TokenRow): boolean {
  const expiresAt = description.typedSearchAttributes.get(searchAttributes.expiresAt);
  const createdAt = description.memo?.[TOKEN_CREATED_AT_MEMO];
  // Workflows from before the memo existed carry only the expiry.
  return (
    expiresAt?.getTime() === token.expiredAt?.getTime() &&
    (createdAt === undefined || createdAt === token.createdAt.toISOString())
  );
}

function collision(workflowId: string, description: WorkflowExecutionDescription): TokenWorkflowCollision {
  const expiresAt = description.typedSearchAttributes.get(searchAttributes.expiresAt)?.toISOString() ?? 'unknown';
  return new TokenWorkflowCollision(
    `workflow ${workflowId} is running for another token (expiring ${expiresAt}): another database shares this ` +
      'Temporal namespace with the same instance id (a copy of its database?); see docs/design.md, Ids and instances',
  );
}

/**
 * Starts the token's workflow; starting it again while it runs is harmless. A running workflow with the same id
 * (also one still in its start delay) is this token's only if it was started for it (expiry, creation time);
 * otherwise TokenWorkflowCollision. With EXPIRY_START_DELAY the server runs nothing until the first reminder
 * is due (no first workflow task, one history event); the search attributes say "waiting" and when, as the
 * workflow itself would.
 */
export async function startTokenExpiryWorkflow(
  client: Client,
  token: TokenRow,
  settings: ReminderSettings,
  now: Date = new Date(),
  plan: UserPlan = defaultPlan(settings),
): Promise<string> {
  const input = tokenExpiryInput(token, settings, plan);
  const workflowId = tokenExpiryWorkflowId(token.id, instanceOf(settings));
  try {
    await startWorkflow(client, workflowId, input, settings, now);
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    // Rare (a second start of a running token), so the common start stays one round trip.
    const description = await client.workflow.getHandle(workflowId).describe();
    if (!startedFor(description, token)) throw collision(workflowId, description);
  }
  return workflowId;
}

async function startWorkflow(client: Client, workflowId: string, input: TokenExpiryInput, settings: ReminderSettings, now: Date) {
  const firstDue = firstReminderDue(input);
  const delayMs = settings.EXPIRY_START_DELAY && firstDue ? firstDue.getTime() - now.getTime() : 0;
  const delayed = delayMs >= MIN_START_DELAY_MS;
  await client.workflow.start<typeof tokenExpiryWorkflow>('tokenExpiryWorkflow', {
    taskQueue: taskQueueOf(settings),
    workflowId,
    args: [input],
    // Not USE_EXISTING: a running workflow with this id is checked to be this token's before it is taken for it.
    workflowIdConflictPolicy: 'FAIL',
    memo: { [TOKEN_CREATED_AT_MEMO]: input.createdAt },
    // What the Temporal UI shows of the run: ids and dates, like the input.
    staticSummary: workflowSummary(input),
    staticDetails: workflowDetails(input),
    ...(delayed ? { startDelay: delayMs } : {}),
    typedSearchAttributes: [
      { key: searchAttributes.tokenId, value: input.tokenId },
      { key: searchAttributes.expiresAt, value: new Date(input.expiresAt) },
      { key: searchAttributes.state, value: 'waiting' },
      ...(delayed && firstDue ? [{ key: searchAttributes.nextReminderAt, value: firstDue }] : []),
    ],
  });
}

/** Cancels the token's workflow; false when there is none running, or the one running is another token's. */
export async function cancelTokenExpiryWorkflow(client: Client, token: TokenRow, instance: string): Promise<boolean> {
  const handle = client.workflow.getHandle(tokenExpiryWorkflowId(token.id, instance));
  const description = await handle.describe().catch((err: unknown) => {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  });
  if (description?.status.name !== 'RUNNING' || !startedFor(description, token)) return false;
  await handle.cancel();
  return true;
}

/** The deadline a caller puts on a status read (the HTTP API's, src/api/routes.ts): with no worker running, give up sooner. */
export const STATUS_DEADLINE_MS = 5_000;
/** The status query's share of it: what is left covers the describe before and the history read after a query that got no answer. */
const STATUS_QUERY_TIMEOUT_MS = STATUS_DEADLINE_MS - 2_000;

export interface WorkflowView {
  workflowId: string;
  /** Temporal's own status: RUNNING, COMPLETED, CANCELLED, TERMINATED, ... or NOT_FOUND. */
  execution: string;
  /** The workflow's own view, from its status query; null when it could not answer. */
  status: TokenExpiryStatus | null;
}

export async function describeTokenExpiryWorkflow(
  client: Client,
  tokenId: string,
  instance: string,
): Promise<WorkflowView> {
  const workflowId = tokenExpiryWorkflowId(tokenId, instance);
  const handle = client.workflow.getHandle<typeof tokenExpiryWorkflow>(workflowId);
  const execution = await executionStatus(handle);
  if (execution === 'NOT_FOUND') return { workflowId, execution, status: null };
  // A query needs a worker to answer it: without one, say so quickly instead of hanging.
  const status = await Promise.race([
    handle.query(statusQuery),
    new Promise<null>((resolve) => setTimeout(resolve, STATUS_QUERY_TIMEOUT_MS, null).unref()),
  ]).catch(() => null);
  if (status || execution !== 'RUNNING') return { workflowId, execution, status };
  // In its start delay the server refuses queries ("workflow task not scheduled yet"): answer from its input.
  return { workflowId, execution, status: await statusBeforeFirstTask(handle).catch(() => null) };
}

/**
 * What the workflow's status query will say once it runs, for a run none of whose workflow tasks has run
 * yet (in its start delay): its plan from the start input, waiting for the first reminder. Null otherwise.
 */
async function statusBeforeFirstTask(handle: WorkflowHandle): Promise<TokenExpiryStatus | null> {
  const input = await inputBeforeFirstTask(handle);
  return input ? initialStatus(input) : null;
}

/** The start input of a run none of whose workflow tasks has run yet (in its start delay); null otherwise. */
export async function inputBeforeFirstTask(handle: WorkflowHandle): Promise<TokenExpiryInput | null> {
  const events = (await handle.fetchHistory()).events ?? [];
  if (events.some((event) => event.workflowTaskStartedEventAttributes)) return null;
  const payload = events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  return payload ? defaultPayloadConverter.fromPayload<TokenExpiryInput>(payload) : null;
}

/** Temporal's status of the token's latest run, or NOT_FOUND. */
export function tokenExpiryExecutionStatus(client: Client, tokenId: string, instance: string): Promise<string> {
  return executionStatus(client.workflow.getHandle(tokenExpiryWorkflowId(tokenId, instance)));
}
