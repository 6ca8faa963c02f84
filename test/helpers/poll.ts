/**
 * Waiting for a condition instead of for a time: the fault tests share a loaded 2-core machine, so every
 * wait is "until this holds, or give up after a generous deadline", never "sleep N seconds and assert".
 */

export interface PollOptions {
  /** Give up after this long (default 60 s). */
  timeoutMs?: number;
  /** Pause between probes (default 250 ms). */
  intervalMs?: number;
  /** Checked before each probe; a message stops the wait at once (e.g. "the worker crashed"). */
  abort?: () => string | undefined;
}

export const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Probes until it returns something other than undefined, null or false, and returns that. A probe that
 * throws counts as "not yet" (a connection killed on purpose, a server restarting); the last error is
 * reported if the deadline passes.
 */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  { timeoutMs = 60_000, intervalMs = 250, abort }: PollOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = 'no probe finished';
  for (;;) {
    const stop = abort?.();
    if (stop) throw new Error(`${what}: gave up waiting: ${stop}`);
    try {
      const value = await probe();
      if (value !== undefined && value !== null && value !== false) return value;
      last = 'condition not met yet';
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? last.message : String(last);
      throw new Error(`${what}: not within ${Math.round(timeoutMs / 1000)} s (last: ${detail})`);
    }
    await pause(intervalMs);
  }
}
