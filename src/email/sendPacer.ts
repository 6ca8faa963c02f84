// Spaces this worker's sends evenly so that no one-second window holds more than EMAIL_MAX_PER_SECOND.
// Temporal's task-queue limit caps all workers together but lets a second's worth through in a burst;
// this gate smooths the burst that reaches one worker.
export type SendPacer = () => Promise<void>;

export function createSendPacer(perSecond: number | undefined): SendPacer {
  if (!perSecond) return async () => undefined;
  // 10 % over the exact spacing: requests leave a loaded machine with jitter, and the cap is what
  // Postmark sees (README, Performance).
  const spacingMs = Math.ceil((1000 / perSecond) * 1.1);
  let nextAt = 0;
  return async () => {
    const now = Date.now();
    const at = Math.max(now, nextAt);
    nextAt = at + spacingMs;
    if (at > now) await new Promise((resolve) => setTimeout(resolve, at - now));
  };
}
