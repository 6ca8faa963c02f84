// A Temporal dev server of the bench's own: headless, on a free port, with our search attributes, and
// with the storage under test. Its own launcher (not scripts/devtools/devServer.ts) because the bench
// passes SQLite pragmas, the setting that bounds most figures here.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { searchAttributeRegistrations } from '../../src/tokenExpiry/contract';
import { freePort, temporalCliPath } from '../../scripts/devtools/devServer';

/**
 * memory: SQLite in memory (the dev server's default). file: a SQLite file with the dev server's
 * default settings, as ./scripts/dev runs it (rollback journal, a sync per commit). wal: the same file
 * in write-ahead-log mode with synchronous=NORMAL (durable across crashes of the server process).
 */
export const SERVER_STORAGES = ['memory', 'file', 'wal'] as const;
export type ServerStorage = (typeof SERVER_STORAGES)[number];

export interface BenchServer {
  address: string;
  client: Client;
  /** The server process, for its RSS and CPU time. */
  pid: number;
  /** The dev server's SQLite mode, or the cluster's PostgreSQL. */
  storage: ServerStorage | 'postgresql';
  /** The server's Prometheus endpoint (persistence calls: see serverMetrics.ts). */
  metricsUrl: string;
  /** The cluster's PostgreSQL databases (main, visibility); none for the dev server. */
  databases?: string[];
  /** Bytes of the SQLite file with its -wal and -shm companions; null in memory (and on a cluster: see databases). */
  storageBytes(): number | null;
  output(): string;
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 60_000;

export async function startBenchServer(storage: ServerStorage, dynamicConfig: string[] = []): Promise<BenchServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'token-expiry-bench-server-'));
  const dbFilename = storage === 'memory' ? undefined : path.join(dir, 'temporal.db');
  const port = await freePort();
  const metricsPort = await freePort();
  const address = `${HOST}:${port}`;
  const args = [
    'server', 'start-dev', '--headless', '--ip', HOST, '--port', String(port), '--log-level', 'warn',
    '--metrics-port', String(metricsPort),
    ...(dbFilename ? ['--db-filename', dbFilename] : []),
    ...(storage === 'wal' ? ['--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=normal'] : []),
    ...dynamicConfig.flatMap((pair) => ['--dynamic-config-value', pair]),
    ...searchAttributeRegistrations.flatMap(({ name, type }) => ['--search-attribute', `${name}=${type}`]),
  ];
  const child = spawn(temporalCliPath(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const append = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-32_768);
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (err) => {
      append(Buffer.from(err.message));
      resolve();
    });
  }).then(() => {
    exited = true;
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);
  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exit;
      clearTimeout(timer);
    }
    process.off('exit', killOnExit);
    rmSync(dir, { recursive: true, force: true });
  };

  let connection: Connection | undefined;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  try {
    for (;;) {
      if (exited) throw new Error('temporal server start-dev exited during start-up');
      try {
        connection ??= await Connection.connect({ address, connectTimeout: 1_000 });
        const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
        if (searchAttributeRegistrations.every(({ name }) => customAttributes?.[name])) break;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new Error(`temporal server start-dev on ${address} not ready after ${READY_TIMEOUT_MS} ms`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } catch (err) {
    await connection?.close().catch(() => undefined);
    await stop();
    throw new Error(`${(err as Error).message}:\n${output}`);
  }
  const ready = connection;
  return {
    address,
    client: new Client({ connection: ready, namespace: 'default' }),
    pid: child.pid as number,
    storage,
    metricsUrl: `http://${HOST}:${metricsPort}/metrics`,
    storageBytes() {
      if (!dbFilename) return null;
      return ['', '-wal', '-shm'].reduce((sum, suffix) => {
        try {
          return sum + statSync(dbFilename + suffix).size;
        } catch {
          return sum;
        }
      }, 0);
    },
    output: () => output,
    async stop() {
      await ready.close().catch(() => undefined);
      await stop();
    },
  };
}
