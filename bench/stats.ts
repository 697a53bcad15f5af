/**
 * Figures that hold on a shared, noisy machine: every measurement is
 * repeated, targets are interleaved within each repetition, ratios are taken
 * per repetition (the two figures of a ratio ran seconds apart, under the
 * same load), and what is printed is the median with the spread (min-max).
 */

export interface Summary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

export function summarize(values: readonly number[]): Summary {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (s.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s.at(-1)!, n: s.length };
}

/** Ratios a[i] / b[i] of paired repetitions. */
export function pairedRatios(a: readonly number[], b: readonly number[]): number[] {
  return a.map((x, i) => x / b[i]!);
}

/** "1,234 (1,100-1,300)" with the given number of decimals. */
export function fmt(s: Summary, decimals = 0): string {
  const f = (x: number): string => x.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
  return `${f(s.median)} (${f(s.min)}-${f(s.max)})`;
}

/** Rotates a list by k: repetition k starts with a different target, so none always runs first. */
export function rotate<T>(list: readonly T[], k: number): T[] {
  const n = list.length;
  return list.map((_, i) => list[(i + k) % n]!);
}
