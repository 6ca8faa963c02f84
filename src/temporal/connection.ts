// How every process reaches Temporal: connection options (local, self-hosted, Temporal Cloud), one lazily
// connected client, the search attributes the workflows need, and "describe, or not found".
import { readFileSync } from 'node:fs';
import { Client, Connection, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { ConfigError, type Config } from '../config';
import { logger } from '../log';
import { searchAttributes } from '../tokenExpiry/contract';

export type ConnectionConfig = Pick<
  Config,
  | 'TEMPORAL_ADDRESS'
  | 'TEMPORAL_NAMESPACE'
  | 'TEMPORAL_TLS'
  | 'TEMPORAL_TLS_CERT_PATH'
  | 'TEMPORAL_TLS_KEY_PATH'
  | 'TEMPORAL_TLS_CA_PATH'
  | 'TEMPORAL_API_KEY'
>;

/** Address, TLS and API key for a local server, a self-hosted cluster or Temporal Cloud; for client and worker alike. */
export function temporalConnectionOptions(config: Omit<ConnectionConfig, 'TEMPORAL_NAMESPACE'>) {
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

/**
 * A request that finds Temporal down should answer in seconds (the token is kept and the sweep
 * schedules it), so connecting gives up sooner than the SDK's 10 s, and a failure is remembered
 * briefly, so that one request does not wait for two attempts.
 */
const CONNECT_TIMEOUT = '5s';
const RETRY_CONNECT_AFTER_MS = 5_000;

export interface LazyClient {
  /** Connects on first use, once; a failed connect is tried again after a few seconds. */
  get(): Promise<Client>;
  close(): Promise<void>;
}

/** A client connected on first use: commands and requests that never touch Temporal work while it is down. */
export function lazyClient(config: ConnectionConfig): LazyClient {
  let connecting: Promise<Client> | undefined;
  return {
    get: () =>
      (connecting ??= Connection.connect({ ...temporalConnectionOptions(config), connectTimeout: CONNECT_TIMEOUT }).then(
        (connection) => new Client({ connection, namespace: config.TEMPORAL_NAMESPACE }),
        (err: unknown) => {
          setTimeout(() => (connecting = undefined), RETRY_CONNECT_AFTER_MS).unref();
          throw err;
        },
      )),
    async close() {
      const client = await connecting?.catch(() => undefined);
      await client?.connection.close();
    },
  };
}

/** Temporal's status of a workflow's latest run (RUNNING, TERMINATED, ...), or NOT_FOUND. */
export async function executionStatus(handle: WorkflowHandle): Promise<string> {
  try {
    return (await handle.describe()).status.name;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return 'NOT_FOUND';
    throw err;
  }
}

const INDEXED_VALUE_TYPES = {
  KEYWORD: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  DATETIME: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
} as const;

type SearchAttributeKey = (typeof searchAttributes)[keyof typeof searchAttributes];

/** The operator request that registers these search attributes (all of ours by default). */
export function addSearchAttributesRequest(namespace: string, keys: SearchAttributeKey[] = Object.values(searchAttributes)) {
  return {
    namespace,
    searchAttributes: Object.fromEntries(
      keys.map(({ name, type }) => [name, INDEXED_VALUE_TYPES[type as keyof typeof INDEXED_VALUE_TYPES]]),
    ),
  };
}

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
    await operator.addSearchAttributes(addSearchAttributesRequest(namespace, wanted));
    return { added: wanted.map(({ name }) => name), missing: [] };
  } catch (err) {
    logger.warn('could not register search attributes', { error: (err as Error).message });
    return { added: [], missing: wanted.map(({ name }) => name) };
  }
}
