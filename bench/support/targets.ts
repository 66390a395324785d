// Figures against their targets, for every benchmark the same way: percentiles of a sample, and a
// verdict that says whether a figure met its target. A verdict is reported, never enforced.

/** The nearest-rank p-th percentile (0 < p <= 100) of sorted values; NaN when there are none. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

/** The median, 99th percentile and maximum of a sample. */
export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** Summarises values in any order; every figure is NaN for an empty sample. */
export function summarize(values: readonly number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? NaN,
  };
}

/** A target on a figure: at most or at least a value. */
export interface Target {
  readonly atMost?: number;
  readonly atLeast?: number;
}

/** "met" when value satisfies every bound of target; "missed" otherwise, NaN included. */
export function verdict(value: number, target: Target): 'met' | 'missed' {
  if (Number.isNaN(value)) return 'missed';
  if (target.atMost !== undefined && value > target.atMost) return 'missed';
  if (target.atLeast !== undefined && value < target.atLeast) return 'missed';
  return 'met';
}

/** The target as the report prints it, e.g. "target <= 500". */
export function describeTarget(target: Target): string {
  return [
    ...(target.atMost === undefined ? [] : [`<= ${target.atMost}`]),
    ...(target.atLeast === undefined ? [] : [`>= ${target.atLeast}`]),
  ]
    .map((bound) => `target ${bound}`)
    .join(', ');
}
