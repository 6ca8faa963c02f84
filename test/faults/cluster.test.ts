/**
 * Faults of a real cluster: docker-compose.yml's Temporal with its services apart (frontend, matching,
 * worker and two history hosts, each its own process; scripts/devtools/cluster.ts), on a PostgreSQL server
 * of this file's own, so that it too can be restarted. In each test a fan-in with digests on (several users,
 * each with tokens whose reminders fall due within two seconds) is hit as its first email arrives: (a) one
 * history host killed (its shards move to the other), (b) matching restarted, (c) the frontend restarted,
 * (d) PostgreSQL restarted under the server and the worker. Each asserts that every reminder reached its
 * owner exactly once, and prints (does not assert) how late the worst one was. docs/cluster-faults.md.
 */
import { FaultStack, underTest, type TestToken } from '../helpers/faultStack';
import { readyForOurWorkflows } from '../helpers/engine';
import { eventually } from '../helpers/poll';

const SECOND = 1_000;
const REMINDERS = ['20s', '10s', 'expired'] as const;
const USERS = 4;
const TOKENS_PER_USER = 5;
/** Long enough for the tokens to be made and their workflows asleep before the first warning (20 s before expiry). */
const LIFETIME_MS = 32 * SECOND;
const stack = FaultStack.use('cluster-faults', {
  reminders: '20s,10s',
  engine: 'cluster',
  services: 'apart',
  shards: 8,
  // Seconds, as the reminders: a user's tokens falling due within it go in one email.
  digestWindow: '5s',
  spread: '0',
  ownPostgres: true,
});

beforeAll(() => stack.startWorker(), 120_000);

/** Users with tokens expiring close together: each user's within 2 s, all users' within 3 s. */
async function fanIn(label: string): Promise<TestToken[]> {
  // A new cluster's frontend, or one just restarted, may refuse a start with our search attributes until its cache
  // refreshes (a CI run's first token was refused so).
  await readyForOurWorkflows(stack.client);
  const expiresAt = Date.now() + LIFETIME_MS;
  const tokens: TestToken[] = [];
  for (let u = 0; u < USERS; u++) {
    const user = await stack.addUser();
    for (let t = 0; t < TOKENS_PER_USER; t++) {
      const offset = u * 250 + t * 400;
      tokens.push(await stack.createToken(user, expiresAt + offset - Date.now(), `${label}-${u + 1}-${t + 1}`));
    }
  }
  return tokens;
}

/** The reminder a message was for, from its dedupe key (token-expiry:<leader>:<reminder>:<due>[:partN]). */
const reminderOf = (key: string | undefined) => key?.split(':')[2];

/**
 * The fan-in, `fault` struck as its first email arrives, then the account: every reminder of every token in
 * exactly one email to its owner (each email links the tokens it covers), the table and workflows agreeing.
 */
async function fanInThrough(label: string, fault: () => Promise<void>): Promise<void> {
  const tokens = await fanIn(label);
  const ids = tokens.map((t) => t.id);
  await stack.waitUntilWaiting(ids, 120_000);
  const sentBefore = stack.postmark.sent.length;
  await eventually('the fan-in\'s first email', () => stack.postmark.sent.length > sentBefore, {
    timeoutMs: 90_000,
    intervalMs: 50,
    abort: () => stack.crashes()[0],
  });
  stack.note(`${label}: fault strikes`);
  await fault();
  stack.note(`${label}: fault over`);
  await stack.waitUntilClosed(ids, 240_000);

  const { rows } = await stack.finish(stack.created.map((t) => underTest(t, 'delivered')));
  const emails = stack.postmark.sent.slice(sentBefore);
  const covers = (body: string | undefined, id: string) => new RegExp(`from=${id}(?!\\d)`).test(body ?? '');
  const received = tokens.flatMap((token) =>
    REMINDERS.map((reminder) => {
      const mine = emails.filter((m) => m.To === token.user.email && reminderOf(m.Metadata.dedupe_key) === reminder && covers(m.TextBody, token.id));
      return { token: token.id, reminder, emails: mine.length, at: mine[0]?.receivedAt };
    }),
  );
  expect(received.map(({ token, reminder, emails: n }) => ({ token, reminder, emails: n }))).toEqual(
    tokens.flatMap((token) => REMINDERS.map((reminder) => ({ token: token.id, reminder, emails: 1 }))),
  );

  // How late each reminder reached its owner, against its own due time (an expired notice may wait up to the
  // digest window by design; a warning may go early for a digest). Printed for the doc, not asserted.
  const lateness = received.map(({ token, reminder, at }) => {
    const due = rows.find((r) => r.tokenId === token && r.reminder === reminder)?.dueAt;
    return { reminder, lateMs: at && due ? at.getTime() - due.getTime() : NaN };
  });
  const worst = (of: readonly string[]) => Math.max(...lateness.filter((l) => of.includes(l.reminder)).map((l) => l.lateMs));
  console.log(
    `cluster fault "${label}": ${tokens.length} tokens of ${USERS} users, ${received.length} reminders in ${emails.length} emails; ` +
      `worst lateness: warnings ${(worst(['20s', '10s']) / 1000).toFixed(1)} s, expired notices ${(worst(['expired']) / 1000).toFixed(1)} s (window 5 s)`,
  );
}

test('(a) one history host killed during a fan-in: its shards move to the other, every reminder once', async () => {
  const cluster = stack.cluster!;
  let killedAt = new Date();
  await fanInThrough('history-kill', async () => {
    killedAt = new Date();
    await cluster.stopProcess('history-1', { signal: 'SIGKILL' });
  });
  // The survivor takes shards over after the kill (it logs each it acquires). A fan-in that ends before the
  // membership notices the death is not a failure: wait for the takeover a while.
  const acquired = () =>
    cluster
      .output()
      .split('\n')
      .filter((line) => line.startsWith('[history-2] {') && line.includes('"Acquired shard"'))
      .filter((line) => Date.parse((JSON.parse(line.slice('[history-2] '.length)) as { ts: string }).ts) >= killedAt.getTime());
  for (let i = 0; i < 120 && acquired().length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 500));
  expect(acquired().length).toBeGreaterThan(0);
  await cluster.startProcess('history-1');
}, 300_000);

test('(b) matching restarted during a fan-in: every reminder once', async () => {
  await fanInThrough('matching-restart', async () => {
    await stack.cluster!.stopProcess('matching');
    await stack.cluster!.startProcess('matching');
  });
}, 300_000);

test('(c) the frontend restarted during a fan-in: every reminder once', async () => {
  await fanInThrough('frontend-restart', async () => {
    await stack.cluster!.stopProcess('frontend');
    await stack.cluster!.startProcess('frontend');
  });
}, 300_000);

test('(d) PostgreSQL restarted under the cluster and the worker during a fan-in: every reminder once', async () => {
  await fanInThrough('postgres-restart', () => stack.postgres!.restart());
}, 300_000);
