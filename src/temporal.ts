import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { readFileSync } from 'node:fs';
import { temporal } from '@temporalio/proto';
import { ConfigError, type Config } from './config';
import {
  searchAttributes,
  statusQuery,
  tokenExpiryWorkflowId,
  type TokenExpiryInput,
  type TokenExpiryStatus,
} from './contract';
import type { TokenRow } from './db/tokens';
import { logger } from './log';

export type ReminderSettings = Pick<Config, 'TEMPORAL_TASK_QUEUE' | 'EXPIRY_REMINDERS' | 'EXPIRED_NOTICE'>;

type ConnectionConfig = Pick<
  Config,
  | 'TEMPORAL_ADDRESS'
  | 'TEMPORAL_TLS'
  | 'TEMPORAL_TLS_CERT_PATH'
  | 'TEMPORAL_TLS_KEY_PATH'
  | 'TEMPORAL_TLS_CA_PATH'
  | 'TEMPORAL_API_KEY'
>;

/** Address, TLS and API key for a local server, a self-hosted cluster or Temporal Cloud; for client and worker alike. */
export function temporalConnectionOptions(config: ConnectionConfig) {
  const { TEMPORAL_TLS_CERT_PATH: certPath, TEMPORAL_TLS_KEY_PATH: keyPath, TEMPORAL_TLS_CA_PATH: caPath } = config;
  if (Boolean(certPath) !== Boolean(keyPath)) {
    throw new ConfigError('TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH: set both (mTLS) or neither');
  }
  const useTls = config.TEMPORAL_TLS || Boolean(certPath) || Boolean(config.TEMPORAL_API_KEY);
  const tls = useTls
    ? {
        ...(certPath && keyPath
          ? { clientCertPair: { crt: readFileSync(certPath), key: readFileSync(keyPath) } }
          : {}),
        ...(caPath ? { serverRootCACertificate: readFileSync(caPath) } : {}),
      }
    : undefined;
  return {
    address: config.TEMPORAL_ADDRESS,
    ...(tls ? { tls } : {}),
    ...(config.TEMPORAL_API_KEY ? { apiKey: config.TEMPORAL_API_KEY } : {}),
  };
}

export async function connectClient(config: ConnectionConfig & Pick<Config, 'TEMPORAL_NAMESPACE'>): Promise<Client> {
  const connection = await Connection.connect(temporalConnectionOptions(config));
  return new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
}

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
  const handle = await client.workflow.start('tokenExpiryWorkflow', {
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
  try {
    const { status } = await handle.describe();
    if (status.name !== 'RUNNING') return false;
    await handle.cancel();
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

const INDEXED_VALUE_TYPES = {
  KEYWORD: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  DATETIME: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
} as const;

/**
 * Registers the search attributes the workflows set, when missing: a fresh self-hosted server (compose)
 * rejects workflows that carry unknown ones. Temporal Cloud refuses this call; register them there with
 * its UI or tcld, and this returns the names still missing.
 */
export async function ensureSearchAttributes(client: Client, namespace: string): Promise<{ added: string[]; missing: string[] }> {
  const operator = client.connection.operatorService;
  const { customAttributes } = await operator.listSearchAttributes({ namespace });
  const wanted = Object.values(searchAttributes).filter(({ name }) => !(name in (customAttributes ?? {})));
  if (wanted.length === 0) return { added: [], missing: [] };
  try {
    await operator.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(
        wanted.map(({ name, type }) => [name, INDEXED_VALUE_TYPES[type as keyof typeof INDEXED_VALUE_TYPES]]),
      ),
    });
    return { added: wanted.map(({ name }) => name), missing: [] };
  } catch (err) {
    logger.warn('could not register search attributes', { error: (err as Error).message });
    return { added: [], missing: wanted.map(({ name }) => name) };
  }
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
  const handle = client.workflow.getHandle(workflowId);
  try {
    const description = await handle.describe();
    // A query needs a worker to answer it: without one, say so quickly instead of hanging.
    const status = await Promise.race([
      handle.query(statusQuery),
      new Promise<null>((resolve) => setTimeout(resolve, STATUS_QUERY_TIMEOUT_MS, null).unref()),
    ]).catch(() => null);
    return { workflowId, execution: description.status.name, status };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { workflowId, execution: 'NOT_FOUND', status: null };
    throw err;
  }
}
