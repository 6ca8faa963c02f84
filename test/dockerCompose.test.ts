import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { parse } from 'yaml';
import { CONFIG_VARIABLES, loadConfig } from '../src/config';
import { temporalCliPath } from '../scripts/devtools/devServer';
import { APP_CONNECTIONS, CLUSTER_TOOLS, planCluster, servicePorts, SERVICES_IN_ONE_PROCESS } from '../scripts/devtools/cluster';

// No Docker engine runs here, so the compose file, the Dockerfile and the scripts they run are checked
// by reading them, and the scripts by running them against stand-ins for Temporal's tools.
const root = path.resolve(__dirname, '..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');
// merge: compose's x-app-environment anchor is merged into each app's environment with <<.
const compose = parse(read('docker-compose.yml'), { merge: true });
const services: Record<string, Record<string, any>> = compose.services;
const APPS = ['migrate', 'worker', 'api'];

/** The environment as compose would hand it over, with ${VAR:-default} and ${VAR:?msg} filled in. */
function environmentOf(service: string, supplied: Record<string, string> = {}): Record<string, string> {
  const raw: Record<string, string> = services[service]?.environment ?? {};
  return Object.fromEntries(
    Object.entries(raw).map(([name, value]) => [
      name,
      String(value).replace(/\$\{(\w+)(?::[-?]([^}]*))?\}/g, (_m, variable: string, fallback?: string) => {
        const given = supplied[variable];
        if (given !== undefined) return given;
        if (String(value).includes(`${variable}:?`)) throw new Error(`${service}: ${variable} is required`);
        return fallback ?? '';
      }),
    ]),
  );
}

const operatorEnv = {
  POSTMARK_SERVER_TOKEN: 'server-token',
  EMAIL_FROM: 'Registry <noreply@registry.example>',
  REGISTRY_NAME: 'Registry',
  REGISTRY_URL: 'https://registry.example',
  API_AUTH_TOKEN: 'a-long-enough-service-token',
  TOKEN_EXPIRY_DB_PASSWORD: 'app-db-password',
  GRAFANA_ADMIN_PASSWORD: 'grafana-admin-password',
};

/** A service's `depends_on` as { dependency: condition } (compose's short list form means service_started). */
function dependenciesOf(service: string): Record<string, string> {
  const dependsOn = services[service]?.depends_on ?? {};
  if (Array.isArray(dependsOn)) return Object.fromEntries(dependsOn.map((name: string) => [name, 'service_started']));
  return Object.fromEntries(Object.entries(dependsOn).map(([name, spec]: [string, any]) => [name, spec?.condition ?? 'service_started']));
}

/** The order compose starts the services in; throws on a cycle or a dependency on a missing service. */
function startOrder(): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, from: string[]) => {
    if (!services[name]) throw new Error(`${from.at(-1)} depends on ${name}, which is not a service`);
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') throw new Error(`dependency cycle: ${[...from, name].join(' -> ')}`);
    state.set(name, 'visiting');
    for (const dependency of Object.keys(dependenciesOf(name))) visit(dependency, [...from, name]);
    state.set(name, 'done');
    order.push(name);
  };
  for (const name of Object.keys(services)) visit(name, []);
  return order;
}

/** The repo file a container path is mounted from (short volume syntax: ./host:/container[:ro]). */
function hostPathOf(service: string, containerPath: string): string | undefined {
  for (const volume of (services[service]?.volumes ?? []) as string[]) {
    const [host = '', target = ''] = volume.split(':');
    if (!host.startsWith('./')) continue;
    if (containerPath === target) return path.join(root, host);
    if (containerPath.startsWith(`${target}/`)) return path.join(root, host, containerPath.slice(target.length + 1));
  }
  return undefined;
}

function imageOf(service: string): { name: string; tag: string } {
  const [name = '', tag = ''] = String(services[service]?.image).split(':');
  return { name, tag };
}

const versionLine = (version: string) => version.split('.').slice(0, 2).join('.');

/** Runs a compose service's shell entrypoint here, with `tools` standing in for the image's commands. */
function runEntrypoint(service: string, tools: Record<string, string>) {
  const [shell, script = ''] = services[service]?.entrypoint ?? [];
  expect(shell).toBe('sh');
  const scriptPath = hostPathOf(service, script);
  if (!scriptPath) throw new Error(`${service}: ${script} is not mounted from the repo`);
  const bin = mkdtempSync(path.join(tmpdir(), 'compose-tools-'));
  try {
    const calls = path.join(bin, 'calls');
    writeFileSync(calls, '');
    for (const [tool, body] of Object.entries(tools)) {
      writeFileSync(path.join(bin, tool), `#!/bin/sh\necho "${tool} $*" >>"${calls}"\n${body}\n`);
      chmodSync(path.join(bin, tool), 0o755);
    }
    writeFileSync(path.join(bin, 'sleep'), '#!/bin/sh\n');
    chmodSync(path.join(bin, 'sleep'), 0o755);
    const run = spawnSync('sh', [scriptPath], {
      env: { ...environmentOf(service), PATH: `${bin}:${process.env.PATH}` },
      encoding: 'utf8',
    });
    return { status: run.status, stderr: run.stderr, calls: readFileSync(calls, 'utf8').trim().split('\n').filter(Boolean) };
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
}

/** Whether `docker build` would send a file to the daemon, by .dockerignore's rules (last match wins). */
function inBuildContext(file: string): boolean {
  const rules = read('.dockerignore')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const negated = line.startsWith('!');
      const pattern = (negated ? line.slice(1) : line).replace(/^\/+|\/+$/g, '');
      const regex = pattern
        .split('**')
        .map((part) => part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]'))
        .join('.*');
      return { negated, regex: new RegExp(`^${regex}$`) };
    });
  // A rule that matches a directory applies to everything under it.
  const prefixes = file.split('/').map((_part, i, parts) => parts.slice(0, i + 1).join('/'));
  let included = true;
  for (const rule of rules) if (prefixes.some((prefix) => rule.regex.test(prefix))) included = rule.negated;
  return included;
}

/** The Dockerfile's stages, each a list of [instruction, arguments]. */
function dockerfileStages(): [string, string][][] {
  const stages: [string, string][][] = [];
  for (const line of read('Dockerfile').replace(/\\\n/g, ' ').split('\n')) {
    const match = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!match || line.trim().startsWith('#')) continue;
    const instruction = match[1]!.toUpperCase();
    if (instruction === 'FROM') stages.push([]);
    stages.at(-1)?.push([instruction, match[2]!.trim()]);
  }
  return stages;
}

test('the stack: the database, the Temporal schema step, server, namespace step and UI, migrations, the worker and the API', () => {
  expect(Object.keys(services).sort()).toEqual([
    'api',
    'grafana',
    'migrate',
    'postgres',
    'prometheus',
    'temporal',
    'temporal-namespace',
    'temporal-schema',
    'temporal-ui',
    'worker',
  ]);
  for (const app of APPS) expect(services[app]?.build).toBe('.');
  expect(read('Dockerfile')).toContain('ENTRYPOINT ["node", "dist/src/programs/cli.js"]');
});

test('depends_on forms a valid start order: known services, no cycle, health checks where they are waited on', () => {
  const order = startOrder();
  const conditions = ['service_started', 'service_healthy', 'service_completed_successfully'];
  for (const service of Object.keys(services)) {
    for (const [dependency, condition] of Object.entries(dependenciesOf(service))) {
      expect(conditions).toContain(condition);
      if (condition === 'service_healthy') expect([service, dependency, services[dependency]?.healthcheck?.test]).toEqual([service, dependency, expect.anything()]);
      // A one-shot must not restart forever, or its dependants would never start.
      if (condition === 'service_completed_successfully') expect([dependency, services[dependency]?.restart ?? 'no']).toEqual([dependency, 'no']);
    }
  }
  const before = (a: string, b: string) => expect(order.indexOf(a)).toBeLessThan(order.indexOf(b));
  before('temporal-schema', 'temporal');
  before('temporal', 'temporal-namespace');
  for (const app of ['worker', 'api']) before('temporal-namespace', app);
});

test('the Temporal server starts only after its schema step has succeeded, the app only after its namespace exists', () => {
  expect(dependenciesOf('temporal-schema')).toEqual({ postgres: 'service_healthy' });
  expect(dependenciesOf('temporal')).toMatchObject({ 'temporal-schema': 'service_completed_successfully' });
  expect(dependenciesOf('temporal-namespace')).toEqual({ temporal: 'service_healthy' });
  expect(dependenciesOf('temporal-ui')).toEqual({ temporal: 'service_healthy' });
  for (const app of ['worker', 'api']) {
    expect(dependenciesOf(app)).toEqual({
      'temporal-namespace': 'service_completed_successfully',
      migrate: 'service_completed_successfully',
    });
  }
  expect(dependenciesOf('migrate')).toEqual({ postgres: 'service_healthy' });
  for (const name of ['postgres', 'temporal', 'worker', 'api']) expect(services[name]?.healthcheck?.test).toBeDefined();
});

test('Temporal runs on supported images, pinned, on the release line of the dev server the tests use', () => {
  const cli = execFileSync(temporalCliPath(), ['--version'], { encoding: 'utf8' });
  const devServer = /\(Server (\d+\.\d+\.\d+)/.exec(cli)?.[1];
  expect(devServer).toBeDefined();
  const server = imageOf('temporal');
  expect(server.name).toBe('temporalio/server');
  expect(versionLine(server.tag)).toBe(versionLine(devServer!));
  for (const oneShot of ['temporal-schema', 'temporal-namespace']) {
    expect(imageOf(oneShot)).toEqual({ name: 'temporalio/admin-tools', tag: server.tag });
  }
  expect(imageOf('temporal-ui').name).toBe('temporalio/ui');
  for (const service of Object.keys(services).filter((name) => services[name]?.image)) {
    expect([service, imageOf(service).tag]).toEqual([service, expect.stringMatching(/^v?\d+(\.\d+)*$/)]);
  }
  const operations = read('docs/operations.md');
  for (const service of ['temporal', 'temporal-schema', 'temporal-ui']) {
    const image = String(services[service]?.image);
    expect([image, operations.includes(`\`${image}\``)]).toEqual([image, true]);
  }
});

test('scripts/install-temporal builds the real server, its SQL tool and the UI at the compose images\' versions', () => {
  const pin = (name: string) => new RegExp(`^${name}=(\\S+)`, 'm').exec(read('scripts/install-temporal'))?.[1];
  const server = imageOf('temporal');
  expect(pin('TEMPORAL_SERVER_VERSION')).toBe(server.tag);
  expect(pin('TEMPORAL_UI_VERSION')).toBe(imageOf('temporal-ui').tag);
  // What was built, asked: scripts/test installs it before jest runs.
  const version = (binary: string) => execFileSync(path.join(CLUSTER_TOOLS, 'bin', binary), ['--version'], { encoding: 'utf8' }).trim();
  expect(version('temporal-server')).toBe(`temporal version ${server.tag}`);
  expect(version('temporal-sql-tool')).toBe(`temporal-sql-tool version ${server.tag}`);
  expect(version('temporal-ui-server')).toBe(`Temporal UI version ${imageOf('temporal-ui').tag}`);
});

test("Temporal's SQL pools fit PostgreSQL's max_connections beside the app's pools", () => {
  const server = environmentOf('temporal');
  // postgres:16's default, unless the service raises it.
  const maxConnections = Number(/max_connections=(\d+)/.exec(JSON.stringify(services.postgres?.command ?? ''))?.[1] ?? 100);
  const superuserReserved = 3;
  for (const name of ['SQL_MAX_CONNS', 'SQL_MAX_IDLE_CONNS', 'SQL_VIS_MAX_CONNS', 'SQL_VIS_MAX_IDLE_CONNS']) expect([name, server[name]]).toEqual([name, expect.stringMatching(/^\d+$/)]);
  // Idle connections kept beyond the pool's size would be closed again at once.
  expect(Number(server.SQL_MAX_IDLE_CONNS)).toBeLessThanOrEqual(Number(server.SQL_MAX_CONNS));
  expect(Number(server.SQL_VIS_MAX_IDLE_CONNS)).toBeLessThanOrEqual(Number(server.SQL_VIS_MAX_CONNS));
  const temporal = SERVICES_IN_ONE_PROCESS * (Number(server.SQL_MAX_CONNS) + Number(server.SQL_VIS_MAX_CONNS));
  expect(temporal + APP_CONNECTIONS + superuserReserved).toBeLessThanOrEqual(maxConnections);
});

test('scripts/cluster runs each step with its compose service\'s settings; only the machine\'s differ', () => {
  const plan = planCluster({ adminUrl: 'postgresql://pg%20user:p%40ss@db.local:6543/postgres', shards: 4, database: 'temporal_x', port: 27233, uiPort: 28233 });
  const changed = (compose: Record<string, string>, ours: Record<string, string>) =>
    Object.fromEntries(Object.entries(ours).filter(([key, value]) => compose[key] !== value));
  for (const [step, service] of [
    ['schemaEnv', 'temporal-schema'],
    ['serverEnv', 'temporal'],
    ['namespaceEnv', 'temporal-namespace'],
    ['uiEnv', 'temporal-ui'],
  ] as const) {
    // Nothing of compose's left out.
    expect(Object.keys(plan[step]!)).toEqual(expect.arrayContaining(Object.keys(environmentOf(service))));
  }
  expect(changed(environmentOf('temporal-schema'), plan.schemaEnv)).toEqual({
    SQL_HOST: 'db.local',
    SQL_PORT: '6543',
    SQL_USER: 'pg user',
    SQL_PASSWORD: 'p@ss',
    DBNAME: 'temporal_x',
    VISIBILITY_DBNAME: 'temporal_x_visibility',
  });
  expect(changed(environmentOf('temporal'), plan.serverEnv)).toEqual({
    POSTGRES_SEEDS: 'db.local',
    DB_PORT: '6543',
    POSTGRES_USER: 'pg user',
    POSTGRES_PWD: 'p@ss',
    DBNAME: 'temporal_x',
    VISIBILITY_DBNAME: 'temporal_x_visibility',
    NUM_HISTORY_SHARDS: '4',
    BIND_ON_IP: '127.0.0.1',
    DYNAMIC_CONFIG_FILE_PATH: hostPathOf('temporal', environmentOf('temporal').DYNAMIC_CONFIG_FILE_PATH!),
    ...servicePorts(27233),
  });
  expect(changed(environmentOf('temporal-namespace'), plan.namespaceEnv)).toEqual({ TEMPORAL_ADDRESS: '127.0.0.1:27233' });
  expect(changed(environmentOf('temporal-ui'), plan.uiEnv!)).toEqual({
    TEMPORAL_ADDRESS: '127.0.0.1:27233',
    TEMPORAL_UI_PORT: '28233',
    TEMPORAL_DISABLE_NEWS_FETCH: 'true',
  });
  // Temporal's own defaults around 7233 when the frontend is on 7233.
  expect(servicePorts(7233)).toMatchObject({ HISTORY_GRPC_PORT: '7234', MATCHING_GRPC_PORT: '7235', WORKER_GRPC_PORT: '7239', FRONTEND_MEMBERSHIP_PORT: '6933' });
  // Without options: compose's databases and shard count.
  const plain = planCluster({ adminUrl: 'postgresql://postgres@127.0.0.1:5432/postgres', port: 7233, uiPort: false });
  expect(plain.databases).toEqual({ main: environmentOf('temporal').DBNAME, visibility: environmentOf('temporal').VISIBILITY_DBNAME });
  expect(plain.serverEnv.NUM_HISTORY_SHARDS).toBe(environmentOf('temporal').NUM_HISTORY_SHARDS);
  expect(plain.uiEnv).toBeUndefined();
});

test('the server has its history shard count set on purpose, and the dynamic config it reads is in the repo', () => {
  const server = environmentOf('temporal');
  expect(server.DB).toBe('postgres12');
  // The image's own default (4) would be fixed for the cluster's life without anyone choosing it.
  expect(server.NUM_HISTORY_SHARDS).toMatch(/^\d+$/);
  expect(Number(server.NUM_HISTORY_SHARDS)).toBeGreaterThan(4);
  const dynamicConfig = hostPathOf('temporal', server.DYNAMIC_CONFIG_FILE_PATH ?? '');
  expect(dynamicConfig).toBeDefined();
  expect(existsSync(dynamicConfig!)).toBe(true);
  const overrides = parse(readFileSync(dynamicConfig!, 'utf8')) ?? {};
  for (const values of Object.values(overrides)) expect(values).toEqual(expect.arrayContaining([expect.objectContaining({ value: expect.anything() })]));
});

test('the schema step prepares the databases the server reads, with the server credentials, on PostgreSQL 12+', () => {
  const schema = environmentOf('temporal-schema');
  const server = environmentOf('temporal');
  expect({ host: schema.SQL_HOST, port: schema.SQL_PORT, user: schema.SQL_USER, password: schema.SQL_PASSWORD }).toEqual({
    host: server.POSTGRES_SEEDS,
    port: server.DB_PORT,
    user: server.POSTGRES_USER,
    password: server.POSTGRES_PWD,
  });
  expect([schema.DBNAME, schema.VISIBILITY_DBNAME]).toEqual([server.DBNAME, server.VISIBILITY_DBNAME]);

  const { status, calls } = runEntrypoint('temporal-schema', { 'temporal-sql-tool': 'exit 0' });
  expect(status).toBe(0);
  const versioned = '/etc/temporal/schema/postgresql/v12';
  expect(calls).toEqual([
    `temporal-sql-tool --plugin postgres12 --db ${server.DBNAME} create-database`,
    `temporal-sql-tool --plugin postgres12 --db ${server.DBNAME} setup-schema -v 0.0`,
    `temporal-sql-tool --plugin postgres12 --db ${server.DBNAME} update-schema -d ${versioned}/temporal/versioned`,
    `temporal-sql-tool --plugin postgres12 --db ${server.VISIBILITY_DBNAME} create-database`,
    `temporal-sql-tool --plugin postgres12 --db ${server.VISIBILITY_DBNAME} setup-schema -v 0.0`,
    `temporal-sql-tool --plugin postgres12 --db ${server.VISIBILITY_DBNAME} update-schema -d ${versioned}/visibility/versioned`,
  ]);
  // A failed step fails the one-shot, so the server does not start on a half-made schema.
  const failing = runEntrypoint('temporal-schema', { 'temporal-sql-tool': 'case "$*" in *update-schema*) exit 1;; esac' });
  expect(failing.status).not.toBe(0);
  expect(failing.calls).toHaveLength(3);
});

test('the namespace step waits for the cluster, then creates the namespace the app uses, once', () => {
  const app = loadConfig(environmentOf('worker', operatorEnv));
  const step = environmentOf('temporal-namespace');
  expect(step.TEMPORAL_ADDRESS).toBe(app.TEMPORAL_ADDRESS);

  // Healthy on the third try; no namespace yet.
  const fresh = runEntrypoint('temporal-namespace', {
    temporal: `case "$*" in
      *"cluster health"*) n=$(grep -c "cluster health" "$0.count" 2>/dev/null || true); echo "cluster health" >>"$0.count"; [ "\${n:-0}" -ge 2 ];;
      *"namespace describe"*) exit 1;;
    esac`,
  });
  expect(fresh.status).toBe(0);
  expect(fresh.calls.filter((call) => call.includes('cluster health'))).toHaveLength(3);
  const create = fresh.calls.filter((call) => call.includes('namespace create'));
  expect(create).toHaveLength(1);
  expect(create[0]).toContain(`--namespace ${app.TEMPORAL_NAMESPACE} `);
  expect(create[0]).toContain(`--address ${app.TEMPORAL_ADDRESS} `);
  expect(create[0]).toMatch(/--retention \d+[dh]\b/);

  const again = runEntrypoint('temporal-namespace', { temporal: 'exit 0' });
  expect(again.status).toBe(0);
  expect(again.calls.some((call) => call.includes('namespace create'))).toBe(false);

  const down = runEntrypoint('temporal-namespace', { temporal: 'exit 1' });
  expect(down.status).not.toBe(0);
  expect(down.calls.some((call) => call.includes('namespace'))).toBe(false);
});

test.each(APPS)('%s: every variable is one the config knows, and the config accepts them', (service) => {
  const env = environmentOf(service, operatorEnv);
  for (const name of Object.keys(env)) expect(CONFIG_VARIABLES).toContain(name);
  const config = loadConfig(env);
  expect(config.DATABASE_URL).toContain('@postgres:5432/');
  if (service !== 'migrate') {
    expect(config.TEMPORAL_ADDRESS).toBe('temporal:7233');
    expect(config.TEMPORAL_NAMESPACE).toBe(environmentOf('temporal-namespace').TEMPORAL_NAMESPACE);
  }
});

test('the ports agree with the config: API on API_PORT (listening on every interface of its container), metrics on METRICS_PORT, the UI on 8233', () => {
  const api = loadConfig(environmentOf('api', operatorEnv));
  expect(api.API_HOST).toBe('0.0.0.0');
  expect(services.api?.ports).toEqual([`\${API_PUBLISH_ADDRESS:-127.0.0.1}:${api.API_PORT}:${api.API_PORT}`]);
  expect(JSON.stringify(services.api?.healthcheck.test)).toContain(`:${api.API_PORT}/health`);
  const worker = loadConfig(environmentOf('worker', operatorEnv));
  expect(JSON.stringify(services.worker?.healthcheck.test)).toContain(`:${worker.METRICS_PORT}/metrics`);
  expect(read('deploy/prometheus/prometheus.yml')).toContain(`worker:${worker.METRICS_PORT}`);
  expect(services['temporal-ui']?.ports).toEqual(['127.0.0.1:8233:8080']);
  expect(services['temporal-ui']?.environment.TEMPORAL_ADDRESS).toBe(worker.TEMPORAL_ADDRESS);
});

test('published ports: only on the host\'s loopback, and none for Temporal\'s gRPC or the worker\'s metrics', () => {
  const published = Object.entries(services).flatMap(([name, service]) =>
    ((service.ports ?? []) as unknown[]).map((port) => ({ name, port: String(port) })),
  );
  expect(published.map((p) => p.name).sort()).toEqual(['api', 'grafana', 'prometheus', 'temporal-ui']);
  for (const { name, port } of published) {
    // host-ip:host-port:container-port, the host ip loopback (the API's by default, overridable on purpose).
    const hostIp = name === 'api' ? port.replace(/^\$\{API_PUBLISH_ADDRESS:-([^}]+)\}:.*$/, '$1') : port.split(':')[0];
    expect({ name, hostIp }).toEqual({ name, hostIp: '127.0.0.1' });
    expect(port.split(':').length).toBe(name === 'api' ? 4 : 3);
  }
  expect(services.temporal?.ports).toBeUndefined();
  expect(services.worker?.ports).toBeUndefined();
  // Where Temporal's own TLS and authorization belong is said where someone would open the ports.
  expect(read('docker-compose.yml')).toMatch(/mTLS and authorization/);
});

test('Grafana: no anonymous access, the admin password from the operator', () => {
  const grafana = environmentOf('grafana', operatorEnv);
  expect(grafana.GF_AUTH_ANONYMOUS_ENABLED).toBe('false');
  expect(grafana.GF_SECURITY_ADMIN_PASSWORD).toBe('grafana-admin-password');
  expect(() => environmentOf('grafana', {})).toThrow(/GRAFANA_ADMIN_PASSWORD is required/);
});

test('the app connects as token_expiry, a role the database\'s first start creates without superuser or ownership', () => {
  const owner = environmentOf('postgres', operatorEnv).POSTGRES_USER;
  for (const service of APPS) {
    const url = new URL(loadConfig(environmentOf(service, operatorEnv)).DATABASE_URL);
    expect({ service, user: url.username, password: url.password }).toEqual({ service, user: 'token_expiry', password: 'app-db-password' });
    expect(url.username).not.toBe(owner);
  }
  expect(services.postgres?.volumes).toContain('./deploy/postgres/init-app-role.sh:/docker-entrypoint-initdb.d/init-app-role.sh:ro');
  // The init script, run with a stand-in psql: the SQL it sends and how.
  const dir = mkdtempSync(path.join(tmpdir(), 'init-role-'));
  try {
    writeFileSync(path.join(dir, 'psql'), `#!/bin/sh\necho "$@" > "${dir}/args"\ncat > "${dir}/sql"\n`);
    chmodSync(path.join(dir, 'psql'), 0o755);
    const run = spawnSync('sh', [path.join(root, 'deploy/postgres/init-app-role.sh')], {
      env: { PATH: `${dir}:${process.env.PATH}`, POSTGRES_USER: owner!, POSTGRES_DB: 'registry', TOKEN_EXPIRY_DB_PASSWORD: 'pw' },
      encoding: 'utf8',
    });
    expect(run.status).toBe(0);
    expect(readFileSync(path.join(dir, 'args'), 'utf8')).toContain('ON_ERROR_STOP=1');
    const sql = readFileSync(path.join(dir, 'sql'), 'utf8');
    expect(sql).toMatch(/CREATE ROLE token_expiry LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';/);
    expect(sql).toMatch(/CREATE SCHEMA token_expiry AUTHORIZATION token_expiry;/);
    expect(sql).not.toMatch(/(?<!NO)SUPERUSER|OWNER TO token_expiry|GRANT .* ON DATABASE temporal/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('secrets come from the operator, never from the file', () => {
  expect(() => environmentOf('api', { ...operatorEnv, API_AUTH_TOKEN: undefined as never })).toThrow(/API_AUTH_TOKEN is required/);
  expect(() => environmentOf('worker', { ...operatorEnv, POSTMARK_SERVER_TOKEN: undefined as never })).toThrow(
    /POSTMARK_SERVER_TOKEN is required/,
  );
});

test('the app image holds only what runs: no test/ in the build context or the image, production dependencies, not root', () => {
  expect(inBuildContext('test/fakePostmark.ts')).toBe(false);
  expect(inBuildContext('.env')).toBe(false);
  for (const file of ['package-lock.json', 'tsconfig.build.json', 'src/programs/cli.ts', 'workflows/index.ts', 'activities/index.ts']) {
    expect([file, inBuildContext(file)]).toEqual([file, true]);
  }
  const stages = dockerfileStages();
  const copies = stages.flat().filter(([instruction]) => instruction === 'COPY' || instruction === 'ADD');
  for (const [, args] of copies.filter(([, args]) => !args.startsWith('--from'))) {
    const sources = args.split(/\s+/).filter((word) => !word.startsWith('--')).slice(0, -1);
    for (const source of sources) {
      expect([source, inBuildContext(source)]).toEqual([source, true]);
      expect(source).not.toMatch(/^(\.\/?|test\/?|\*)$/);
    }
  }
  const final = stages.at(-1) ?? [];
  const runs = final.filter(([instruction]) => instruction === 'RUN').map(([, args]) => args);
  expect(runs.some((args) => /npm ci\b.*--omit=dev/.test(args))).toBe(true);
  expect(final.filter(([instruction, args]) => instruction === 'COPY' && args.startsWith('--from'))).toEqual([
    ['COPY', '--from=build /app/dist ./dist'],
  ]);
  const user = final.filter(([instruction]) => instruction === 'USER').at(-1)?.[1];
  expect(user).toBeDefined();
  expect(user).not.toMatch(/^(root|0)(:|$)/);
  expect(stages[0]?.some(([instruction, args]) => instruction === 'RUN' && args.includes('-p tsconfig.build.json'))).toBe(true);
});

test('the image build compiles src/, workflows/ and activities/ only, and they import nothing from outside them', () => {
  const configFile = ts.readConfigFile(path.join(root, 'tsconfig.build.json'), ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(configFile.config, ts.sys, root);
  expect(parsed.errors).toEqual([]);
  const shipped = ['src', 'workflows', 'activities'];
  const within = (file: string) => shipped.includes(path.relative(root, file).split(path.sep)[0] ?? '');
  expect(parsed.fileNames.length).toBeGreaterThan(10);
  for (const file of parsed.fileNames) expect([file, within(file)]).toEqual([file, true]);
  for (const file of parsed.fileNames) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'));
    for (const { fileName } of importedFiles.filter(({ fileName }) => fileName.startsWith('.'))) {
      const target = path.resolve(path.dirname(file), fileName);
      expect([path.relative(root, file), fileName, within(target)]).toEqual([path.relative(root, file), fileName, true]);
    }
  }
});
