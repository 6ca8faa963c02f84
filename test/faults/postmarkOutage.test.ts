/**
 * Fault 3: Postmark answers 503 to every send for a while, then recovers. Each reminder caught in the
 * outage is tried again 10 s after its first (local) try, then with the activity's backoff (10 s, then
 * 20 s: the outage is kept to three failures so that the test stays short) and goes out once.
 * Meanwhile an address Postmark refuses for good (422, ErrorCode 406, naming the address) fails at once,
 * with the reason recorded and the address nowhere.
 */
import { searchAttributes, tokenExpiryWorkflowId } from '../../src/tokenExpiry/contract';
import { FaultStack, keyPrefix, underTest, type TestToken } from '../helpers/faultStack';
import { eventually } from '../helpers/poll';
import { inactiveRecipientAnswer } from '../helpers/postmarkTap';
import { TEST_INSTANCE } from '../helpers/database';

const SECOND = 1_000;
// One warning 65 s ahead, and the expired notice: with an 80 s token the warning falls due 15 s in, and
// four attempts (0 s, +10 s, +20 s, +40 s) end well before the token expires.
const stack = FaultStack.use('postmark-outage', { reminders: '65s' });

test('Postmark answers 503 for a while, then recovers: everything goes out once, after a growing backoff', async () => {
  await stack.startWorker();
  const users = [await stack.addUser(), await stack.addUser(), await stack.addUser()];
  const bounced = await stack.addUser();
  let outage = true;
  stack.postmark.failWhile(() => (outage ? { status: 503 } : null));
  stack.tap.rule = (request) => (request.to === bounced.email ? inactiveRecipientAnswer(request.to) : null);

  const tokens: TestToken[] = [];
  for (const user of users) tokens.push(await stack.createToken(user, 80 * SECOND));
  const refused = await stack.createToken(bounced, 80 * SECOND);
  const ids = tokens.map((t) => t.id);

  // Let each warning fail three times, then end the outage before the fourth attempt.
  await eventually(
    'each warning failed three times',
    async () => {
      const warnings = (await stack.rows(ids)).filter((r) => r.reminder === '65s');
      return warnings.length === ids.length && warnings.every((r) => r.status === 'sending' && r.attempts >= 3 && !r.claimed);
    },
    { timeoutMs: 120_000, abort: () => stack.crashes()[0] },
  );
  outage = false;
  stack.note('Postmark answers again');

  await stack.waitUntilClosed([...ids, refused.id], 180_000);
  // Each warning's requests, as the tap saw them: status and time.
  const sendsOf = (token: { id: string }) =>
    stack.tap.log.filter((e) => e.method === 'POST' && e.dedupeKey?.startsWith(keyPrefix(token, '65s')));
  const backoff = Object.fromEntries(
    tokens.map((t) => [t.id, sendsOf(t).map((e, i, all) => ({ status: e.status, afterMs: i === 0 ? 0 : e.at.getTime() - all[i - 1]!.at.getTime() }))]),
  );
  const { rows } = await stack.finish(
    [...tokens.map((t) => underTest(t, 'delivered')), underTest(refused, 'inactive-recipient')],
    { backoff },
  );

  for (const token of tokens) {
    const warning = rows.find((r) => r.tokenId === token.id && r.reminder === '65s');
    expect(warning).toMatchObject({ status: 'sent', attempts: 4 });
    expect(warning?.lastError).toMatch(/^PostmarkUnavailable: Postmark 503/);
    expect(rows.find((r) => r.tokenId === token.id && r.reminder === 'expired')).toMatchObject({ status: 'sent', attempts: 1 });

    // Three 503s, then the send that went through: 10 s after the first try, then the backoff grows.
    const sends = sendsOf(token);
    expect(sends.map((e) => e.status)).toEqual([503, 503, 503, 200]);
    const [first, second, third, fourth] = sends.map((e) => e.at.getTime()) as [number, number, number, number];
    // Never sooner than the interval (10 s, 10 s, then 20 s); later is fine on a busy machine.
    expect(second - first).toBeGreaterThanOrEqual(9_500);
    expect(third - second).toBeGreaterThanOrEqual(9_500);
    expect(fourth - third).toBeGreaterThanOrEqual(19_000);
    expect(fourth - third).toBeGreaterThan(third - second);
  }
  // Before sending again, a retried attempt asks Postmark whether an earlier one got through.
  expect(stack.postmark.requests.some((r) => r.method === 'GET' && r.path === '/messages/outbound')).toBe(true);

  // The refused address: failed at the first attempt, recorded with its type, visible to ops.
  for (const reminder of ['65s', 'expired']) {
    expect(rows.find((r) => r.tokenId === refused.id && r.reminder === reminder)).toMatchObject({
      status: 'failed',
      attempts: 1,
      reason: expect.stringMatching(/^PostmarkInactiveRecipient: Postmark 422 \(ErrorCode 406\)/),
    });
  }
  const description = await stack.client.workflow.getHandle(tokenExpiryWorkflowId(refused.id, TEST_INSTANCE)).describe();
  expect(description.typedSearchAttributes.get(searchAttributes.lastFailure)).toBe('PostmarkInactiveRecipient');
}, 300_000);
