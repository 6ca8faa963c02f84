// `token-expiry api`: serves the API on API_PORT until SIGINT or SIGTERM, then finishes in-flight requests.
import { once } from 'node:events';
import { Client, Connection } from '@temporalio/client';
import type { Logger } from '@temporalio/common';
import type { Config } from '../config';
import { createPool } from '../db/pool';
import { logger as defaultLogger } from '../log';
import { temporalConnectionOptions } from '../temporal';
import { createTokenService } from '../tokens';
import { createApiServer } from './server';

/** In-flight requests get this long after SIGTERM; then their connections are cut. */
const SHUTDOWN_GRACE_MS = 10_000;
/**
 * A request that finds Temporal down should answer in seconds (the token is kept and the sweep
 * schedules it), so connecting gives up sooner than the SDK's 10 s, and a failure is remembered
 * briefly, so that one request does not wait for two attempts.
 */
const CONNECT_TIMEOUT = '5s';
const RETRY_CONNECT_AFTER_MS = 5_000;

/** Connected on first use, once: the API serves (and creates tokens) while Temporal is down. */
function lazyTemporal(config: Config) {
  let connecting: Promise<Client> | undefined;
  return {
    get: (): Promise<Client> =>
      (connecting ??= Connection.connect({ ...temporalConnectionOptions(config), connectTimeout: CONNECT_TIMEOUT }).then(
        (connection) => new Client({ connection, namespace: config.TEMPORAL_NAMESPACE }),
        (err: unknown) => {
          setTimeout(() => (connecting = undefined), RETRY_CONNECT_AFTER_MS).unref();
          throw err;
        },
      )),
    async close(): Promise<void> {
      const client = await connecting?.catch(() => undefined);
      await client?.connection.close();
    },
  };
}

export async function runApi(config: Config, log: Logger = defaultLogger): Promise<void> {
  const db = createPool(config.DATABASE_URL);
  const temporal = lazyTemporal(config);
  try {
    const tokens = createTokenService({ db, temporal: temporal.get, config });
    const server = createApiServer({ tokens, db, temporal: temporal.get, config, logger: log });
    server.listen(config.API_PORT);
    await once(server, 'listening');
    log.info('api listening', { port: config.API_PORT });

    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    log.info('api stopping', { signal });
    const closed = once(server, 'close');
    server.close();
    server.closeIdleConnections();
    const cut = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
    await closed;
    clearTimeout(cut);
    log.info('api stopped');
  } finally {
    await db.end().catch(() => undefined);
    await temporal.close();
  }
}
