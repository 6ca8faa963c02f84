/**
 * Fault 1: the worker is killed with SIGKILL twice, first while every workflow sleeps on its timer, then
 * while three sends are in flight (two accepted by a slow Postmark that has not answered yet, one not yet
 * delivered to Postmark at all), and started again each time. Every due email still goes out exactly once:
 * the accepted ones are found again by their dedupe key instead of being sent a second time.
 */
import { FaultStack, keyPrefix, underTest } from '../helpers/faultStack';
import { eventually } from '../helpers/poll';

const SECOND = 1_000;
// An 80 s warning leaves room for what a kill in flight costs (the 30 s activity timeout, the 45 s claim
// lease, the 10 s and 20 s retries) before the next reminder, 10 s ahead of expiry, falls due.
const stack = FaultStack.use('worker-kill', { reminders: '80s,10s' });

test('kill -9 while workflows sleep and while sends are in flight: each due email once', async () => {
  await stack.startWorker();
  const alice = await stack.addUser();
  const bob = await stack.addUser();
  const carol = await stack.addUser();
  const dave = await stack.addUser({ verified: false });

  // early's 80s warning falls due 5 s in, while no worker runs; the others' 35 s in, when sends are slowed.
  const early = await stack.createToken(alice, 85 * SECOND);
  const slow = await stack.createToken(alice, 115 * SECOND);
  const slow2 = await stack.createToken(bob, 115 * SECOND);
  const held = await stack.createToken(carol, 115 * SECOND);
  const unverified = await stack.createToken(dave, 115 * SECOND);
  const revoked = await stack.createToken(bob, 115 * SECOND);
  await stack.tokens.revoke(revoked.id);
  const sleeping = [early, slow, slow2, held, unverified];
  await stack.waitUntilWaiting(sleeping.map((t) => t.id));

  // 1. Every workflow sleeps: kill the worker, and let a reminder fall due while none runs.
  await stack.killWorker('while every workflow sleeps');
  const earlyDue = early.expiresAt.getTime() - 80 * SECOND;
  await eventually('early\'s warning due with no worker running', () => Date.now() > earlyDue + SECOND, { timeoutMs: 30_000 });
  await stack.startWorker();
  await eventually('early\'s warning sent by the new worker', async () =>
    (await stack.rows([early.id])).some((r) => r.reminder === '80s' && r.status === 'sent'),
    { timeoutMs: 90_000, abort: () => stack.crashes()[0] },
  );

  // 2. Sends in flight: Postmark accepts at once but answers only after 15 s (the worker's client waits
  // 20 s); carol's request is held back before it reaches Postmark at all.
  stack.postmark.latencyMs = 15 * SECOND;
  const heldKey = keyPrefix(held, '80s');
  stack.tap.rule = (request) => (request.dedupeKey?.startsWith(heldKey) ? { holdMs: 15 * SECOND } : null);
  const acceptedKeys = [keyPrefix(slow, '80s'), keyPrefix(slow2, '80s')];
  const acceptedBeforeKill = await eventually(
    'two sends accepted but unanswered, and one held before Postmark',
    () => {
      const accepted = acceptedKeys.map((prefix) => stack.postmark.sent.find((m) => m.Metadata.dedupe_key?.startsWith(prefix)));
      const heldInFlight = stack.tap.log.some((e) => e.dedupeKey?.startsWith(heldKey) && e.status === 0);
      return accepted.every((m) => m !== undefined) && heldInFlight ? accepted.map((m) => m!.MessageID) : undefined;
    },
    { timeoutMs: 90_000, abort: () => stack.crashes()[0] },
  );
  const inFlight = (await stack.rows([slow.id, slow2.id, held.id])).filter((r) => r.reminder === '80s');
  expect(inFlight.map((r) => [r.status, r.claimed])).toEqual([
    ['sending', true],
    ['sending', true],
    ['sending', true],
  ]);
  await stack.killWorker('while three sends are in flight');
  stack.postmark.latencyMs = 0;
  stack.tap.rule = null;
  await stack.startWorker();

  await stack.waitUntilClosed([...sleeping, revoked].map((t) => t.id), 240_000);
  const { rows } = await stack.finish(
    [
      underTest(early, 'delivered'),
      underTest(slow, 'delivered'),
      underTest(slow2, 'delivered'),
      underTest(held, 'delivered'),
      underTest(unverified, 'no-verified-email'),
      underTest(revoked, 'revoked'),
    ],
    { acceptedBeforeKill },
  );

  const row = (token: { id: string }, reminder: string) => rows.find((r) => r.tokenId === token.id && r.reminder === reminder);
  // The warning that fell due while no worker ran went out late, once.
  expect(row(early, '80s')).toMatchObject({ status: 'sent', attempts: 1 });
  // Accepted before the kill: recorded with the MessageID Postmark gave then, found by a later attempt's
  // search instead of being sent again; carol's, which never reached Postmark, sent by a later attempt.
  expect([row(slow, '80s')?.messageId, row(slow2, '80s')?.messageId]).toEqual(acceptedBeforeKill);
  for (const token of [slow, slow2, held]) {
    expect(row(token, '80s')?.status).toBe('sent');
    expect(row(token, '80s')?.attempts).toBeGreaterThanOrEqual(2);
  }
  const foundAgain = stack.workers.flatMap((w) => w.jsonLines()).filter((l) => l.message === 'email was sent by an earlier attempt');
  expect([...new Set(foundAgain.map((l) => String(l.tokenId)))].sort()).toEqual([slow.id, slow2.id].sort());
  expect(stack.tap.log.filter((e) => e.dedupeKey?.startsWith(heldKey)).map((e) => [e.answeredBy, e.callerGone])).toEqual([
    ['nobody', true],
    ['fake', false],
  ]);
}, 360_000);
