// Every call this service makes to a token's expiry workflow: start, cancel and describe.
import type { Client } from '@temporalio/client';
import type { Config } from '../config';
import type { TokenRow } from '../registry/adapter';
import { executionStatus } from '../temporal/connection';
import type { tokenExpiryWorkflow } from '../../workflows/tokenExpiry';
import {
  searchAttributes,
  statusQuery,
  tokenExpiryWorkflowId,
  type TokenExpiryInput,
  type TokenExpiryStatus,
} from './contract';

export type ReminderSettings = Pick<Config, 'TEMPORAL_TASK_QUEUE' | 'EXPIRY_REMINDERS' | 'EXPIRED_NOTICE'>;

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

/** Starts the token's workflow; starting it again while it runs is harmless (USE_EXISTING). */
export async function startTokenExpiryWorkflow(
  client: Client,
  token: TokenRow,
  settings: ReminderSettings,
): Promise<string> {
  const input = tokenExpiryInput(token, settings);
  const handle = await client.workflow.start<typeof tokenExpiryWorkflow>('tokenExpiryWorkflow', {
    taskQueue: settings.TEMPORAL_TASK_QUEUE,
    workflowId: tokenExpiryWorkflowId(token.id),
    args: [input],
    workflowIdConflictPolicy: 'USE_EXISTING',
    typedSearchAttributes: [
      { key: searchAttributes.tokenId, value: token.id },
      { key: searchAttributes.expiresAt, value: new Date(input.expiresAt) },
      { key: searchAttributes.state, value: 'waiting' },
    ],
  });
  return handle.workflowId;
}

/** Cancels the token's workflow; false when there is none running. */
export async function cancelTokenExpiryWorkflow(client: Client, tokenId: string): Promise<boolean> {
  const handle = client.workflow.getHandle(tokenExpiryWorkflowId(tokenId));
  if ((await executionStatus(handle)) !== 'RUNNING') return false;
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

export async function describeTokenExpiryWorkflow(client: Client, tokenId: string): Promise<WorkflowView> {
  const workflowId = tokenExpiryWorkflowId(tokenId);
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
export function tokenExpiryExecutionStatus(client: Client, tokenId: string): Promise<string> {
  return executionStatus(client.workflow.getHandle(tokenExpiryWorkflowId(tokenId)));
}
