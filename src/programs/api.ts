// `token-expiry api`: serves the API on API_HOST:API_PORT until SIGINT or SIGTERM, then finishes in-flight requests.
import { once } from 'node:events';
import type { Logger } from '@temporalio/common';
import type { Config } from '../config';
import { withInstance } from '../db/instance';
import { createPool } from '../db/pool';
import { registryAdapter } from '../registry';
import { logger as defaultLogger } from '../log';
import { lazyClient } from '../temporal/connection';
import { createPreferenceService } from '../preferences/service';
import { createCalendarService } from '../calendar/service';
import { createWebhookService } from '../webhooks/service';
import { createTokenService } from '../tokens/service';
import { createApiServer } from '../api/server';

/** In-flight requests get this long after SIGTERM; then their connections are cut. */
const SHUTDOWN_GRACE_MS = 10_000;

export async function runApi(environment: Config, log: Logger = defaultLogger): Promise<void> {
  const db = createPool(environment.DATABASE_URL, undefined, environment.TOKEN_EXPIRY_DB_SCHEMA);
  const temporal = lazyClient(environment);
  try {
    // The workflow ids it starts, cancels and describes carry this database's instance.
    const config = await withInstance(db, environment);
    const registry = registryAdapter(config);
    const tokens = createTokenService({ db, registry, temporal: temporal.get, config });
    const preferences = createPreferenceService({ db, registry, temporal: temporal.get, config });
    const calendar = createCalendarService({ db, registry, config });
    const webhooks = createWebhookService({ db, config });
    const server = createApiServer({ tokens, preferences, calendar, webhooks, db, temporal: temporal.get, config, logger: log });
    server.listen(config.API_PORT, config.API_HOST);
    await once(server, 'listening');
    log.info('api listening', { host: config.API_HOST, port: config.API_PORT });

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
