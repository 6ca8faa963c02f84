import { createSendPacer } from '../src/email/sendPacer';

test('with a cap, no one-second window holds more sends than the cap, even when all ask at once', async () => {
  const pace = createSendPacer(10);
  const times: number[] = [];
  await Promise.all(Array.from({ length: 25 }, () => pace().then(() => times.push(performance.now()))));

  times.sort((a, b) => a - b);
  for (const start of times) {
    expect(times.filter((t) => t >= start && t < start + 1000).length).toBeLessThanOrEqual(10);
  }
});

test('without a cap, nobody waits for a timer', async () => {
  const pace = createSendPacer(undefined);
  const all = Promise.all(Array.from({ length: 100 }, () => pace())).then(() => 'all through');
  const timer = new Promise((resolve) => setImmediate(() => resolve('had to wait')));
  expect(await Promise.race([all, timer])).toBe('all through');
});
