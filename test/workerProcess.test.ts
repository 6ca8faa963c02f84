/**
 * The worker as ops run it: JSON log lines without addresses, Prometheus metrics with the email counter,
 * SIGTERM letting a send under way finish; and the search attributes it registers on a bare server.
 */
import { Client, Connection } from '@temporalio/client';
import { searchAttributeRegistrations } from '../src/tokenExpiry/contract';
import { ensureSearchAttributes } from '../src/temporal/connection';
import { CliProcess } from './helpers/cliProcess';
import { freePort, startDevServer } from '../scripts/devtools/devServer';
import { FaultStack } from './helpers/faultStack';
import { eventually } from './helpers/poll';

const SECOND = 1_000;
const stack = FaultStack.use('worker-process', { reminders: '3s', expiredNotice: false });

test('metrics, JSON logs, and a graceful stop that finishes the send under way', async () => {
  const metricsPort = await freePort();
  const worker = CliProcess.start('worker', ['worker'], stack.env('token-expiry-worker', { METRICS_PORT: String(metricsPort) }));
  try {
    await worker.waitForLog('polling', (line) => line.message === 'Worker state changed' && line.state === 'RUNNING', 90_000);
    const first = await stack.createToken(await stack.addUser(), 5 * SECOND);
    await eventually('the first reminder is sent', async () => (await stack.rows([first.id]))[0]?.status === 'sent', {
      timeoutMs: 60_000,
    });

    // The SDK exports metrics on its own schedule, shortly after the row is written: poll for the counter.
    let metrics = '';
    await eventually(
      'the email counter is exported',
      async () => {
        metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        return /token_expiry_emails\{[^}]*outcome="sent"[^}]*\} 1\b/.test(metrics);
      },
      { timeoutMs: 30_000 },
    );
    expect(metrics).toContain('temporal_activity_execution_latency');

    // A slow Postmark: the next send is still waiting for its answer when SIGTERM arrives.
    stack.postmark.latencyMs = 5 * SECOND;
    const second = await stack.createToken(await stack.addUser(), 5 * SECOND);
    await eventually('the second send is under way', async () => (await stack.rows([second.id]))[0]?.claimed === true, {
      timeoutMs: 60_000,
    });
    const exit = await worker.stop();

    expect(exit).toMatchObject({ code: 0, signal: null });
    expect((await stack.rows([second.id]))[0]).toMatchObject({ status: 'sent', attempts: 1 });
    expect(stack.postmark.sent.filter((m) => m.To === second.user.email)).toHaveLength(1);

    const logged = worker.lines.filter((l) => l.stream === 'stderr').map((l) => l.text);
    expect(logged.length).toBeGreaterThan(5);
    for (const line of logged) expect(() => JSON.parse(line)).not.toThrow();
    expect(worker.jsonLines()).toContainEqual(expect.objectContaining({ message: 'email sent', tokenId: second.id }));
    expect(worker.jsonLines()).toContainEqual(
      expect.objectContaining({ message: 'search attributes ready', added: [], missing: [] }),
    );
    for (const user of stack.users) expect(logged.join('\n')).not.toContain(user.email);
  } finally {
    stack.postmark.latencyMs = 0;
    await worker.stop();
  }
});

test('on a server without our search attributes, the worker registers them, once', async () => {
  const server = await startDevServer({ ui: false, searchAttributes: [] });
  const connection = await Connection.connect({ address: server.address });
  try {
    const client = new Client({ connection });
    const names = searchAttributeRegistrations.map((a) => a.name).sort();

    expect((await ensureSearchAttributes(client, 'default')).added.sort()).toEqual(names);
    expect(await ensureSearchAttributes(client, 'default')).toEqual({ added: [], missing: [] });
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
    expect(Object.keys(customAttributes ?? {})).toEqual(expect.arrayContaining(names));
  } finally {
    await connection.close();
    await server.stop();
  }
});
