/**
 * What ops see of one activity run outside a worker: the counters the worker would export (METRICS_PORT) and the
 * log lines, as MockActivityEnvironment hands them to a meter and a logger.
 */
import { noopMetricMeter, type MetricCounter, type MetricMeter } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger, type LogEntry } from '@temporalio/worker';
import { SEND_ACTIVITY_TIMEOUT_MS } from '../../src/tokenExpiry/lease';

interface Counted {
  name: string;
  unit?: string;
  description?: string;
  value: number;
  tags: Record<string, unknown>;
}

// The activity's own tags; the mock adds the activity's (namespace, task queue, type) to some of them.
const OWN_TAGS = ['outcome', 'type', 'write'] as const;

export async function observe<A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A) {
  const counted: Counted[] = [];
  const meter: MetricMeter = {
    createCounter: (name, unit, description) => {
      const counter: MetricCounter = {
        name,
        unit,
        description,
        kind: 'counter',
        valueType: 'int',
        add: (value, tags = {}) => {
          const own = Object.fromEntries(OWN_TAGS.filter((key) => key in tags).map((key) => [key, tags[key]]));
          counted.push({ name, unit, description, value, tags: own });
        },
        withTags: () => counter,
      };
      return counter;
    },
    createHistogram: (...a) => noopMetricMeter.createHistogram(...a),
    createGauge: (...a) => noopMetricMeter.createGauge(...a),
    withTags: () => meter,
  };
  const logs: LogEntry[] = [];
  const env = new MockActivityEnvironment(
    { startToCloseTimeoutMs: SEND_ACTIVITY_TIMEOUT_MS },
    { logger: new DefaultLogger('INFO', (entry) => logs.push(entry)), metricMeter: meter },
  );
  const outcome: { result?: R; error?: unknown } = await env.run(fn, ...args).then(
    (result) => ({ result: result as R }),
    (error: unknown) => ({ error }),
  );
  const emails = counted.filter((c) => c.name === 'token_expiry_emails').map((c) => ({ ...c.tags, value: c.value }));
  const at = (level: LogEntry['level']) => logs.filter((l) => l.level === level).map((l) => ({ message: l.message, ...l.meta }));
  return { ...outcome, counted, emails, lines: at('INFO'), warnings: at('WARN'), logText: JSON.stringify(logs.map((l) => [l.message, l.meta])) };
}
