// The progress bar the long-running commands (backfill, replan) draw on stderr at a terminal.

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** Redraws the line in place: "[#####-----] text", the bar as wide as the terminal leaves room for. */
export function drawProgressBar(stream: ProgressStream, fraction: number, text: string): void {
  const clamped = Math.min(1, Math.max(0, fraction));
  const width = Math.max(10, Math.min(40, (stream.columns ?? 80) - text.length - 4));
  const filled = Math.round(clamped * width);
  stream.write(`\r\x1b[K[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${text}`);
}

/** Per second, from a count and the time it took: "152/s". */
export function ratePerSecond(done: number, elapsedMs: number): string {
  return `${Math.round(done / Math.max(elapsedMs / 1000, 0.001))}/s`;
}
