// Finds a PostgreSQL for the dev stack and the tests: DATABASE_URL's server, else the one on
// 127.0.0.1:5432, else an embedded one (scripts/embeddedPostgres.ts).
// Prints one JSON line {"adminUrl", "databaseUrl"}, creating the database token_expiry when it is
// missing; with an embedded server it stays up until SIGINT/SIGTERM.
import { Client } from 'pg';
import { EMBEDDED_PASSWORD, EMBEDDED_USER, embeddedLayout, initialise, start } from './embeddedPostgres';

const LOCAL_URL = 'postgresql://postgres@127.0.0.1:5432/postgres';
const EMBEDDED_PORT = Number(process.env.EMBEDDED_POSTGRES_PORT ?? 54329);

async function answers(url: string): Promise<boolean> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function withDatabase(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/** Where databases are created: the same server, database "postgres". */
const adminUrlOf = (serverUrl: string) => withDatabase(serverUrl, 'postgres');

async function report(serverUrl: string, extra: object = {}): Promise<void> {
  const adminUrl = adminUrlOf(serverUrl);
  const databaseUrl = process.env.DATABASE_URL ?? withDatabase(serverUrl, 'token_expiry');
  const name = new URL(databaseUrl).pathname.slice(1);
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
  } finally {
    await admin.end();
  }
  console.log(JSON.stringify({ adminUrl, databaseUrl, ...extra }));
}

async function main(): Promise<void> {
  const wanted = process.env.DATABASE_URL;
  if (wanted) {
    if (!(await answers(adminUrlOf(wanted)))) throw new Error(`DATABASE_URL: no PostgreSQL answers at ${new URL(wanted).host}`);
    await report(wanted);
    return;
  }
  if (process.argv[2] !== '--embedded' && (await answers(LOCAL_URL))) {
    await report(LOCAL_URL);
    return;
  }

  const layout = embeddedLayout();
  await initialise(layout);
  const server = await start(layout, EMBEDDED_PORT);
  const serverUrl = `postgresql://${EMBEDDED_USER}:${EMBEDDED_PASSWORD}@127.0.0.1:${EMBEDDED_PORT}/postgres`;
  await report(serverUrl, { embedded: true, dataDir: layout.dataDir }).catch((err: unknown) => {
    server.kill('SIGINT');
    throw err;
  });
  const stop = () => {
    server.once('close', () => process.exit(0));
    server.kill('SIGINT');
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(`postgres: ${(err as Error).message}`);
  process.exit(1);
});
