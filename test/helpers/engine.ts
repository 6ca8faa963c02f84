/**
 * The Temporal a test file runs on, as a parameter: the CLI's dev server, or the production-shaped cluster of
 * docker-compose.yml (scripts/devtools/cluster.ts: the real server on PostgreSQL, 4 history shards to start
 * quickly, its two databases dropped when it stops). A suite written once runs on both (test/instances*).
 */
import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { ensureSearchAttributes } from '../../src/temporal/connection';
import { acceptsOurSearchAttributes, dropClusterDatabases, startCluster } from '../../scripts/devtools/cluster';
import { startDevServer } from '../../scripts/devtools/devServer';
import { adminDatabaseUrl } from './database';
import { eventually } from './poll';

export type Engine = 'dev' | 'cluster';

export interface EngineServer {
  readonly engine: Engine;
  /** host:port of its frontend. */
  readonly address: string;
  stop(): Promise<void>;
}

export async function startEngine(engine: Engine): Promise<EngineServer> {
  if (engine === 'dev') {
    const server = await startDevServer({ ui: false });
    return { engine, address: server.address, stop: () => server.stop() };
  }
  const database = `temporal_test_${randomBytes(6).toString('hex')}`;
  try {
    // Inside a hook's 120 s, so that a failed start says why.
    const cluster = await startCluster({ adminUrl: adminDatabaseUrl(), shards: 4, database, uiPort: false, startTimeoutMs: 90_000 });
    return {
      engine,
      address: cluster.address,
      async stop() {
        await cluster.stop();
        await dropClusterDatabases(adminDatabaseUrl(), database);
      },
    };
  } catch (err) {
    // Made by the schema step even when the server then failed to start.
    await dropClusterDatabases(adminDatabaseUrl(), database).catch(() => undefined);
    throw err;
  }
}

/**
 * Registers the project's search attributes (the dev server is started with them; the worker program adds
 * them on a cluster, an in-process worker does not) and waits until the frontend accepts a start that sets
 * them: a new cluster's frontend refuses one until its cache refreshes (a CI run saw "Failed to start
 * Workflow"), and a token made then would wait for the sweep.
 */
export async function readyForOurWorkflows(client: Client, namespace = 'default'): Promise<void> {
  await ensureSearchAttributes(client, namespace);
  await eventually('the frontend accepts a start with our search attributes', () => acceptsOurSearchAttributes(client));
}
