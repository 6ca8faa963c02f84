/**
 * deploy/: the Grafana dashboard and the Prometheus alerts name only metrics, and labels of them, that a running
 * worker really exports (scraped from its /metrics after a send that failed once and then went out), and
 * docker-compose.yml wires them to the worker.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { freePort } from '../scripts/devtools/devServer';
import { CliProcess } from './helpers/cliProcess';
import { FaultStack } from './helpers/faultStack';
import { eventually } from './helpers/poll';

const root = path.resolve(__dirname, '..');
const deploy = (...parts: string[]) => path.join(root, 'deploy', ...parts);
const SECOND = 1_000;
// Prometheus's own series, not the worker's.
const PROMETHEUS_OWN = new Set(['up']);
// A minute's warning: the retries 10 and 20 s after the due time still find the token unexpired.
const stack = FaultStack.use('deploy', { reminders: '60s', expiredNotice: false });

/** Every PromQL expression in the dashboards and the alert rules. */
function expressions(): { file: string; expr: string }[] {
  const found: { file: string; expr: string }[] = [];
  for (const file of readdirSync(deploy('grafana', 'dashboards'))) {
    const dashboard = JSON.parse(readFileSync(deploy('grafana', 'dashboards', file), 'utf8')) as {
      panels: { targets?: { expr: string }[] }[];
    };
    for (const panel of dashboard.panels) for (const target of panel.targets ?? []) found.push({ file, expr: target.expr });
  }
  const rules = parse(readFileSync(deploy('prometheus', 'alerts.yml'), 'utf8')) as { groups: { rules: { expr: string }[] }[] };
  for (const group of rules.groups) for (const rule of group.rules) found.push({ file: 'alerts.yml', expr: rule.expr });
  return found;
}

/** The metric names an expression reads: identifiers followed by a selector or a range, or standing alone. */
function metricNames(expr: string): string[] {
  const withoutStrings = expr.replace(/"[^"]*"/g, '""');
  const withoutLabels = withoutStrings.replace(/\{[^}]*\}/g, '{}').replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, '');
  return [...withoutLabels.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g)]
    .map((m) => m[1]!)
    .filter((name) => !/^(and|or|unless|le|\d.*)$/.test(name) && !/^\d/.test(name) && !['m', 'h', 'd', 's'].includes(name))
    .filter((name) => name.includes('_') || PROMETHEUS_OWN.has(name));
}

/** The labels each selector of an expression matches on: `metric{label="..."}` gives metric -> [label]. */
function selectorLabels(expr: string): { name: string; labels: string[] }[] {
  return [...expr.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}/g)].map((m) => ({
    name: m[1]!,
    labels: [...m[2]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]!),
  }));
}

test('the dashboard and the alerts name only metrics, and labels of them, that the worker exports', async () => {
  const metricsPort = await freePort();
  const worker = CliProcess.start('worker', ['worker'], stack.env('token-expiry-worker', { METRICS_PORT: String(metricsPort) }));
  try {
    await worker.waitForLog('polling', (line) => line.message === 'Worker state changed' && line.state === 'RUNNING', 90_000);
    // Two failed attempts (the local first try, then one queued one) before it goes out: the failure counters exist.
    stack.postmark.failNext(2, { status: 500 });
    const token = await stack.createToken(await stack.addUser(), 65 * SECOND);
    await eventually('the reminder is sent', async () => (await stack.rows([token.id]))[0]?.status === 'sent', { timeoutMs: 90_000 });

    const exported = new Set<string>();
    const labelsOf = new Map<string, Set<string>>();
    await eventually(
      'the email counter and the failure counter are exported',
      async () => {
        const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        for (const line of text.split('\n')) {
          if (!line || line.startsWith('#')) continue;
          const name = line.split(/[{\s]/, 1)[0]!;
          exported.add(name);
          const labels = labelsOf.get(name) ?? new Set<string>();
          for (const [, label] of line.matchAll(/[{,]([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(label!);
          labelsOf.set(name, labels);
        }
        return exported.has('token_expiry_emails') && exported.has('temporal_activity_execution_failed');
      },
      { timeoutMs: 30_000 },
    );

    const named = expressions().flatMap(({ file, expr }) => metricNames(expr).map((name) => `${file}: ${name}`));
    expect(named.length).toBeGreaterThan(10);
    const unknown = named.filter((entry) => {
      const name = entry.split(': ')[1]!;
      return !PROMETHEUS_OWN.has(name) && !exported.has(name);
    });
    expect(unknown).toEqual([]);
    // Every instance's series apart (the task queue carries the instance): the labels filtered on are exported.
    const missingLabels = expressions().flatMap(({ file, expr }) =>
      selectorLabels(expr)
        .filter(({ name }) => !PROMETHEUS_OWN.has(name))
        .flatMap(({ name, labels }) => labels.filter((label) => !labelsOf.get(name)?.has(label)).map((label) => `${file}: ${name}{${label}}`)),
    );
    expect(missingLabels).toEqual([]);
  } finally {
    await worker.stop();
  }
}, 180_000);

test('the metric-name reader finds names, not functions, labels or keywords; the label reader the labels of each selector', () => {
  expect(
    metricNames('histogram_quantile(0.99, sum by (le) (rate(temporal_x_bucket{activity_type="send_reminder"}[5m]))) or vector(0) > 0'),
  ).toEqual(['temporal_x_bucket']);
  expect(metricNames('absent(up{job="w"} == 1) or sum(token_expiry_emails) == 0')).toEqual(['up', 'token_expiry_emails']);
  expect(selectorLabels('sum by (le) (rate(temporal_x_bucket{activity_type="a", task_queue=~"$task_queue"}[5m])) or token_expiry_emails')).toEqual([
    { name: 'temporal_x_bucket', labels: ['activity_type', 'task_queue'] },
  ]);
});

test('docker-compose.yml runs Prometheus on the worker with the alerts, and Grafana with the dashboard', () => {
  const compose = parse(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, { volumes?: string[]; environment?: Record<string, string> }>;
  };
  const prometheus = parse(readFileSync(deploy('prometheus', 'prometheus.yml'), 'utf8')) as {
    rule_files: string[];
    scrape_configs: { static_configs: { targets: string[] }[] }[];
  };
  const metricsPort = compose.services.worker?.environment?.METRICS_PORT;
  expect(prometheus.scrape_configs[0]?.static_configs[0]?.targets).toEqual([`worker:${metricsPort}`]);
  expect(compose.services.prometheus?.volumes).toEqual([
    './deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro',
    `./deploy/prometheus/alerts.yml:${prometheus.rule_files[0]}:ro`,
  ]);
  expect(compose.services.grafana?.volumes).toEqual(
    expect.arrayContaining(['./deploy/grafana/provisioning:/etc/grafana/provisioning:ro', './deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro']),
  );
  const provider = parse(readFileSync(deploy('grafana', 'provisioning', 'dashboards', 'token-expiry.yml'), 'utf8')) as {
    providers: { options: { path: string } }[];
  };
  expect(provider.providers[0]?.options.path).toBe('/var/lib/grafana/dashboards');
});
