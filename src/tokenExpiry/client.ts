// Every call this service makes to a token's expiry workflow: start, cancel and describe.
import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Config } from '../config';
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

export type ReminderSettings = Pick<
  Config,
  'TEMPORAL_TASK_QUEUE' | 'EXPIRY_REMINDERS' | 'EXPIRED_NOTICE' | 'TOKEN_EXPIRY_INSTANCE'
>;

/** The workflow's input: ids, dates and the reminder plan, nothing personal. */
export function tokenExpiryInput(token: TokenRow, settings: ReminderSettings): TokenExpiryInput {
  if (!token.expiredAt) throw new Error(`token ${token.id} has no expiry`);
  return {
    tokenId: token.id,
    createdAt: token.createdAt.toISOString(),
    expiresAt: token.expiredAt.toISOString(),
    reminders: settings.EXPIRY_REMINDERS,
    expiredNotice: settings.EXPIRED_NOTICE,
  };
}

/**
 * A running workflow with this token's id that was started for another token: another database's token
 * with the same id in a shared namespace, or an earlier token of a recreated database. Left alone (it may
 * be another registry's), and reported instead of being taken for this token's.
 */
export class TokenWorkflowCollision extends Error {}

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
      'Temporal namespace with the same token ids; give each its own TOKEN_EXPIRY_INSTANCE',
  );
}

/**
 * Starts the token's workflow; starting it again while it runs is harmless. A running workflow with the same id
 * is this token's only if it was started for it (expiry, creation time); otherwise TokenWorkflowCollision.
 */
export async function startTokenExpiryWorkflow(
  client: Client,
  token: TokenRow,
  settings: ReminderSettings,
): Promise<string> {
  const input = tokenExpiryInput(token, settings);
  const workflowId = tokenExpiryWorkflowId(token.id, settings.TOKEN_EXPIRY_INSTANCE);
  try {
    await startWorkflow(client, workflowId, input, settings);
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    // Rare (a second start of a running token), so the common start stays one round trip.
    const description = await client.workflow.getHandle(workflowId).describe();
    if (!startedFor(description, token)) throw collision(workflowId, description);
  }
  return workflowId;
}

async function startWorkflow(client: Client, workflowId: string, input: TokenExpiryInput, settings: ReminderSettings) {
  await client.workflow.start<typeof tokenExpiryWorkflow>('tokenExpiryWorkflow', {
    taskQueue: settings.TEMPORAL_TASK_QUEUE,
    workflowId,
    args: [input],
    // Not USE_EXISTING: a running workflow with this id is checked to be this token's before it is taken for it.
    workflowIdConflictPolicy: 'FAIL',
    memo: { [TOKEN_CREATED_AT_MEMO]: input.createdAt },
    typedSearchAttributes: [
      { key: searchAttributes.tokenId, value: input.tokenId },
      { key: searchAttributes.expiresAt, value: new Date(input.expiresAt) },
      { key: searchAttributes.state, value: 'waiting' },
    ],
  });
}

/** Cancels the token's workflow; false when there is none running, or the one running is another token's. */
export async function cancelTokenExpiryWorkflow(client: Client, token: TokenRow, instance: string | undefined): Promise<boolean> {
  const handle = client.workflow.getHandle(tokenExpiryWorkflowId(token.id, instance));
  const description = await handle.describe().catch((err: unknown) => {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  });
  if (description?.status.name !== 'RUNNING' || !startedFor(description, token)) return false;
  await handle.cancel();
  return true;
}

const STATUS_QUERY_TIMEOUT_MS = 3_000;

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
  instance: string | undefined,
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
  return { workflowId, execution, status };
}

/** Temporal's status of the token's latest run, or NOT_FOUND. */
export function tokenExpiryExecutionStatus(client: Client, tokenId: string, instance: string | undefined): Promise<string> {
  return executionStatus(client.workflow.getHandle(tokenExpiryWorkflowId(tokenId, instance)));
}
