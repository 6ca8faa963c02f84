// create: what starting the expiry workflow adds to creating a token. The same TokenService.create
// runs with an expiry (insert, workflow start, mark started) and without (insert only), alternately,
// one at a time, with the worker running, after a warm-up.
import { performance } from 'node:perf_hooks';
import { Client } from '@temporalio/client';
import { insertUser } from '../../src/registry/builtin';
import { createTokenService } from '../../src/tokens/service';
import type { BenchOptions } from '../lib/options';
import { judged, reported } from '../lib/report';
import type { ScenarioResult } from '../lib/scenario';
import { withStack } from '../lib/stack';
import { sleep } from '../lib/workload';
import { round, summarize } from '../lib/stats';
import { registryAdapter } from '../../src/registry';

const DAY_MS = 86_400_000;
const WARM_UP = 50;
/**
 * Between pairs, the worker has this long to take the new workflow's first task, as it would between
 * two people creating tokens; back to back, each start queues behind the previous workflow's task on
 * the server's single SQLite connection (the backfill scenario measures that sustained case).
 */
const PAUSE_MS = 30;

export async function createScenario(options: BenchOptions): Promise<ScenarioResult> {
  return withStack(options, { scenario: 'create' }, async (stack) => {
    const login = 'bench-create';
    const user = await insertUser(stack.db, { login, email: 'bench-create@example.com', verified: true });
    // A client of its own whose workflow starts are timed, to split the added time into start and bookkeeping.
    const client = new Client({ connection: stack.client.connection, namespace: 'default' });
    const startRpc: number[] = [];
    const start = client.workflow.start.bind(client.workflow);
    client.workflow.start = (async (...args: Parameters<typeof start>) => {
      const began = performance.now();
      const handle = await start(...args);
      startRpc.push(performance.now() - began);
      return handle;
    }) as typeof start;
    const service = createTokenService({ registry: registryAdapter(stack.config), db: stack.db, temporal: async () => client, config: stack.config });

    let failures = 0;
    const createOne = async (withExpiry: boolean): Promise<number> => {
      const started = performance.now();
      const created = await service.create(user, {
        name: withExpiry ? 'ci-publish' : 'laptop',
        expiresAt: withExpiry ? new Date(Date.now() + 90 * DAY_MS) : null,
        crateScopes: null,
        endpointScopes: null,
      });
      const ms = performance.now() - started;
      if (withExpiry && (created.workflowError || !created.workflowId)) failures++;
      return ms;
    };

    for (let i = 0; i < WARM_UP; i++) {
      await createOne(true);
      await createOne(false);
    }
    const measure = async (pairs: number, pauseMs: number) => {
      startRpc.length = 0;
      const withWorkflow: number[] = [];
      const without: number[] = [];
      for (let i = 0; i < pairs; i++) {
        if (pauseMs > 0) await sleep(pauseMs);
        // Alternate which goes first, so that neither always follows the other's write.
        if (i % 2 === 0) {
          withWorkflow.push(await createOne(true));
          without.push(await createOne(false));
        } else {
          without.push(await createOne(false));
          withWorkflow.push(await createOne(true));
        }
      }
      const a = summarize(withWorkflow);
      const b = summarize(without);
      return { withExpiry: a, without: b, startCall: summarize(startRpc), added: { p50: a.p50 - b.p50, p99: a.p99 - b.p99 } };
    };

    const pauseMs = Number(process.env.BENCH_CREATE_PAUSE_MS ?? PAUSE_MS);
    stack.log(`measuring ${options.creates} creations with an expiry and ${options.creates} without, alternately, ${pauseMs} ms apart`);
    const paced = await measure(options.creates, pauseMs);
    const burstPairs = Math.min(200, options.creates);
    stack.log(`and ${burstPairs} of each back to back`);
    const burst = await measure(burstPairs, 0);
    const n = `${options.creates} each, ${pauseMs} ms apart`;
    return {
      figures: [
        judged('create', 'added by the workflow start, p50', paced.added.p50, 'ms', '<', 5, n),
        judged('create', 'added by the workflow start, p99', paced.added.p99, 'ms', '<', 20, n),
        reported('create', 'create with expiry, p50', paced.withExpiry.p50, 'ms', `p99 ${round(paced.withExpiry.p99)} ms`),
        reported('create', 'create without expiry, p50', paced.without.p50, 'ms', `p99 ${round(paced.without.p99)} ms`),
        reported('create', 'the start call alone, p50', paced.startCall.p50, 'ms', `p99 ${round(paced.startCall.p99)} ms`),
        reported('create', 'added, back to back, p50', burst.added.p50, 'ms', `p99 ${round(burst.added.p99)} ms, ${burstPairs} each`),
        judged('create', 'workflow starts that failed', failures, '', '=', 0),
      ],
      details: {
        pauseMs,
        paced: roundEach(paced),
        backToBack: { pairs: burstPairs, ...roundEach(burst) },
        failures,
      },
    };
  });
}

function roundEach(figures: Record<string, Record<string, number>>): Record<string, Record<string, number>> {
  return Object.fromEntries(
    Object.entries(figures).map(([name, values]) => [name, Object.fromEntries(Object.entries(values).map(([k, v]) => [k, round(v, 2)]))]),
  );
}
