// The bench's flags: sizes for a full run (the default) or a quick one (--quick, for CI), each overridable.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DURATION_HINT, parseDuration } from '../../src/duration';
import { ENGINE_HINT, EngineError, parseEngine, type Engine } from './engine';
import { SERVER_STORAGES, type BenchServer, type ServerStorage } from './server';

const SCENARIOS = [
  'create',
  'backfill',
  'fan-in',
  'mass-expiry',
  'mass-expiry-expired',
  'idle',
  'rate-cap',
  'baseline',
  'life',
  'digest',
  'crates-io-sweep',
  'discovery',
  'replan',
  'preferences-replan',
  'send-cost',
  'send-cost-cluster',
] as const;
/** Left out of a --quick run unless --only names it: the default spread alone takes 15 minutes, whatever the size. */
const NOT_QUICK: ScenarioName[] = ['mass-expiry', 'send-cost-cluster'];
export type ScenarioName = (typeof SCENARIOS)[number];
/** What a run on the cluster, or on several engines, measures unless --only says otherwise: the side-by-side table's. */
export const SIDE_BY_SIDE: readonly ScenarioName[] = ['create', 'backfill', 'fan-in', 'mass-expiry-expired'];

/** How a token's workflow is started: with a delay until its first reminder (the default), or at once (before). */
const START_PATHS = ['delayed', 'immediate'] as const;
export type StartPath = (typeof START_PATHS)[number];

export interface BenchOptions {
  quick: boolean;
  /** The engines measured one after the other (--engine, --shards, --engines); one table side by side. */
  engines: Engine[];
  /** The engine of the scenario running now (run.ts sets it, with the cluster all its scenarios share). */
  engine: Engine;
  sharedServer?: BenchServer;
  /** Prefix of every database the bench makes (its scratch databases, a cluster's two). */
  databasePrefix: string;
  scenarios: ScenarioName[];
  /** create: token creations measured with and without expiry, each. */
  creates: number;
  /** backfill: missing workflows the backfill starts, and its Temporal calls in flight (the CLI's --concurrency). */
  backfill: number;
  backfillConcurrency: number;
  /** fan-in and mass-expiry: tokens whose reminder falls due within the same second. */
  tokens: number;
  /** fan-in and mass-expiry: seconds from inserting the tokens to the first due time; 0 = from the size. */
  fanInLeadSeconds: number;
  /** idle: sleeping workflows, and the counts at which the worker's memory is read. */
  idle: number;
  idleSteps: number[];
  /** rate cap: EMAIL_MAX_PER_SECOND, and how many reminders fall due at once. */
  rateCap: number;
  rateTokens: number;
  /** baseline: rows in the table the crates.io scan runs on, and the simulated scan. */
  scanRows: number;
  baselineTokens: number;
  baselineIntervalSeconds: number;
  /** life: tokens whose whole life is measured, and the start paths measured side by side. */
  lifeTokens: number;
  startPaths: StartPath[];
  /** --model: print the capacity model from a results file (--from) instead of running scenarios. */
  model: boolean;
  modelFrom: string;
  /** digest: users, each with this many tokens falling due within the same minute (EXPIRY_DIGEST_WINDOW on). */
  digestUsers: number;
  /** send-cost-cluster: history shards of the real server's new cluster (production's 512). */
  clusterShards: number;
  digestTokensPerUser: number;
  /** discovery: tokens inserted with the change trigger installed, and without it (found by passes every discoveryInterval). */
  triggerTokens: number;
  polledTokens: number;
  /** discovery: TOKEN_DISCOVERY_INTERVAL of the run without the trigger (the default 1m is too slow to sample). */
  discoveryInterval: string;
  /** replan: waiting workflows `token-expiry replan` updates, and its updates in flight (the CLI's --concurrency). */
  replan: number;
  replanConcurrency: number;
  /** preferences-replan: waiting workflows of one user that a change of their preferences re-plans. */
  preferencesReplan: number;
  /** Milliseconds the fake Postmark waits before each answer. */
  latencyMs: number;
  serverStorage: ServerStorage;
  /** --dynamic-config-value KEY=VALUE pairs for the dev server. */
  serverConfig: string[];
  /** Variables for every worker (WORKER_* knobs) from the shell and --worker-env; unset ones keep src/config.ts's defaults. */
  workerEnv: Record<string, string>;
  /** Node flags for the worker process, from BENCH_WORKER_NODE_ARGS (e.g. --max-old-space-size=320, --cpu-prof). */
  workerNodeArgs: string[];
  adminUrl: string;
  outDir: string;
  keepDatabases: boolean;
  log(message: string): void;
}

const USAGE = `usage: npm run bench -- [--engine dev|cluster [--shards 512] | --engines dev,cluster:1,cluster:4,cluster:16,cluster:512]
  [--quick] [--only ${SCENARIOS.join(',')}] [--db-prefix token_expiry_bench]
  [--creates 1000] [--backfill 10000] [--backfill-concurrency 50] [--tokens 10000] [--fan-in-lead SECONDS] [--idle 100000]
  [--idle-steps 10000,50000,100000] [--rate-cap 20] [--rate-tokens 400] [--scan-rows 1000000]
  [--baseline-tokens 2000] [--baseline-interval 30] [--life-tokens 1000] [--start-paths delayed,immediate]
  [--digest-users 1000] [--digest-tokens-per-user 5] [--trigger-tokens 50] [--polled-tokens 20] [--discovery-interval 10s]
  [--replan 10000] [--replan-concurrency 16] [--preferences-replan 1000]
  [--model [--from bench/results/latest.json]] [--latency 50] [--cluster-shards 512] [--server-db wal|file|memory]
  [--server-config KEY=VALUE]... [--worker-env WORKER_MAX_CACHED_WORKFLOWS=100]...
  [--pg postgresql://postgres@127.0.0.1:5432/postgres] [--out bench/results] [--keep-databases]`;

export class UsageError extends Error {}

export function parseOptions(argv: string[], log: (message: string) => void): BenchOptions {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    values = parseArgs({
      args: argv,
      strict: true,
      options: {
        quick: { type: 'boolean' },
        engine: { type: 'string' },
        shards: { type: 'string' },
        engines: { type: 'string' },
        'db-prefix': { type: 'string' },
        only: { type: 'string' },
        creates: { type: 'string' },
        backfill: { type: 'string' },
        'backfill-concurrency': { type: 'string' },
        tokens: { type: 'string' },
        'fan-in-lead': { type: 'string' },
        idle: { type: 'string' },
        'idle-steps': { type: 'string' },
        'rate-cap': { type: 'string' },
        'rate-tokens': { type: 'string' },
        'scan-rows': { type: 'string' },
        'baseline-tokens': { type: 'string' },
        'baseline-interval': { type: 'string' },
        'life-tokens': { type: 'string' },
        'start-paths': { type: 'string' },
        model: { type: 'boolean' },
        from: { type: 'string' },
        'digest-users': { type: 'string' },
        'digest-tokens-per-user': { type: 'string' },
        'trigger-tokens': { type: 'string' },
        'polled-tokens': { type: 'string' },
        'discovery-interval': { type: 'string' },
        replan: { type: 'string' },
        'replan-concurrency': { type: 'string' },
        'preferences-replan': { type: 'string' },
        latency: { type: 'string' },
        'cluster-shards': { type: 'string' },
        'server-db': { type: 'string' },
        'server-config': { type: 'string', multiple: true },
        'worker-env': { type: 'string', multiple: true },
        pg: { type: 'string' },
        out: { type: 'string' },
        'keep-databases': { type: 'boolean' },
        help: { type: 'boolean' },
      },
    }).values;
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${USAGE}`);
  }
  if (values.help) throw new UsageError(USAGE);
  const quick = values.quick === true;
  const count = (flag: string, full: number, small: number, min = 1): number => {
    const text = values[flag] as string | undefined;
    if (text === undefined) return quick ? small : full;
    const n = Number(text);
    if (!Number.isFinite(n) || n < min) throw new UsageError(`--${flag}: "${String(text)}" is not a number >= ${min}`);
    return n;
  };

  const engines = parseEngines(values);
  const onDevOnly = engines.length === 1 && engines[0]?.kind === 'dev';
  const scenarios =
    values.only === undefined
      ? onDevOnly
        ? SCENARIOS.filter((name) => !quick || !NOT_QUICK.includes(name))
        : [...SIDE_BY_SIDE]
      : String(values.only).split(',').map((s) => s.trim());
  for (const name of scenarios) {
    if (!(SCENARIOS as readonly string[]).includes(name)) {
      throw new UsageError(`--only: "${name}" is not a scenario (use ${SCENARIOS.join(', ')})`);
    }
  }
  const idle = count('idle', 100_000, 1_200);
  const idleSteps =
    values['idle-steps'] === undefined
      ? quick && values.idle === undefined
        ? [600, 900, 1_200]
        : [...new Set([Math.round(idle / 10), Math.round(idle / 2), idle])]
      : String(values['idle-steps']).split(',').map((s) => Number(s));
  if (idleSteps.some((n, i) => !Number.isInteger(n) || n < 1 || n > idle || (i > 0 && n <= (idleSteps[i - 1] as number)))) {
    throw new UsageError(`--idle-steps: expected increasing counts up to --idle ${idle}, e.g. 10000,50000,100000`);
  }
  if (idleSteps[idleSteps.length - 1] !== idle) idleSteps.push(idle);
  const serverStorage = String(values['server-db'] ?? 'wal') as ServerStorage;
  if (!SERVER_STORAGES.includes(serverStorage)) {
    throw new UsageError(`--server-db: "${serverStorage}" is not one of ${SERVER_STORAGES.join(', ')}`);
  }
  const pairs = (flag: string): string[] => {
    const list = (values[flag] as string[] | undefined) ?? [];
    for (const pair of list) {
      if (!/^[A-Za-z_][\w.]*=.+$/.test(pair)) throw new UsageError(`--${flag}: "${pair}" is not KEY=VALUE`);
    }
    return list;
  };
  const serverConfig = pairs('server-config');
  const workerEnv = {
    ...Object.fromEntries(Object.entries(process.env).filter(([name]) => name.startsWith('WORKER_')) as [string, string][]),
    ...Object.fromEntries(pairs('worker-env').map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)])),
  };
  const startPaths = String(values['start-paths'] ?? START_PATHS.join(',')).split(',').map((p) => p.trim());
  for (const name of startPaths) {
    if (!(START_PATHS as readonly string[]).includes(name)) {
      throw new UsageError(`--start-paths: "${name}" is not a start path (use ${START_PATHS.join(', ')})`);
    }
  }
  const discoveryInterval = String(values['discovery-interval'] ?? (quick ? '5s' : '10s'));
  if (parseDuration(discoveryInterval) === null) {
    throw new UsageError(`--discovery-interval: "${discoveryInterval}" is not a duration (${DURATION_HINT})`);
  }
  const databasePrefix = String(values['db-prefix'] ?? 'token_expiry_bench');
  if (!/^[a-z_][a-z0-9_]{0,39}$/.test(databasePrefix)) {
    throw new UsageError(`--db-prefix: "${databasePrefix}" is not a database name prefix (lower-case letters, digits and _, at most 40)`);
  }
  const tokens = count('tokens', 10_000, 300);
  const rateCap = count('rate-cap', 20, 10);
  return {
    quick,
    engines,
    engine: engines[0] as Engine,
    databasePrefix,
    scenarios: scenarios as ScenarioName[],
    creates: count('creates', 1_000, 100),
    backfill: count('backfill', 10_000, 300),
    backfillConcurrency: count('backfill-concurrency', 50, 50),
    tokens,
    fanInLeadSeconds: count('fan-in-lead', 0, 0, 0),
    idle,
    idleSteps,
    rateCap,
    rateTokens: count('rate-tokens', rateCap * 20, rateCap * 6),
    scanRows: count('scan-rows', 1_000_000, 50_000),
    baselineTokens: count('baseline-tokens', 2_000, 100),
    baselineIntervalSeconds: count('baseline-interval', 30, 5),
    lifeTokens: count('life-tokens', 1_000, 200),
    startPaths: startPaths as StartPath[],
    model: values.model === true,
    modelFrom: (values.from as string | undefined) ?? path.join((values.out as string | undefined) ?? 'bench/results', 'latest.json'),
    digestUsers: count('digest-users', 1_000, 40),
    digestTokensPerUser: count('digest-tokens-per-user', 5, 5),
    triggerTokens: count('trigger-tokens', 50, 20),
    polledTokens: count('polled-tokens', 20, 8),
    discoveryInterval,
    replan: count('replan', 10_000, 300),
    replanConcurrency: count('replan-concurrency', 16, 16),
    preferencesReplan: count('preferences-replan', 1_000, 100),
    latencyMs: count('latency', 50, 50, 0),
    clusterShards: count('cluster-shards', 512, 4),
    serverStorage,
    serverConfig,
    workerEnv,
    workerNodeArgs: (process.env.BENCH_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean),
    adminUrl:
      (values.pg as string | undefined) ??
      process.env.BENCH_DATABASE_ADMIN_URL ??
      process.env.TEST_DATABASE_ADMIN_URL ??
      'postgresql://postgres@127.0.0.1:5432/postgres',
    outDir: (values.out as string | undefined) ?? 'bench/results',
    keepDatabases: values['keep-databases'] === true,
    log,
  };
}

/** --engine (with --shards) or --engines; the dev server when neither is given. */
function parseEngines(values: Record<string, string | boolean | string[] | undefined>): Engine[] {
  const engine = values.engine as string | undefined;
  const shards = values.shards as string | undefined;
  const list = values.engines as string | undefined;
  try {
    if (list !== undefined) {
      if (engine !== undefined || shards !== undefined) {
        throw new EngineError('--engines names every engine and its shards: leave out --engine and --shards (e.g. --engines dev,cluster:4)');
      }
      const engines = list.split(',').map((text) => parseEngine(text));
      const labels = engines.map((e) => (e.kind === 'dev' ? 'dev' : `cluster:${e.shards}`));
      const twice = labels.find((label, i) => labels.indexOf(label) !== i);
      if (twice) throw new EngineError(`${twice} is listed twice`);
      return engines;
    }
    if (shards !== undefined && engine !== 'cluster') {
      throw new EngineError(`--shards ${shards} applies to the cluster only: add --engine cluster (the dev server has one shard)`);
    }
    return [parseEngine(engine ?? 'dev', shards)];
  } catch (err) {
    if (!(err instanceof EngineError)) throw err;
    const flag = list !== undefined ? '--engines' : shards !== undefined && engine === 'cluster' ? '--shards' : '--engine';
    throw new UsageError(`${flag}: ${err.message}${err.message.includes('use ') ? '' : ` (engines: ${ENGINE_HINT})`}`);
  }
}
