// The one table the bench prints, and the figures behind it.

export interface Figure {
  scenario: string;
  metric: string;
  /** The number, in `unit`; null when the scenario could not produce it. */
  value: number | null;
  unit: string;
  /** What it is held to, in words (e.g. "< 5 ms"); null for figures that are only reported. */
  target: string | null;
  /** Whether the target was met; null when there is no target or no value. */
  met: boolean | null;
  note?: string;
}

export type Comparison = '<' | '<=' | '>' | '>=' | '=';

/** A figure held to a numeric target. */
export function judged(
  scenario: string,
  metric: string,
  value: number | null,
  unit: string,
  comparison: Comparison,
  limit: number,
  note?: string,
): Figure {
  const ok =
    value === null || Number.isNaN(value)
      ? null
      : { '<': value < limit, '<=': value <= limit, '>': value > limit, '>=': value >= limit, '=': value === limit }[comparison];
  return { scenario, metric, value: clean(value), unit, target: `${comparison} ${formatNumber(limit)} ${unit}`.trim(), met: ok, note };
}

/** A figure that is only reported. */
export function reported(scenario: string, metric: string, value: number | null, unit: string, note?: string): Figure {
  return { scenario, metric, value: clean(value), unit, target: null, met: null, note };
}

/** A figure held to a target that is not a simple comparison (e.g. "flat"). */
export function assessed(
  scenario: string,
  metric: string,
  value: number | null,
  unit: string,
  target: string,
  met: boolean | null,
  note?: string,
): Figure {
  return { scenario, metric, value: clean(value), unit, target, met, note };
}

function clean(value: number | null): number | null {
  if (value === null || Number.isNaN(value)) return null;
  return Math.abs(value) >= 100 ? Math.round(value) : Math.round(value * 100) / 100;
}

export function formatNumber(value: number): string {
  if (Math.abs(value) >= 10_000) return value.toLocaleString('en-US', { maximumFractionDigits: 0 });
  if (Math.abs(value) >= 100) return String(Math.round(value));
  return String(Math.round(value * 100) / 100);
}

function figureText(f: Figure): string {
  if (f.value === null) return 'n/a';
  return `${formatNumber(f.value)} ${f.unit}`.trim();
}

/** A Markdown table: readable in a terminal and pastable into docs/performance.md. */
export function formatTable(figures: Figure[]): string {
  const rows = figures.map((f) => [
    f.scenario,
    f.note ? `${f.metric} (${f.note})` : f.metric,
    figureText(f),
    f.target ?? '',
    f.met === null ? (f.target ? '?' : '') : f.met ? 'yes' : 'NO',
  ]);
  const header = ['scenario', 'metric', 'figure', 'target', 'met?'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}
