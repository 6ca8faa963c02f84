/**
 * A real Temporal dev server (`temporal server start-dev`, Web UI included) for tests that need the
 * UI, real time, or a server they can stop and start: free ports, our search attributes registered,
 * ready only once the frontend, the attributes and the UI all answer.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { searchAttributeRegistrations } from '../../src/tokenExpiry/contract';

export interface DevServerOptions {
  /** SQLite file that keeps workflows across stop/start; in memory (lost on stop) when omitted. */
  dbFilename?: string;
  /** Frontend gRPC port; a free one when omitted. Kept across restarts. */
  port?: number;
  /** Serve the Web UI (default true). */
  ui?: boolean;
  /** Web UI port; a free one when omitted. Kept across restarts. */
  uiPort?: number;
  /** Namespaces to create besides "default", which always exists. */
  namespaces?: string[];
  /** Search attributes to register; defaults to the contract's. */
  searchAttributes?: { name: string; type: string }[];
  /** How long one start may take before it fails with the server's output (default 60 s). */
  startTimeoutMs?: number;
}

export interface DevServer {
  /** host:port of the frontend, for `Connection.connect({ address })`. */
  readonly address: string;
  readonly port: number;
  /** http://127.0.0.1:<port> of the Web UI, or undefined when started without it. */
  readonly uiUrl: string | undefined;
  readonly dbFilename: string | undefined;
  readonly running: boolean;
  /** Starts it again on the same ports and database file; resolves once it is ready. */
  start(): Promise<void>;
  /** Stops it (SIGTERM, or SIGKILL to simulate a crash; SIGKILL anyway after 10 s). Safe to call twice. */
  stop(opts?: { signal?: 'SIGTERM' | 'SIGKILL' }): Promise<void>;
  /** stop() then start(): with a dbFilename the workflows survive, in memory they are gone. */
  restart(): Promise<void>;
  /** The server's recent output, for failure messages. */
  output(): string;
}

export function temporalCliPath(): string {
  return process.env.TEMPORAL_CLI_PATH ?? path.resolve(__dirname, '../../.tools/python/bin/temporal');
}

/** Starts a dev server and waits until it is ready. Stop it in afterAll. */
export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  const ui = opts.ui ?? true;
  const port = opts.port ?? (await freePort());
  const uiPort = ui ? (opts.uiPort ?? (await freePort())) : undefined;
  const server = new TemporalDevServer({ ...opts, port, uiPort });
  await server.start();
  return server;
}

const HOST = '127.0.0.1';
const OUTPUT_LIMIT = 64 * 1024;

class TemporalDevServer implements DevServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private log = '';
  private readonly killOnExit = () => this.child?.kill('SIGKILL');

  constructor(private readonly opts: DevServerOptions & { port: number; uiPort: number | undefined }) {}

  get port() {
    return this.opts.port;
  }
  get address() {
    return `${HOST}:${this.opts.port}`;
  }
  get uiUrl() {
    return this.opts.uiPort === undefined ? undefined : `http://${HOST}:${this.opts.uiPort}`;
  }
  get dbFilename() {
    return this.opts.dbFilename;
  }
  get running() {
    return this.child !== undefined;
  }

  output(): string {
    return this.log;
  }

  async start(): Promise<void> {
    if (this.child) throw new Error(`the dev server on ${this.address} is already running`);
    const child = spawn(temporalCliPath(), this.args(), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const append = (chunk: Buffer) => {
      this.log = (this.log + chunk.toString()).slice(-OUTPUT_LIMIT);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    // Spawn errors (a wrong TEMPORAL_CLI_PATH) arrive as 'error' and may come without an 'exit'.
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', (err) => {
        append(Buffer.from(`\n${err.message}\n`));
        resolve();
      });
    }).then(() => {
      if (this.child === child) this.child = undefined;
      process.off('exit', this.killOnExit);
    });
    // A jest run that dies without afterAll must not leave a server behind.
    process.on('exit', this.killOnExit);
    try {
      await this.waitUntilReady(child);
    } catch (err) {
      await this.stop({ signal: 'SIGKILL' });
      throw err;
    }
  }

  async stop({ signal = 'SIGTERM' }: { signal?: 'SIGTERM' | 'SIGKILL' } = {}): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  private args(): string[] {
    const { dbFilename, port, uiPort, namespaces = [] } = this.opts;
    const attributes = this.opts.searchAttributes ?? searchAttributeRegistrations;
    return [
      'server',
      'start-dev',
      '--ip',
      HOST,
      '--port',
      String(port),
      ...(uiPort === undefined ? ['--headless'] : ['--ui-port', String(uiPort), '--ui-disable-news-fetch']),
      ...(dbFilename ? ['--db-filename', dbFilename] : []),
      ...namespaces.flatMap((namespace) => ['--namespace', namespace]),
      ...attributes.flatMap(({ name, type }) => ['--search-attribute', `${name}=${type}`]),
      '--log-level',
      'warn',
    ];
  }

  /** Ready = the frontend answers, every search attribute is registered, and the UI serves its page. */
  private async waitUntilReady(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + (this.opts.startTimeoutMs ?? 60_000);
    const expected = (this.opts.searchAttributes ?? searchAttributeRegistrations).map((a) => a.name);
    let lastError: unknown;
    while (Date.now() < deadline) {
      if (this.child !== child) {
        throw new Error(`temporal server start-dev exited during start-up:\n${this.log}`);
      }
      try {
        await this.checkReady(expected);
        return;
      } catch (err) {
        lastError = err;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    throw new Error(
      `temporal server start-dev on ${this.address} not ready after ${this.opts.startTimeoutMs ?? 60_000} ms ` +
        `(${String(lastError)}):\n${this.log}`,
    );
  }

  private async checkReady(expectedAttributes: string[]): Promise<void> {
    const connection = await Connection.connect({ address: this.address, connectTimeout: 1_000 });
    try {
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
      const missing = expectedAttributes.filter((name) => !customAttributes?.[name]);
      if (missing.length > 0) throw new Error(`search attributes not registered yet: ${missing.join(', ')}`);
    } finally {
      await connection.close();
    }
    if (this.uiUrl) {
      const response = await fetch(this.uiUrl, { signal: AbortSignal.timeout(1_000) });
      if (!response.ok) throw new Error(`Web UI answered ${response.status}`);
    }
  }
}

/** A port nobody listens on right now; the server binds it a moment later. */
export async function freePort(): Promise<number> {
  const probe = net.createServer();
  probe.listen(0, HOST);
  await once(probe, 'listening');
  const { port } = probe.address() as net.AddressInfo;
  probe.close();
  await once(probe, 'close');
  return port;
}
