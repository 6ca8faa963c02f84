import { createSendPacer } from '../src/email/sendPacer';

test('with a cap, no one-second window holds more sends than the cap, even when all ask at once', async () => {
  const pace = createSendPacer(10);
  const times: number[] = [];
  await Promise.all(Array.from({ length: 25 }, () => pace().then(() => times.push(performance.now()))));

  expect(busiestSecond(times)).toBeLessThanOrEqual(10);
});

/** At most `cap` times in any one-second window. */
function busiestSecond(times: number[]): number {
  return Math.max(...times.map((start) => times.filter((t) => t >= start && t < start + 1000).length));
}

test('a worker that stalls while sends wait does not let the late ones out together: still no second over the cap', async () => {
  const pace = createSendPacer(10);
  const times: number[] = [];
  const all = Promise.all(Array.from({ length: 25 }, () => pace().then(() => times.push(performance.now()))));
  // The event loop blocked for 450 ms (a GC pause, a starved core): four turns fall due meanwhile.
  await new Promise((resolve) => setTimeout(resolve, 50));
  const until = performance.now() + 450;
  while (performance.now() < until);
  await all;

  expect(busiestSecond(times)).toBeLessThanOrEqual(10);
});

test('a send that gives up its turn (aborted) leaves at once and takes no slot from the others', async () => {
  const pace = createSendPacer(10);
  const gaveUp = new AbortController();
  const first = pace();
  const abandoned = pace(gaveUp.signal);
  const third = pace();
  await first;
  gaveUp.abort(new Error('the attempt timed out'));
  await expect(abandoned).rejects.toThrow('the attempt timed out');
  const waitedFrom = performance.now();
  await third;
  // The third goes one spacing after the first, not two: the abandoned turn took no slot.
  expect(performance.now() - waitedFrom).toBeLessThan(150);
});

test('without a cap, nobody waits for a timer', async () => {
  const pace = createSendPacer(undefined);
  const all = Promise.all(Array.from({ length: 100 }, () => pace())).then(() => 'all through');
  const timer = new Promise((resolve) => setImmediate(() => resolve('had to wait')));
  expect(await Promise.race([all, timer])).toBe('all through');
});
