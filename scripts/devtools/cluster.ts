/**
 * The production-shaped Temporal of docker-compose.yml, on this machine: the same steps with the same
 * settings, from the binaries scripts/install-temporal builds. The compose file is read, not copied: the
 * schema one-shot (deploy/temporal/setup-schema.sh with the temporal-schema service's environment), the
 * server with all its services in one process (the binary's embedded config template, rendered from the
 * temporal service's environment, as the image does), the namespace one-shot
 * (deploy/temporal/create-namespace.sh) and the UI server. With `services: 'apart'` the server runs as five
 * processes instead (frontend, matching, worker and two history hosts, each `temporal-server start --service X`
 * on its own loopback address), which find each other through ringpop over the shared database, so that a
 * fault test can kill and restart one. Only what this machine must differ in is
 * changed: PostgreSQL's address and credentials, the bind address and ports, the database names, the
 * history shard count, and where the dynamic config file is.
 *
 * `node dist/scripts/devtools/cluster.js --help` runs it from the command line (scripts/cluster does).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { Connection, type Client } from '@temporalio/client';
import { Client as PgClient } from 'pg';
import { parse } from 'yaml';
import { freePort } from './devServer';
import { searchAttributes } from '../../src/tokenExpiry/contract';

/** The repo: two folders up from the source, three from its build in dist/. */
const ROOT = (() => {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'docker-compose.yml'))) {
    if (path.dirname(dir) === dir) throw new Error(`no docker-compose.yml above ${__dirname}`);
    dir = path.dirname(dir);
  }
  return dir;
})();
/** Where scripts/install-temporal puts the server, its SQL tool, the UI server and the schemas. */
export const CLUSTER_TOOLS = path.join(ROOT, '.tools/temporal-server');
const HOST = '127.0.0.1';
const OUTPUT_LIMIT = 256 * 1024;
const DEFAULT_START_TIMEOUT_MS = 180_000;
/**
 * Temporal's services in one `temporal-server start` (frontend, history, matching, worker): each opens its
 * own main and visibility pool (measured: with SQL_MAX_CONNS and SQL_VIS_MAX_CONNS at 1 it held 4 + 4).
 */
export const SERVICES_IN_ONE_PROCESS = 4;

/**
 * The processes of a cluster run apart: one service each, each on an address of its own (the whole of
 * 127.0.0.0/8 is the loopback on Linux), so that every process keeps Temporal's one set of ports (the
 * template's *_PORT variables) and two history hosts can run side by side. Ringpop finds the members through
 * the cluster_membership table of the shared database; history shards are spread over the history hosts and
 * move to the survivor when one dies.
 */
export const SERVICE_PROCESSES = [
  { name: 'frontend', service: 'frontend', host: '127.0.0.2' },
  { name: 'matching', service: 'matching', host: '127.0.0.3' },
  { name: 'worker', service: 'worker', host: '127.0.0.4' },
  { name: 'history-1', service: 'history', host: '127.0.0.5' },
  { name: 'history-2', service: 'history', host: '127.0.0.6' },
] as const;
export type ServiceProcessName = (typeof SERVICE_PROCESSES)[number]['name'];
export type ServiceLayout = 'one' | 'apart';
/** The app's processes beside it: the worker's pool (10), the API's (10), a CLI run's or migrate's (2). */
export const APP_CONNECTIONS = 22;

export interface ClusterOptions {
  /** PostgreSQL to keep Temporal's two databases on: user, password, host and port are used. */
  adminUrl: string;
  /** NUM_HISTORY_SHARDS for a new cluster (compose's when omitted). A cluster made before keeps its own. */
  shards?: number;
  /** The main database; the visibility one is named after it. Compose's names when omitted. */
  database?: string;
  /** The frontend's gRPC port; the other services' ports follow it as Temporal's defaults follow 7233. Free ones when omitted. */
  port?: number;
  /** The Web UI's port; a free one when omitted, none when false. */
  uiPort?: number | false;
  /** How long the start may take before it fails with the output so far (default 180 s). */
  startTimeoutMs?: number;
  /** Every line of output is appended here too (the in-memory copy keeps only the latest). */
  logFile?: string;
  /** All services in one process (compose's way, the default), or each in its own (SERVICE_PROCESSES). */
  services?: ServiceLayout;
  /**
   * Serve the server's own Prometheus metrics on this port (the template's PROMETHEUS_ENDPOINT; compose sets
   * none). The bench reads persistence latency, shard lock waits and task queue backlog from it.
   */
  metricsPort?: number;
}

export interface Cluster {
  /** host:port of the frontend, for `Connection.connect({ address })`. */
  readonly address: string;
  readonly port: number;
  /** http://127.0.0.1:<port> of the Web UI, or undefined without it. */
  readonly uiUrl: string | undefined;
  readonly databases: { main: string; visibility: string };
  /** The history shard count the cluster runs with: the one stored when its database was made. */
  readonly shards: number;
  readonly namespace: string;
  readonly running: boolean;
  /** The server process's id while it runs (for its CPU time in /proc). */
  readonly pid: number | undefined;
  /** http://127.0.0.1:<port>/metrics of the server's Prometheus endpoint, when started with metricsPort. */
  readonly metricsUrl: string | undefined;
  /** Starts the server (and UI) again on the same ports and databases; resolves once it answers. */
  start(): Promise<void>;
  /** Stops the UI and the server (SIGTERM, or SIGKILL to simulate a crash; SIGKILL anyway after 15 s). */
  stop(opts?: { signal?: 'SIGTERM' | 'SIGKILL' }): Promise<void>;
  restart(): Promise<void>;
  /** Drops both databases (stop first). */
  dropDatabases(): Promise<void>;
  /** The schema step's, the server's, the namespace step's and the UI's recent output. */
  output(): string;
  /** Resolves when a server process exits (a crash, or stop()). */
  serverExit(): Promise<void>;
  /** The server's processes: 'server' for all services in one, else SERVICE_PROCESSES' names. */
  readonly processes: string[];
  /** Stops one process of the server (SIGKILL: a crash); the others keep running. */
  stopProcess(name: string, opts?: { signal?: 'SIGTERM' | 'SIGKILL' }): Promise<void>;
  /** Starts one stopped process again on its address and ports; resolves once its gRPC port accepts (the frontend: once it answers). */
  startProcess(name: string): Promise<void>;
  /** Whether one process of the server runs. */
  isRunning(name: string): boolean;
  /** The process id of one process of the server, while it runs. */
  pidOf(name: string): number | undefined;
}

// --- docker-compose.yml, read ---------------------------------------------------------------------------

interface ComposeService {
  environment?: Record<string, unknown>;
  volumes?: string[];
  image?: string;
}

function composeServices(): Record<string, ComposeService> {
  const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, ComposeService>;
  };
  return compose.services;
}

/** A service's environment as plain strings; these services use no ${...} substitution. */
function environmentOf(services: Record<string, ComposeService>, name: string): Record<string, string> {
  const raw = services[name]?.environment;
  if (!raw) throw new Error(`docker-compose.yml: no environment for service ${name}`);
  return Object.fromEntries(
    Object.entries(raw).map(([key, value]) => {
      if (String(value).includes('${')) throw new Error(`docker-compose.yml: ${name}.${key} uses a substitution cluster.ts cannot make`);
      return [key, String(value)];
    }),
  );
}

/** The repo file behind a container path (short volume syntax ./host:/container[:ro]). */
function hostPathOf(service: ComposeService, containerPath: string): string {
  for (const volume of service.volumes ?? []) {
    const [host = '', target = ''] = volume.split(':');
    if (host.startsWith('./') && containerPath.startsWith(`${target}/`)) {
      return path.join(ROOT, host, containerPath.slice(target.length + 1));
    }
  }
  throw new Error(`docker-compose.yml: ${containerPath} is not mounted from the repo`);
}

/** Compose's value with ours put in its place; a key compose does not set is a mistake here, not a new setting. */
function override(env: Record<string, string>, service: string, values: Record<string, string>): Record<string, string> {
  for (const key of Object.keys(values)) {
    if (!(key in env)) throw new Error(`docker-compose.yml: service ${service} sets no ${key}, so the cluster would not run as compose does`);
  }
  return { ...env, ...values };
}

/** The visibility database of a cluster whose main database is `main` (compose: temporal, temporal_visibility). */
const visibilityDatabaseOf = (main: string) => `${main}_visibility`;

/** Ports of the services, after Temporal's defaults around 7233 (history 7234, matching 7235, worker 7239, membership 69xx). */
export function servicePorts(frontend: number): Record<string, string> {
  const ports = {
    FRONTEND_GRPC_PORT: frontend,
    FRONTEND_HTTP_PORT: frontend + 10,
    FRONTEND_MEMBERSHIP_PORT: frontend - 300,
    HISTORY_GRPC_PORT: frontend + 1,
    HISTORY_MEMBERSHIP_PORT: frontend - 299,
    MATCHING_GRPC_PORT: frontend + 2,
    MATCHING_MEMBERSHIP_PORT: frontend - 298,
    WORKER_GRPC_PORT: frontend + 6,
    WORKER_MEMBERSHIP_PORT: frontend - 294,
  };
  return Object.fromEntries(Object.entries(ports).map(([key, port]) => [key, String(port)]));
}

export interface ClusterPlan {
  schemaEnv: Record<string, string>;
  serverEnv: Record<string, string>;
  /** What each server process runs: its name, `start` arguments and environment. */
  processes: { name: string; host: string; args: string[]; env: Record<string, string> }[];
  /** The frontend's host:port, for clients. */
  address: string;
  namespaceEnv: Record<string, string>;
  uiEnv: Record<string, string> | undefined;
  databases: { main: string; visibility: string };
  namespace: string;
}

/** What each step runs with: compose's environment, with this machine's differences. */
export function planCluster(opts: {
  adminUrl: string;
  shards?: number;
  database?: string;
  port: number;
  uiPort: number | false;
  services?: ServiceLayout;
  metricsPort?: number;
}): ClusterPlan {
  const services = composeServices();
  const postgres = new URL(opts.adminUrl);
  const pg = {
    host: postgres.hostname,
    port: postgres.port || '5432',
    user: decodeURIComponent(postgres.username),
    password: decodeURIComponent(postgres.password),
  };
  const server = environmentOf(services, 'temporal');
  const main = opts.database ?? server.DBNAME ?? 'temporal';
  const databases = { main, visibility: visibilityDatabaseOf(main) };
  if (!opts.database && databases.visibility !== server.VISIBILITY_DBNAME) {
    throw new Error(`docker-compose.yml: VISIBILITY_DBNAME is not DBNAME_visibility, as scripts/devtools/cluster.ts names it`);
  }
  const frontendHost = opts.services === 'apart' ? SERVICE_PROCESSES[0].host : HOST;
  const address = `${frontendHost}:${opts.port}`;

  const schemaEnv = override(environmentOf(services, 'temporal-schema'), 'temporal-schema', {
    SQL_HOST: pg.host,
    SQL_PORT: pg.port,
    SQL_USER: pg.user,
    SQL_PASSWORD: pg.password,
    DBNAME: databases.main,
    VISIBILITY_DBNAME: databases.visibility,
  });
  const serverEnv: Record<string, string> = {
    ...override(server, 'temporal', {
      POSTGRES_SEEDS: pg.host,
      DB_PORT: pg.port,
      POSTGRES_USER: pg.user,
      POSTGRES_PWD: pg.password,
      DBNAME: databases.main,
      VISIBILITY_DBNAME: databases.visibility,
      ...(opts.shards === undefined ? {} : { NUM_HISTORY_SHARDS: String(opts.shards) }),
      // Compose listens on every interface of its container; here, the loopback only.
      BIND_ON_IP: HOST,
      DYNAMIC_CONFIG_FILE_PATH: hostPathOf(services.temporal!, server.DYNAMIC_CONFIG_FILE_PATH ?? ''),
    }),
    ...servicePorts(opts.port),
    ...(opts.metricsPort === undefined ? {} : { PROMETHEUS_ENDPOINT: `${HOST}:${opts.metricsPort}` }),
  };
  const processes =
    opts.services === 'apart'
      ? SERVICE_PROCESSES.map(({ name, service, host }) => ({
          name,
          host,
          args: ['start', '--service', service],
          env: {
            ...serverEnv,
            BIND_ON_IP: host,
            // The cluster's own record (clusterMetadata) names the frontend, whichever process writes it first.
            CLUSTER_RPC_ADDRESS: address,
            CLUSTER_HTTP_ADDRESS: `${frontendHost}:${serverEnv.FRONTEND_HTTP_PORT}`,
          },
        }))
      : [{ name: 'server', host: HOST, args: ['start'], env: serverEnv }];
  const namespaceCompose = environmentOf(services, 'temporal-namespace');
  const namespaceEnv = override(namespaceCompose, 'temporal-namespace', { TEMPORAL_ADDRESS: address });
  const uiEnv =
    opts.uiPort === false
      ? undefined
      : {
          ...override(environmentOf(services, 'temporal-ui'), 'temporal-ui', { TEMPORAL_ADDRESS: address }),
          // The image listens on 8080 and compose maps it; here the UI server listens where it is reached.
          TEMPORAL_UI_PORT: String(opts.uiPort),
          TEMPORAL_DISABLE_NEWS_FETCH: 'true',
        };
  return { schemaEnv, serverEnv, processes, address, namespaceEnv, uiEnv, databases, namespace: namespaceCompose.TEMPORAL_NAMESPACE ?? 'default' };
}

// --- PostgreSQL connections ------------------------------------------------------------------------------

export interface ConnectionBudget {
  maxConnections: number;
  superuserReserved: number;
  /** Client connections open on the server before the cluster started (other users of it included). */
  inUse: number;
  /** The most the cluster may open: each service its own main pool and visibility pool. */
  temporal: number;
  /** How many services open pools: four in one process, five apart (two history hosts). */
  services: number;
}

/** Temporal's worst case against what the server allows now. */
export async function connectionBudget(adminUrl: string, serverEnv: Record<string, string>, layout: ServiceLayout = 'one'): Promise<ConnectionBudget> {
  const services = layout === 'apart' ? SERVICE_PROCESSES.length : SERVICES_IN_ONE_PROCESS;
  const pools = Number(serverEnv.SQL_MAX_CONNS ?? 20) + Number(serverEnv.SQL_VIS_MAX_CONNS ?? 10);
  const client = new PgClient({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    const setting = async (name: string) => Number((await client.query<{ setting: string }>('SELECT setting FROM pg_settings WHERE name = $1', [name])).rows[0]?.setting);
    const { rows } = await client.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type = 'client backend'");
    return {
      maxConnections: await setting('max_connections'),
      superuserReserved: await setting('superuser_reserved_connections'),
      inUse: Number(rows[0]?.n ?? 0),
      temporal: services * pools,
      services,
    };
  } finally {
    await client.end();
  }
}

// --- the processes ---------------------------------------------------------------------------------------

const tool = (name: string) => path.join(CLUSTER_TOOLS, 'bin', name);

/** Only what the step needs: a developer's TEMPORAL_ADDRESS or LOG_LEVEL must not reach the server's template. */
function stepEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  // The Temporal CLI for create-namespace.sh (devServer.ts's default path holds from the source, not from dist/).
  const cli = process.env.TEMPORAL_CLI_PATH ?? path.join(ROOT, '.tools/python/bin/temporal');
  const bin = [path.join(CLUSTER_TOOLS, 'bin'), path.dirname(cli), process.env.PATH ?? '/usr/bin:/bin'].join(':');
  return { PATH: bin, ...(process.env.HOME ? { HOME: process.env.HOME } : {}), ...vars };
}

class TemporalCluster implements Cluster {
  /** The server's processes now running, by name. */
  private readonly servers = new Map<string, ChildProcess>();
  private readonly serverExits = new Map<string, Promise<void>>();
  private ui: ChildProcess | undefined;
  private uiExit: Promise<void> = Promise.resolve();
  private anyServerExit: Promise<void> = Promise.resolve();
  private log = '';
  shards = 0;
  private readonly killOnExit = () => {
    for (const child of this.servers.values()) child.kill('SIGKILL');
    this.ui?.kill('SIGKILL');
  };

  constructor(
    private readonly plan: ClusterPlan,
    private readonly opts: ClusterOptions & { port: number; uiPort: number | false },
  ) {}

  get port() {
    return this.opts.port;
  }
  get address() {
    return this.plan.address;
  }
  get uiUrl() {
    return this.opts.uiPort === false ? undefined : `http://${HOST}:${this.opts.uiPort}`;
  }
  get databases() {
    return this.plan.databases;
  }
  get namespace() {
    return this.plan.namespace;
  }
  get running() {
    return this.servers.size > 0;
  }
  get processes() {
    return this.plan.processes.map((p) => p.name);
  }

  isRunning(name: string): boolean {
    return this.servers.has(name);
  }

  pidOf(name: string): number | undefined {
    return this.servers.get(name)?.pid;
  }
  /** The single server process's pid (all services in one process). */
  get pid() {
    return this.pidOf('server');
  }
  get metricsUrl() {
    return this.opts.metricsPort === undefined ? undefined : `http://${HOST}:${this.opts.metricsPort}/metrics`;
  }

  output(): string {
    return this.log;
  }

  serverExit(): Promise<void> {
    return this.anyServerExit;
  }

  private append(label: string, chunk: Buffer | string): void {
    const text = chunk.toString().replace(/^(?=.)/gm, `[${label}] `);
    this.log = (this.log + text).slice(-OUTPUT_LIMIT);
    if (this.opts.logFile) appendFileSync(this.opts.logFile, text);
  }

  /**
   * The compose one-shots: a shell script with the service's environment; fails with its output. Given the
   * server's processes, it is stopped when one of them exits first (create-namespace.sh would wait two minutes).
   */
  private async oneShot(label: string, script: string, env: Record<string, string>, servers: ChildProcess[] = []): Promise<void> {
    const child = spawn('sh', [path.join(ROOT, 'deploy/temporal', script)], { env: stepEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (chunk: Buffer) => this.append(label, chunk));
    child.stderr.on('data', (chunk: Buffer) => this.append(label, chunk));
    const closed = once(child, 'close') as Promise<[number | null]>;
    const serverGone = () => child.kill('SIGKILL');
    for (const server of servers) server.once('exit', serverGone);
    const timer = setTimeout(serverGone, this.opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
    const [code] = await closed;
    clearTimeout(timer);
    for (const server of servers) server.off('exit', serverGone);
    const gone = servers.find((server) => server.exitCode !== null || server.signalCode !== null);
    if (gone) throw new Error(`temporal-server exited during start-up (${script} stopped):\n${this.log}`);
    if (code !== 0) throw new Error(`${script} exited with ${code ?? 'a kill after the start timeout'}:\n${this.log}`);
  }

  private spawnTracked(label: string, command: string, args: string[], env: Record<string, string>): { child: ChildProcess; exit: Promise<void> } {
    const child = spawn(command, args, { env: stepEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (chunk: Buffer) => this.append(label, chunk));
    child.stderr?.on('data', (chunk: Buffer) => this.append(label, chunk));
    const exit = new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', (err) => {
        this.append(label, `${err.message}\n`);
        resolve();
      });
    });
    return { child, exit };
  }

  private processPlan(name: string) {
    const plan = this.plan.processes.find((p) => p.name === name);
    if (!plan) throw new Error(`the cluster has no process ${name} (it has ${this.processes.join(', ')})`);
    return plan;
  }

  /** Spawns one server process; it leaves the running set when it exits. */
  private spawnServer(name: string): ChildProcess {
    const plan = this.processPlan(name);
    const { child, exit } = this.spawnTracked(name, tool('temporal-server'), plan.args, plan.env);
    this.servers.set(name, child);
    const tracked = exit.then(() => {
      if (this.servers.get(name) === child) this.servers.delete(name);
    });
    this.serverExits.set(name, tracked);
    this.anyServerExit = Promise.race([...this.serverExits.values()]);
    return child;
  }

  /** The schema step, the server, the namespace step, then the UI: compose's order. */
  async create(): Promise<void> {
    await this.oneShot('schema', 'setup-schema.sh', { ...this.plan.schemaEnv, TEMPORAL_SCHEMA_DIR: path.join(CLUSTER_TOOLS, 'schema/postgresql/v12') });
    await this.start();
  }

  async start(): Promise<void> {
    if (this.running) throw new Error(`the cluster on ${this.address} is already running`);
    // Another server on these ports would answer the readiness probes in this one's place.
    for (const { host } of this.plan.processes) {
      for (const [name, port] of Object.entries(servicePorts(this.opts.port))) {
        if (!(await portIsFree(Number(port), host))) throw new Error(`${name} ${host}:${port} is in use (another Temporal?): choose another --port`);
      }
    }
    process.on('exit', this.killOnExit);
    this.serverExits.clear();
    try {
      const [first, ...rest] = this.processes;
      const children = [this.spawnServer(first!)];
      if (rest.length > 0) {
        // On a new database the first process writes the cluster's metadata; five at once race for that row and
        // the losers exit ("SaveClusterMetadata ... duplicate key"), so the others start once the first listens.
        await this.waitFor(`${first} listens`, () => this.listens(first!), [first!]);
        children.push(...rest.map((name) => this.spawnServer(name)));
      }
      await this.oneShot('namespace', 'create-namespace.sh', this.plan.namespaceEnv, children);
      await this.waitFor('the frontend answers', () => this.frontendAnswers());
      if (this.plan.uiEnv) {
        const root = path.join(CLUSTER_TOOLS, 'ui');
        const { child, exit } = this.spawnTracked('ui', tool('temporal-ui-server'), ['--root', root, '--env', 'docker', 'start'], this.plan.uiEnv);
        this.ui = child;
        this.uiExit = exit.then(() => {
          if (this.ui === child) this.ui = undefined;
        });
        await this.waitFor('the Web UI serves its page', async () => {
          const response = await fetch(this.uiUrl!, { signal: AbortSignal.timeout(1_000) });
          if (!response.ok) throw new Error(`Web UI answered ${response.status}`);
        });
      }
    } catch (err) {
      await this.stop({ signal: 'SIGKILL' });
      throw err;
    }
  }

  private async frontendAnswers(): Promise<void> {
    const connection = await Connection.connect({ address: this.address, connectTimeout: 1_000 });
    try {
      const info = await connection.workflowService.getClusterInfo({});
      this.shards = info.historyShardCount ?? 0;
      await connection.workflowService.describeNamespace({ namespace: this.plan.namespace });
      // describeNamespace reads the database; other calls go through the frontend's namespace cache, which
      // learns of a new namespace only at its next refresh (a worker started before then exits NOT_FOUND).
      await connection.operatorService.listSearchAttributes({ namespace: this.plan.namespace });
    } finally {
      await connection.close();
    }
  }

  private async waitFor(what: string, probe: () => Promise<void>, needs: string[] = this.processes): Promise<void> {
    const timeoutMs = this.opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      const gone = needs.find((name) => !this.servers.has(name));
      if (gone) throw new Error(`temporal-server (${gone}) exited during start-up:\n${this.log}`);
      try {
        await probe();
        return;
      } catch (err) {
        last = err;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
    throw new Error(`cluster on ${this.address}: ${what}: not within ${timeoutMs} ms (${String(last)}):\n${this.log}`);
  }

  async stopProcess(name: string, { signal = 'SIGTERM' }: { signal?: 'SIGTERM' | 'SIGKILL' } = {}): Promise<void> {
    this.processPlan(name);
    const child = this.servers.get(name);
    if (!child) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await this.serverExits.get(name);
    clearTimeout(timer);
  }

  async startProcess(name: string): Promise<void> {
    const plan = this.processPlan(name);
    if (this.servers.has(name)) throw new Error(`${name} of the cluster on ${this.address} is already running`);
    process.on('exit', this.killOnExit);
    this.spawnServer(name);
    if (plan.args.includes('frontend') || name === 'server') {
      await this.waitFor('the frontend answers', () => this.frontendAnswers(), [name]);
      return;
    }
    await this.waitFor(`${name} listens`, () => this.listens(name), [name]);
  }

  /** Resolves once a process of the server accepts on its gRPC port. */
  private listens(name: string): Promise<void> {
    const plan = this.processPlan(name);
    const service = name === 'server' ? 'FRONTEND' : plan.args[plan.args.length - 1]!.toUpperCase();
    return tcpAccepts(plan.host, Number(plan.env[`${service}_GRPC_PORT`]));
  }

  async stop({ signal = 'SIGTERM' }: { signal?: 'SIGTERM' | 'SIGKILL' } = {}): Promise<void> {
    const children = [this.ui, ...this.servers.values()].filter((child): child is ChildProcess => child !== undefined);
    for (const child of children) child.kill(signal);
    const timer = setTimeout(() => children.forEach((child) => child.kill('SIGKILL')), 15_000);
    await Promise.all([this.uiExit, ...this.serverExits.values()]);
    clearTimeout(timer);
    process.off('exit', this.killOnExit);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  dropDatabases(): Promise<void> {
    return dropClusterDatabases(this.opts.adminUrl, this.plan.databases.main);
  }
}

/** Resolves once host:port accepts a TCP connection; rejects otherwise. */
function tcpAccepts(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, timeout: 1_000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('timeout', () => {
      socket.destroy();
      reject(new Error(`${host}:${port}: no answer`));
    });
    socket.once('error', reject);
  });
}

/** Drops a cluster's two databases (`main` and the visibility one named after it), if they exist. */
export async function dropClusterDatabases(adminUrl: string, main: string): Promise<void> {
  const client = new PgClient({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    for (const name of [main, visibilityDatabaseOf(main)]) {
      await client.query(`DROP DATABASE IF EXISTS "${name.replace(/"/g, '""')}" WITH (FORCE)`);
    }
  } finally {
    await client.end();
  }
}

async function portIsFree(port: number, host: string = HOST): Promise<boolean> {
  const probe = net.createServer();
  probe.once('error', () => undefined);
  probe.listen(port, host);
  const [event] = await Promise.race([once(probe, 'listening').then(() => ['listening']), once(probe, 'error').then(() => ['error'])]);
  if (event === 'listening') {
    probe.close();
    await once(probe, 'close');
    return true;
  }
  return false;
}

/** A frontend port whose derived service ports are free too (a moment later the server binds them). */
async function freeFrontendPort(hosts: readonly string[]): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // Below 32768: Temporal stores a member's ports as a PostgreSQL smallint (cluster_membership.rpc_port),
    // and Linux hands out its ephemeral ports from 32768 up.
    const frontend = 10_000 + Math.floor(Math.random() * 22_000);
    const ports = Object.values(servicePorts(frontend)).map(Number);
    let free = true;
    for (const host of hosts) for (const port of ports) if (!(await portIsFree(port, host))) free = false;
    if (free) return frontend;
  }
  throw new Error('no free range of ports for a Temporal cluster');
}

/** Runs the schema step, starts the server and the UI, makes the namespace; resolves once all answer. */
export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  for (const name of ['temporal-server', 'temporal-sql-tool', 'temporal-ui-server']) {
    if (!existsSync(tool(name))) throw new Error(`${tool(name)} is missing: run ./scripts/install-temporal (scripts/test and scripts/dev do)`);
  }
  const hosts = opts.services === 'apart' ? SERVICE_PROCESSES.map((p) => p.host) : [HOST];
  const port = opts.port ?? (await freeFrontendPort(hosts));
  const uiPort = opts.uiPort === false ? false : (opts.uiPort ?? (await freePort()));
  const plan = planCluster({ ...opts, port, uiPort });
  const cluster = new TemporalCluster(plan, { ...opts, port, uiPort });
  await cluster.create();
  return cluster;
}

// --- the command -----------------------------------------------------------------------------------------

const USAGE = `usage: node dist/scripts/devtools/cluster.js [--shards N] [--port P] [--ui-port P | --no-ui] [--database NAME] [--services one|apart] [--log FILE]
Runs docker-compose.yml's Temporal (schema step, server, namespace step, UI) on the PostgreSQL of
POSTGRES_ADMIN_URL until SIGINT or SIGTERM. Prints one JSON line when ready: address, uiUrl, shards, databases.
  --shards N       history shards of a new cluster (default: docker-compose.yml's, 512); an existing one keeps its own
  --port P         frontend gRPC port (default 7233); the other services' ports follow it as Temporal's defaults do
  --ui-port P      Web UI port (default 8233); --no-ui for none
  --database NAME  Temporal's main database (default temporal); the visibility one is NAME_visibility
  --services apart each service its own process on its own address (frontend 127.0.0.2, matching .3,
                   worker .4, history .5 and .6, all on the same ports), so that one can be killed;
                   default one: all in one process on 127.0.0.1, as compose runs it
  --log FILE       where the output goes (default .data/temporal-cluster.log)`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      shards: { type: 'string' },
      port: { type: 'string' },
      'ui-port': { type: 'string' },
      'no-ui': { type: 'boolean' },
      database: { type: 'string' },
      services: { type: 'string' },
      log: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const adminUrl = process.env.POSTGRES_ADMIN_URL;
  if (!adminUrl) throw new Error('POSTGRES_ADMIN_URL is not set: run ./scripts/cluster, which finds PostgreSQL');
  const integer = (name: string, value: string | undefined) => {
    if (value === undefined) return undefined;
    if (!/^[1-9]\d*$/.test(value)) throw new Error(`--${name}: "${value}" is not a positive whole number`);
    return Number(value);
  };
  const shards = integer('shards', values.shards);
  const port = integer('port', values.port) ?? 7233;
  // Its services' ports run from port - 300 to port + 10, and Temporal stores them as a smallint.
  if (port < 301 || port > 32_757) throw new Error(`--port: ${port} is out of range: use 301 to 32757 (Temporal stores its services' ports as a smallint)`);
  const uiPort = values['no-ui'] ? false : (integer('ui-port', values['ui-port']) ?? 8233);
  const services = values.services ?? 'one';
  if (services !== 'one' && services !== 'apart') throw new Error(`--services: "${services}" is not one of: one, apart`);

  const plan = planCluster({ adminUrl, shards, database: values.database, port, uiPort, services });
  const budget = await connectionBudget(adminUrl, plan.serverEnv, services);
  const room = budget.maxConnections - budget.superuserReserved - budget.inUse;
  console.error(
    `cluster: PostgreSQL allows ${budget.maxConnections} connections (${budget.superuserReserved} reserved, ${budget.inUse} in use); ` +
      `Temporal may open ${budget.temporal} (${budget.services} services x (SQL_MAX_CONNS ${plan.serverEnv.SQL_MAX_CONNS} + ` +
      `SQL_VIS_MAX_CONNS ${plan.serverEnv.SQL_VIS_MAX_CONNS})), the app's processes up to ${APP_CONNECTIONS}`,
  );
  if (budget.temporal + APP_CONNECTIONS > room) {
    console.error(`cluster: warning: only ${room} connections are left: raise PostgreSQL's max_connections, or lower the pools in docker-compose.yml`);
  }

  const logFile = path.resolve(values.log ?? path.join(ROOT, '.data/temporal-cluster.log'));
  mkdirSync(path.dirname(logFile), { recursive: true });
  writeFileSync(logFile, '');
  console.error(`cluster: the schema step, server, namespace step and UI log to ${logFile}`);
  const started = Date.now();
  const cluster = await startCluster({ adminUrl, shards, database: values.database, port, uiPort, logFile, services });
  if (shards !== undefined && cluster.shards !== shards) {
    console.error(
      `cluster: warning: ${cluster.databases.main} was made with ${cluster.shards} history shards, and the stored count wins over --shards ${shards}; ` +
        `use another --database (or drop this one) for a cluster of ${shards}`,
    );
  }
  console.error(`cluster: ready in ${((Date.now() - started) / 1000).toFixed(1)} s: Temporal on ${cluster.address} (${cluster.shards} history shards), Web UI ${cluster.uiUrl ?? 'off'}`);
  console.log(
    JSON.stringify({
      address: cluster.address,
      uiUrl: cluster.uiUrl,
      shards: cluster.shards,
      databases: cluster.databases,
      namespace: cluster.namespace,
      processes: plan.processes.map((p) => ({ name: p.name, host: p.host, pid: cluster.pidOf(p.name) })),
    }),
  );
  let stopping = false;
  const stop = () => {
    stopping = true;
    void cluster.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  await cluster.serverExit();
  if (!stopping) {
    await cluster.stop();
    throw new Error(`temporal-server exited on its own; see ${logFile}`);
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(`cluster: ${(err as Error).message}`);
    process.exit(1);
  });
}

/**
 * Whether the frontend accepts a start that sets our search attributes yet: a new cluster's refuses one until its
 * cache refreshes after they are registered. One probe, terminated at once.
 */
export async function acceptsOurSearchAttributes(client: Client): Promise<boolean> {
  const probe = await client.workflow
    .start('searchAttributesProbe', {
      taskQueue: 'search-attributes-probe',
      workflowId: `search-attributes-probe-${randomBytes(4).toString('hex')}`,
      typedSearchAttributes: [
        { key: searchAttributes.tokenId, value: 'probe' },
        { key: searchAttributes.expiresAt, value: new Date() },
        { key: searchAttributes.nextReminderAt, value: new Date() },
        { key: searchAttributes.state, value: 'probe' },
      ],
    })
    .catch(() => undefined);
  if (!probe) return false;
  await probe.terminate('probe');
  return true;
}
