// Spaces this worker's sends evenly so that no one-second window holds more than EMAIL_MAX_PER_SECOND.
// Temporal's task-queue limit caps all workers together but lets a second's worth through in a burst;
// this gate smooths the burst that reaches one worker.
/** Resolves at this send's turn; rejects if `signal` aborts first (the attempt timed out or was cancelled). */
export type SendPacer = (signal?: AbortSignal) => Promise<void>;

export function createSendPacer(perSecond: number | undefined): SendPacer {
  if (!perSecond) return async (signal) => signal?.throwIfAborted();
  // 10 % over the exact spacing: requests leave a loaded machine with jitter, and the cap is what
  // Postmark sees (docs/performance.md, What was tuned).
  const spacingMs = Math.ceil((1000 / perSecond) * 1.1);
  // One turn at a time, spaced from when the previous one really went: timers that a busy worker runs late
  // would otherwise fire together and let a burst through.
  let lastAt = -Infinity;
  let queue: Promise<void> = Promise.resolve();
  return (signal) => {
    signal?.throwIfAborted();
    const turn = queue.then(async () => {
      signal?.throwIfAborted();
      const waitMs = lastAt + spacingMs - performance.now();
      if (waitMs > 0) await abortableDelay(waitMs, signal);
      lastAt = performance.now();
    });
    // A turn given up (aborted) takes no slot; the next one goes on.
    queue = turn.catch(() => undefined);
    return signal ? untilAborted(turn, signal) : turn;
  };
}

/** `turn`, or a rejection as soon as `signal` aborts (a waiter far back in the queue does not wait to learn it). */
function untilAborted(turn: Promise<void>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    turn.then(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : abortReason(signal));
      },
    );
  });
}

const abortReason = (signal: AbortSignal | undefined) =>
  signal?.reason instanceof Error ? signal.reason : new Error('the send was cancelled while waiting for its turn');

function abortableDelay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
