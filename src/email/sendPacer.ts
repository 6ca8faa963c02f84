// Spaces this worker's sends evenly so that no one-second window holds more than EMAIL_MAX_PER_SECOND.
// Temporal's task-queue limit caps all workers together but lets a second's worth through in a burst;
// this gate smooths the burst that reaches one worker.
/** Resolves at this send's turn; rejects if `signal` aborts first (the attempt timed out or was cancelled). */
export type SendPacer = (signal?: AbortSignal) => Promise<void>;

export function createSendPacer(perSecond: number | undefined): SendPacer {
  if (!perSecond) return async (signal) => signal?.throwIfAborted();
  // 10 % over the exact spacing: requests leave a loaded machine with jitter, and the cap is what
  // Postmark sees (docs/performance.md).
  const spacingMs = Math.ceil((1000 / perSecond) * 1.1);
  let nextAt = 0;
  return async (signal) => {
    signal?.throwIfAborted();
    const now = Date.now();
    const at = Math.max(now, nextAt);
    nextAt = at + spacingMs;
    if (at > now) await abortableDelay(at - now, signal);
  };
}

function abortableDelay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason instanceof Error ? signal.reason : new Error('the send was cancelled while waiting for its turn'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
