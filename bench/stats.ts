/**
 * Small numeric helpers for the benchmark: percentiles of one round, and the summary of a figure
 * over repeated rounds (median, with the min–max spread across rounds).
 */

/** Nearest-rank percentile of unsorted samples (`p` in 0..100). NaN when there are none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function median(samples: readonly number[]): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** One figure for one subject: the median over rounds and the spread of the rounds. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  /** Every round's value, in the order the rounds ran. */
  rounds: number[];
}

export function summarize(rounds: readonly number[]): Summary {
  const finite = rounds.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, rounds: [...rounds] };
  return { median: median(finite), min: Math.min(...finite), max: Math.max(...finite), rounds: [...rounds] };
}

/** Half the min–max range as a percentage of the median (the "±" shown in the table). */
export function spreadPercent(s: Summary): number {
  if (!Number.isFinite(s.median) || s.median === 0) return Number.NaN;
  return ((s.max - s.min) / 2 / Math.abs(s.median)) * 100;
}

export function round(value: number, digits = 3): number {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
