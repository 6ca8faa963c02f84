// Durations as people write them in config and on the command line: 90d, 12h, 30m, 45s.
const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
type Unit = keyof typeof UNIT_MS;

const DURATION = /^([1-9][0-9]{0,6})([smhd])$/;

export const DURATION_HINT = 'use e.g. 7d, 12h, 30m, 45s';

/** Parses "7d" into milliseconds; returns null when the text is not a duration. */
export function parseDuration(text: string): number | null {
  const match = DURATION.exec(text.trim());
  if (!match) return null;
  return Number(match[1]) * UNIT_MS[match[2] as Unit];
}

/** The shortest exact label for a duration: 604800000 -> "7d", 90000 -> "90s". */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm'] as const) {
    if (ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  }
  return `${Math.round(ms / 1000)}s`;
}
