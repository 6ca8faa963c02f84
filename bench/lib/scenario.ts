import type { BenchOptions } from './options';
import type { Figure } from './report';

/** What a scenario hands back: its rows of the table, and the raw figures behind them for the JSON. */
export interface ScenarioResult {
  figures: Figure[];
  details: Record<string, unknown>;
}

export type Scenario = (options: BenchOptions) => Promise<ScenarioResult>;
