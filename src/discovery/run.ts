// Discovery in the worker process: a pass every TOKEN_DISCOVERY_INTERVAL, and the trigger's notifications as
// they come. Every worker runs it; the mark's row lock lets one pass run at a time, and starts are idempotent.
import type { Client } from '@temporalio/client';
import { Runtime } from '@temporalio/worker';
import type { Pool } from 'pg';
import type { Config } from '../config';
import type { RegistryAdapter } from '../registry/adapter';
import type { TokenBatchDeps, TokenBatchLog, TokenBatchSettings } from '../tokenExpiry/batch';
import { applyTokenChanges } from './changes';
import { listenForTokenChanges } from './listener';
import { discoverNewTokens } from './pass';

export interface DiscoveryDeps {
  db: Pool;
  registry: RegistryAdapter;
  client: Client;
  config: TokenBatchSettings & Pick<Config, 'TOKEN_DISCOVERY_INTERVAL' | 'DATABASE_URL'>;
  log: TokenBatchLog;
}

export interface TokenDiscovery {
  /** Runs a pass now (unless one is running) and resolves when it is over. */
  passNow(): Promise<void>;
  stop(): Promise<void>;
}

export function runTokenDiscovery({ db, registry, client, config, log }: DiscoveryDeps): TokenDiscovery {
  const droppedCounter = Runtime.instance().metricMeter.createCounter(
    'token_expiry_change_notifications_dropped',
    'ids',
    'Token change notifications dropped at the listener\'s cap (discovery and the sweep find those tokens)',
  );
  const deps = (): TokenBatchDeps => ({ db, registry, client, config, now: () => new Date(), log });
  let running: Promise<void> | null = null;

  const passNow = (): Promise<void> => {
    running ??= discoverNewTokens(deps())
      .then((pass) => {
        if (pass && (pass.started > 0 || pass.failed > 0)) log.info('discovery pass', { ...pass });
      })
      .catch((err: unknown) => log.warn('discovery pass failed: the next one tries again', { error: String(err) }))
      .finally(() => {
        running = null;
      });
    return running;
  };

  const timer = config.TOKEN_DISCOVERY_INTERVAL > 0 ? setInterval(() => void passNow(), config.TOKEN_DISCOVERY_INTERVAL) : undefined;
  const listener = listenForTokenChanges({
    connectionString: config.DATABASE_URL,
    onTokens: async (ids) => {
      const applied = await applyTokenChanges(deps(), ids);
      log.info('token changes applied', { tokens: ids.length, ...applied });
    },
    // Also the first pass at start-up; with discovery off, the sweep alone finds what was missed.
    onConnected: () => {
      if (timer) void passNow();
    },
    log,
    onDropped: (count) => droppedCounter.add(count),
  });

  return {
    passNow,
    async stop() {
      clearInterval(timer);
      await listener.close();
      await running;
    },
  };
}
