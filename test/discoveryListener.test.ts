// The LISTEN side of discovery under a flood: any role that can connect can NOTIFY on the channel, so what
// waits while a batch is handled is capped; the rest is dropped, logged, and left to discovery and the sweep.
import { Client } from 'pg';
import { listenForTokenChanges } from '../src/discovery/listener';
import { TOKEN_CHANGE_CHANNEL } from '../src/registry/tokenChanges';
import { createScratchDatabase, type ScratchDatabase } from '../scripts/devtools/scratchDatabase';
import { adminDatabaseUrl } from './helpers/database';
import { eventually } from './helpers/poll';

jest.setTimeout(60_000);
let db: ScratchDatabase;

beforeAll(async () => {
  db = await createScratchDatabase(adminDatabaseUrl(), 'token_expiry_test_listener', 2);
});
afterAll(async () => db?.drop());

test('a flood of 20,000 ids while a batch is busy: at most 5,000 wait, the rest are dropped and logged', async () => {
  const batches: string[][] = [];
  const warnings: { message: string; meta?: Record<string, unknown> }[] = [];
  let releaseFirst!: () => void;
  const firstHeld = new Promise<void>((resolve) => (releaseFirst = resolve));
  let connected!: () => void;
  const ready = new Promise<void>((resolve) => (connected = resolve));
  const listener = listenForTokenChanges({
    connectionString: db.url,
    onTokens: async (ids) => {
      batches.push(ids);
      if (batches.length === 1) await firstHeld;
    },
    onConnected: () => connected(),
    log: { info: () => undefined, warn: (message, meta) => warnings.push({ message, meta }) },
  });
  const notifier = new Client({ connectionString: db.url });
  await notifier.connect();
  try {
    await ready;
    await notifier.query(`SELECT pg_notify($1, '1')`, [TOKEN_CHANGE_CHANNEL]);
    await eventually('the first batch is being handled', async () => batches.length === 1);
    // One transaction, 20,000 distinct ids, from a role that is not the registry.
    await notifier.query(`SELECT pg_notify($1, g::text) FROM generate_series(2, 20001) g`, [TOKEN_CHANGE_CHANNEL]);
    await eventually('the drop is logged', async () => warnings.some((w) => /dropped/.test(w.message)), { timeoutMs: 20_000 });
    releaseFirst();
    await eventually('the waiting ids are handed on', async () => batches.length >= 2, { timeoutMs: 20_000 });
    await listener.close();

    const handedOn = batches.slice(1).flat();
    expect(handedOn.length).toBe(5_000);
    expect(new Set(handedOn).size).toBe(5_000);
    const dropped = warnings.filter((w) => /dropped/.test(w.message)).reduce((sum, w) => sum + Number(w.meta?.dropped), 0);
    expect(dropped).toBe(15_000);
    expect(warnings[0]).toMatchObject({ message: expect.stringMatching(/discovery and the sweep will find those tokens/), meta: { cap: 5_000 } });
  } finally {
    releaseFirst();
    await notifier.end();
    await listener.close();
  }
});
