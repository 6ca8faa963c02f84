// The Temporal engine a bench run measures: the CLI's dev server (one shard, SQLite), or the
// production-shaped cluster of docker-compose.yml (PostgreSQL, N history shards) from scripts/devtools/cluster.ts.
import { Client, Connection } from '@temporalio/client';
import { ensureSearchAttributes } from '../../src/temporal/connection';
import { startCluster, dropClusterDatabases, type Cluster } from '../../scripts/devtools/cluster';
import { freePort } from '../../scripts/devtools/devServer';
import type { BenchServer } from './server';
import { waitForSearchAttributes } from './clusterServer';

const ENGINE_KINDS = ['dev', 'cluster'] as const;

export type Engine = { kind: 'dev' } | { kind: 'cluster'; shards: number };

/** Compose's count: what a production cluster runs with. */
const PRODUCTION_SHARDS = 512;
/** Temporal accepts any positive count; beyond this the idle cluster alone would fill PostgreSQL with shard rows and timers. */
const MAX_SHARDS = 4_096;

export const ENGINE_HINT = `dev, cluster (--shards N, default ${PRODUCTION_SHARDS}), or a list such as dev,cluster:1,cluster:4,cluster:16,cluster:512`;

export class EngineError extends Error {}

/** `dev`, `cluster` or `cluster:N`; `shards` is what --shards said, for a lone `cluster`. */
export function parseEngine(text: string, shards?: string): Engine {
  const [kind = '', count, ...rest] = text.trim().split(':');
  if (!(ENGINE_KINDS as readonly string[]).includes(kind) || rest.length > 0) {
    throw new EngineError(`"${text}" is not an engine (use ${ENGINE_HINT})`);
  }
  if (kind === 'dev') {
    if (count !== undefined) throw new EngineError(`"${text}": the dev server has one history shard, always (use dev, or cluster:${count})`);
    return { kind: 'dev' };
  }
  const given = count ?? shards;
  if (given === undefined) return { kind: 'cluster', shards: PRODUCTION_SHARDS };
  if (!/^[1-9]\d*$/.test(given) || Number(given) > MAX_SHARDS) {
    throw new EngineError(`"${given}" is not a history shard count (use a whole number from 1 to ${MAX_SHARDS}, e.g. ${PRODUCTION_SHARDS} as in production)`);
  }
  return { kind: 'cluster', shards: Number(given) };
}

export function engineLabel(engine: Engine): string {
  return engine.kind === 'dev' ? 'dev' : `cluster:${engine.shards}`;
}

/** A running cluster as the scenarios see a server, plus what only a cluster has: its databases. */
export interface ClusterServer extends BenchServer {
  shards: number;
}

/**
 * One cluster for all of an engine's scenarios (each scenario has its own task queue and database
 * instance): made fresh, with its own databases, so its shard count is the one asked for (the stored count
 * of an existing cluster would win), and dropped at the end.
 */
export async function startBenchCluster(adminUrl: string, shards: number, databasePrefix: string): Promise<ClusterServer> {
  const metricsPort = await freePort();
  const database = `${databasePrefix}_cluster_${shards}_${process.pid}`;
  await dropClusterDatabases(adminUrl, database);
  let cluster: Cluster;
  try {
    cluster = await startCluster({ adminUrl, shards, database, uiPort: false, metricsPort });
  } catch (err) {
    await dropClusterDatabases(adminUrl, database).catch(() => undefined);
    throw err;
  }
  if (cluster.shards !== shards) throw new Error(`the cluster runs with ${cluster.shards} shards, not ${shards}`);
  const connection = await Connection.connect({ address: cluster.address });
  const client = new Client({ connection, namespace: cluster.namespace });
  const pid = cluster.pid;
  if (pid === undefined || cluster.metricsUrl === undefined) throw new Error('the cluster started without a process or metrics');
  await ensureSearchAttributes(client, cluster.namespace);
  // Timed figures begin once the frontend accepts starts with our search attributes.
  await waitForSearchAttributes(client);
  return {
    address: cluster.address,
    client,
    pid,
    storage: 'postgresql',
    metricsUrl: cluster.metricsUrl,
    storageBytes: () => null,
    output: () => cluster.output(),
    shards,
    databases: [cluster.databases.main, cluster.databases.visibility],
    async stop() {
      await connection.close().catch(() => undefined);
      await cluster.stop();
      await dropClusterDatabases(adminUrl, database);
    },
  };
}

