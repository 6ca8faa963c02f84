// scripts/dev's own safety: the service token it keeps on disk is readable by its user only, and the API it
// starts listens on loopback, never on every interface.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { networkInterfaces } from 'node:os';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config';
import { createTestDatabase } from './helpers/database';

const root = path.resolve(__dirname, '..');
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'dev-token-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** ensure_api_token from scripts/lib.sh, as scripts/dev calls it, under a permissive umask. */
function ensureApiToken(file: string): void {
  execFileSync('bash', ['-c', `umask 022; source scripts/lib.sh; ensure_api_token "$1"`, 'bash', file], { cwd: root });
}

test('the dev service token file is made mode 0600, and one left world-readable is made 0600 too', () => {
  const fresh = path.join(dir, 'api-token');
  ensureApiToken(fresh);
  expect(statSync(fresh).mode & 0o777).toBe(0o600);
  const token = readFileSync(fresh, 'utf8');
  expect(token).toMatch(/^[0-9a-f]{48}\n$/);
  ensureApiToken(fresh);
  expect(readFileSync(fresh, 'utf8')).toBe(token);

  const old = path.join(dir, 'old-token');
  writeFileSync(old, 'an-older-dev-stacks-token\n');
  chmodSync(old, 0o644);
  ensureApiToken(old);
  expect(statSync(old).mode & 0o777).toBe(0o600);
  expect(readFileSync(old, 'utf8')).toBe('an-older-dev-stacks-token\n');
});

test('the API listens on 127.0.0.1 by default, and scripts/dev starts it there whatever the environment says', () => {
  expect(loadConfig({}).API_HOST).toBe('127.0.0.1');
  const dev = readFileSync(path.join(root, 'scripts/dev'), 'utf8');
  const apiLaunch = dev.split('\n').filter((line) => /cli\.js api\b/.test(line));
  expect(apiLaunch).toEqual([expect.stringMatching(/^API_HOST=127\.0\.0\.1 node dist\/src\/programs\/cli\.js api &$/)]);
  expect(dev).toMatch(/^\s*ensure_api_token \.data\/api-token$/m);
});

/** Whether something accepts a TCP connection on host:port. */
async function accepts(host: string, port: number): Promise<boolean> {
  const socket = net.connect({ host, port });
  try {
    await once(socket, 'connect');
    return true;
  } catch {
    return false;
  } finally {
    socket.destroy();
  }
}

test('`token-expiry api` with no API_HOST answers on 127.0.0.1 and not on this machine\'s other addresses', async () => {
  const others = Object.values(networkInterfaces()).flat().filter((a) => a && !a.internal && a.family === 'IPv4').map((a) => a!.address);
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  // A migrated database, as scripts/dev's: the API reads its instance id from it at start.
  const database = await createTestDatabase();
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: database.url, API_PORT: String(port), API_AUTH_TOKEN: 'a-dev-service-token-1234' };
  delete env.API_HOST;
  const api = spawn('node', [path.join(root, 'dist/src/programs/cli.js'), 'api'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(api, 'exit');
  try {
    let output = '';
    await new Promise<void>((resolve, reject) => {
      api.stderr.on('data', (data: Buffer) => {
        output += data.toString();
        if (output.includes('api listening')) resolve();
      });
      api.on('exit', () => reject(new Error(`api exited: ${output}`)));
      setTimeout(() => reject(new Error(`api not listening after 20 s: ${output}`)), 20_000).unref();
    });
    expect(JSON.parse(output.split('\n').find((l) => l.includes('api listening'))!)).toMatchObject({ host: '127.0.0.1', port });
    expect(await accepts('127.0.0.1', port)).toBe(true);
    for (const address of others) expect({ address, accepts: await accepts(address, port) }).toEqual({ address, accepts: false });
  } finally {
    api.kill('SIGTERM');
    await exited;
    await database.drop();
  }
}, 30_000);
