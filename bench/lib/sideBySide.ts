// The engines' figures next to each other: one row per figure, one column per engine, then what bounded
// each engine's phases (from the server's metrics, PostgreSQL's wait events and the machine's CPU).
import { formatNumber, type Figure } from './report';

export interface EngineRun {
  engine: string;
  figures: Figure[];
  loadAverage: { start: number; end: number };
}

interface Row {
  label: string;
  scenario: string;
  metric: string;
}

const FAN_IN = 'fan-in';
const MASS = 'mass-expiry (expired notices)';

const SIDE_BY_SIDE_ROWS: Row[] = [
  { label: 'create with expiry, p50', scenario: 'create', metric: 'create with expiry, p50' },
  { label: 'the start call alone, p50', scenario: 'create', metric: 'the start call alone, p50' },
  { label: 'backfill starts/s', scenario: 'backfill', metric: 'workflow starts per second' },
  { label: 'server CPU per start', scenario: 'backfill', metric: 'CPU per start: server' },
  { label: "PostgreSQL CPU per start (Temporal's dbs)", scenario: 'backfill', metric: "CPU per start: PostgreSQL, Temporal's databases" },
  { label: "PG commits per start (Temporal's dbs)", scenario: 'backfill', metric: "PG commits per start: Temporal's databases" },
  { label: 'storage per sleeping workflow', scenario: 'backfill', metric: 'storage per sleeping workflow' },
  { label: 'fan-in sends/s', scenario: FAN_IN, metric: 'sends per second' },
  { label: 'fan-in lateness p50', scenario: FAN_IN, metric: 'lateness p50' },
  { label: 'fan-in lateness p99', scenario: FAN_IN, metric: 'lateness p99' },
  { label: 'server CPU per send', scenario: FAN_IN, metric: 'CPU per send: server' },
  { label: 'worker CPU per send', scenario: FAN_IN, metric: 'CPU per send: worker' },
  { label: "PostgreSQL CPU per send (Temporal's dbs)", scenario: FAN_IN, metric: "CPU per send: PostgreSQL, Temporal's databases" },
  { label: "PostgreSQL CPU per send (app's db)", scenario: FAN_IN, metric: "CPU per send: PostgreSQL, the app's database" },
  { label: "PG commits per send (Temporal's dbs)", scenario: FAN_IN, metric: "PG commits per send: Temporal's databases" },
  { label: "PG commits per send (app's db)", scenario: FAN_IN, metric: "PG commits per send: the app's database" },
  { label: "PG row writes per send (Temporal's dbs)", scenario: FAN_IN, metric: "PG row writes per send: Temporal's databases" },
  { label: "PG row writes per send (app's db)", scenario: FAN_IN, metric: "PG row writes per send: the app's database" },
  { label: 'fan-in: machine CPU busy', scenario: FAN_IN, metric: 'machine CPU busy' },
  { label: 'mass expiry sends/s', scenario: MASS, metric: 'sends per second' },
  { label: 'mass expiry lateness p99', scenario: MASS, metric: 'lateness p99' },
  { label: 'mass expiry server CPU per send', scenario: MASS, metric: 'CPU per send: server' },
  { label: 'mass expiry worker CPU per send', scenario: MASS, metric: 'CPU per send: worker' },
  { label: "mass expiry PG CPU per send (Temporal's dbs)", scenario: MASS, metric: "CPU per send: PostgreSQL, Temporal's databases" },
  { label: 'mass expiry: machine CPU busy', scenario: MASS, metric: 'machine CPU busy' },
];

const BOUND_SCENARIOS = ['backfill', FAN_IN, MASS];

function cell(figure: Figure | undefined): string {
  if (!figure) return '';
  if (figure.value === null) return 'n/a';
  return `${formatNumber(figure.value)} ${figure.unit}`.trim();
}

/** The Markdown table (rows with no figure on any engine left out), the load averages, then the bounds. */
export function formatSideBySide(runs: EngineRun[]): string {
  const find = (run: EngineRun, scenario: string, metric: string) => run.figures.find((f) => f.scenario === scenario && f.metric === metric);
  const rows = SIDE_BY_SIDE_ROWS.map((row) => [row.label, ...runs.map((run) => cell(find(run, row.scenario, row.metric)))]).filter((cells) =>
    cells.slice(1).some((c) => c !== ''),
  );
  const failed = runs.map((run) => run.figures.filter((f) => f.metric === 'scenario failed').map((f) => f.scenario).join(', '));
  if (failed.some(Boolean)) rows.push(['scenarios that failed', ...failed.map((f) => f || 'none')]);
  rows.push(['load average (1 min) at start / end', ...runs.map((run) => `${run.loadAverage.start.toFixed(1)} / ${run.loadAverage.end.toFixed(1)}`)]);
  const header = ['figure', ...runs.map((run) => run.engine)];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  const table = [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
  const bounds = runs.flatMap((run) =>
    BOUND_SCENARIOS.map((scenario) => {
      const note = find(run, scenario, 'bound')?.note;
      return note ? `- ${run.engine}, ${scenario}: ${note}` : null;
    }).filter((l): l is string => l !== null),
  );
  return `${table}\n\nWhat bounded each phase (server metrics per unit, PostgreSQL's commonest wait, machine CPU):\n${bounds.join('\n')}`;
}
