// `npm run bench [-- --quick] [-- --only fan-in]`: runs the scenarios against the real stack on this
// machine, prints one table and writes the same figures, with the machine, to bench/results/.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { engineLabel, startBenchCluster } from './lib/engine';
import { describeMachine, gitCommit } from './lib/machine';
import { parseOptions, UsageError, type ScenarioName } from './lib/options';
import { loadAverage } from './lib/proc';
import { formatTable, type Figure } from './lib/report';
import { formatSideBySide, type EngineRun } from './lib/sideBySide';
import type { Scenario } from './lib/scenario';
import { backfillScenario } from './scenarios/backfill';
import { baselineScenario } from './scenarios/baseline';
import { createScenario } from './scenarios/create';
import { digestScenario } from './scenarios/digest';
import { cratesIoSweepScenario } from './scenarios/cratesIoSweep';
import { discoveryScenario } from './scenarios/discovery';
import { fanInScenario } from './scenarios/fanIn';
import { idleScenario } from './scenarios/idle';
import { lifeScenario } from './scenarios/life';
import { massExpiryNoticesScenario, massExpiryWarningsScenario } from './scenarios/massExpiry';
import { printModel } from './lib/model';
import { rateCapScenario } from './scenarios/rateCap';
import { replanScenario } from './scenarios/replan';
import { preferencesReplanScenario } from './scenarios/preferencesReplan';
import { sendCostClusterScenario, sendCostScenario } from './scenarios/sendCost';

const SCENARIO_RUNNERS: Record<ScenarioName, Scenario> = {
  create: createScenario,
  backfill: backfillScenario,
  'fan-in': fanInScenario,
  'mass-expiry': massExpiryWarningsScenario,
  'mass-expiry-expired': massExpiryNoticesScenario,
  idle: idleScenario,
  'rate-cap': rateCapScenario,
  baseline: baselineScenario,
  life: lifeScenario,
  digest: digestScenario,
  'crates-io-sweep': cratesIoSweepScenario,
  discovery: discoveryScenario,
  replan: replanScenario,
  'preferences-replan': preferencesReplanScenario,
  'send-cost': sendCostScenario,
  'send-cost-cluster': sendCostClusterScenario,
};

/** The repository, from dist/bench/ or from bench/ alike. */
const ROOT = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');
// The dev-server helper finds the CLI relative to its own source; built into dist/ it needs telling.
process.env.TEMPORAL_CLI_PATH ??= path.join(ROOT, '.tools/python/bin/temporal');

async function main(): Promise<number> {
  const startedAt = new Date();
  const log = (message: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${message}\n`);
  const options = parseOptions(process.argv.slice(2), log);
  if (options.model) {
    process.stdout.write(printModel(options.modelFrom));
    return 0;
  }
  const machine = await describeMachine(options.adminUrl);
  const loadBefore = loadAverage();
  log(`${options.quick ? 'quick' : 'full'} run of ${options.scenarios.join(', ')} on ${options.engines.map(engineLabel).join(', ')}; load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`);
  log(`dev server storage: ${options.serverStorage}${options.serverConfig.length ? `, ${options.serverConfig.join(' ')}` : ''}; worker: ${settings(options.workerEnv, options.workerNodeArgs)}; fake Postmark latency ${options.latencyMs} ms`);

  const figures: Figure[] = [];
  const runs: EngineRun[] = [];
  const scenarios: Record<string, unknown> = {};
  const { log: _log, sharedServer: _server, ...flags } = options;
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  mkdirSync(options.outDir, { recursive: true });
  // Written after every scenario, so that a run stopped half-way keeps what it measured.
  const save = (complete: boolean) => {
    const finishedAt = new Date();
    const report = {
      complete,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      seconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
      mode: options.quick ? 'quick' : 'full',
      options: flags,
      machine: { ...machine, loadAverageAtStart: loadBefore, loadAverageAtEnd: loadAverage() },
      git: gitCommit(),
      figures,
      engines: runs,
      scenarios,
    };
    const json = `${JSON.stringify(report, null, 2)}\n`;
    writeFileSync(path.join(options.outDir, `${stamp}${options.quick ? '-quick' : ''}.json`), json);
    if (complete) writeFileSync(path.join(options.outDir, 'latest.json'), json);
    return report;
  };

  let failed = false;
  const several = options.engines.length > 1;
  for (const engine of options.engines) {
    const label = engineLabel(engine);
    const run: EngineRun = { engine: label, figures: [], loadAverage: { start: loadAverage()[0], end: Number.NaN } };
    runs.push(run);
    const record = (figure: Figure) => {
      run.figures.push(figure);
      figures.push(several ? { ...figure, scenario: `${label} ${figure.scenario}` } : figure);
    };
    let engineOptions = { ...options, engine };
    if (engine.kind === 'cluster') {
      log(`starting a cluster with ${engine.shards} history shards on PostgreSQL`);
      try {
        engineOptions = { ...engineOptions, sharedServer: await startBenchCluster(options.adminUrl, engine.shards, options.databasePrefix) };
      } catch (err) {
        failed = true;
        log(`${label} did not start: ${err instanceof Error ? err.message : String(err)}`);
        record({ scenario: 'cluster', metric: 'scenario failed', value: null, unit: '', target: 'runs', met: false, note: String(err).split('\n')[0] });
        run.loadAverage.end = loadAverage()[0];
        continue;
      }
    }
    try {
      for (const name of options.scenarios) {
        const began = Date.now();
        const load = loadAverage();
        const key = several ? `${label} ${name}` : name;
        try {
          const result = await SCENARIO_RUNNERS[name](engineOptions);
          result.figures.forEach(record);
          scenarios[key] = { seconds: (Date.now() - began) / 1000, loadAverageAtStart: load, ...result.details };
        } catch (err) {
          failed = true;
          log(`${label} ${name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
          record({ scenario: name, metric: 'scenario failed', value: null, unit: '', target: 'runs', met: false, note: String(err).split('\n')[0] });
          scenarios[key] = { seconds: (Date.now() - began) / 1000, error: String(err) };
        }
        log(`${label} ${name} done in ${((Date.now() - began) / 1000).toFixed(0)} s`);
        save(false);
      }
    } finally {
      await engineOptions.sharedServer?.stop().catch((err: unknown) => log(`stopping ${label} failed: ${String(err)}`));
      run.loadAverage.end = loadAverage()[0];
    }
  }
  const report = save(true);
  const loadAfter = report.machine.loadAverageAtEnd;

  process.stdout.write(`\n${formatTable(figures)}\n\n`);
  if (several || options.engine.kind === 'cluster') process.stdout.write(`${formatSideBySide(runs)}\n\n`);
  process.stdout.write(
    `${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB; node ${machine.node}; ` +
      `${machine.temporalCli.split('\n')[0]}; PostgreSQL ${machine.postgres}; ` +
      `load average ${loadBefore[0].toFixed(2)} at start, ${loadAfter[0].toFixed(2)} at end; ` +
      `${report.git.commit.slice(0, 12)}${report.git.dirty ? ' (uncommitted changes)' : ''}\n`,
  );
  process.stdout.write(
    `dev server storage ${options.serverStorage}${options.serverConfig.length ? ` (${options.serverConfig.join(' ')})` : ''}; ` +
      `worker ${settings(options.workerEnv, options.workerNodeArgs)}; fake Postmark latency ${options.latencyMs} ms\n`,
  );
  process.stdout.write(
    'CPU is read from /proc/<pid>/stat: the server process, the worker process, and the PostgreSQL client backends connected to ' +
      "the engine's databases (Temporal's two on a cluster, the app's scratch one), not the whole PostgreSQL instance (its WAL writer " +
      'and checkpointer are left out, and other users of it too). The machine is shared: trust the CPU per operation; rates and lateness move with the load.\n',
  );
  process.stdout.write(`written to ${path.join(options.outDir, 'latest.json')}\n`);
  const missed = figures.filter((f) => f.met === false);
  if (missed.length > 0) process.stdout.write(`${missed.length} target(s) missed\n`);
  // A missed target is a finding, not a crash; only a scenario that could not run fails the command.
  return failed ? 1 : 0;
}

function settings(env: Record<string, string>, nodeArgs: string[]): string {
  const pairs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  return [pairs.length ? pairs.join(' ') : 'defaults (src/config.ts)', ...(nodeArgs.length ? [`node ${nodeArgs.join(' ')}`] : [])].join(', ');
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof UsageError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
