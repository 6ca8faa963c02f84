// The production-shaped Temporal (scripts/devtools/cluster.ts: the real server on PostgreSQL, compose's
// settings) as a bench server: a new cluster of its own databases for one scenario, dropped afterwards.
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { acceptsOurSearchAttributes, startCluster } from '../../scripts/devtools/cluster';
import type { BenchServer } from './server';

/** The cluster's Temporal databases are `<prefix>_<random>` and `..._visibility`. */
export async function startClusterBenchServer(adminUrl: string, shards: number, prefix: string): Promise<BenchServer & { databases: string[] }> {
  const database = `${prefix}_${randomBytes(4).toString('hex')}`;
  const cluster = await startCluster({ adminUrl, shards, database, uiPort: false });
  const connection = await Connection.connect({ address: cluster.address });
  const client = new Client({ connection, namespace: cluster.namespace });
  const pid = serverPid(cluster.port);
  return {
    address: cluster.address,
    databases: [cluster.databases.main, cluster.databases.visibility],
    client,
    pid,
    storage: 'wal',
    metricsUrl: '',
    storageBytes: () => null,
    output: () => cluster.output(),
    async stop() {
      await connection.close().catch(() => undefined);
      await cluster.stop();
      await cluster.dropDatabases();
    },
  };
}

/** The temporal-server process listening on this frontend port (cluster.ts sets it in the process's environment). */
function serverPid(frontendPort: number): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (!readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('temporal-server')) continue;
      if (readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(`FRONTEND_GRPC_PORT=${frontendPort}`)) return Number(entry);
    } catch {
      // gone, or not ours to read
    }
  }
  throw new Error(`no temporal-server process with FRONTEND_GRPC_PORT=${frontendPort}`);
}

/**
 * A new cluster's frontend may refuse a start that sets the search attributes the worker has just registered,
 * until its cache refreshes: starts one probe with all of them until one is accepted.
 */
export async function waitForSearchAttributes(client: Client, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await acceptsOurSearchAttributes(client))) {
    if (Date.now() > deadline) throw new Error('the cluster did not accept a start with our search attributes');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}
