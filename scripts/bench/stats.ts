// Figures of the bench harness: percentiles, and the one way a figure is printed — a measured
// value next to its baseline from the same run, and their ratio. The smoke test reads these
// lines (`figure <name>: …`), so every scenario prints through `printFigure`.

/** The value at percentile `p` (0–100) of ascending `sorted` values (nearest rank). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[
    Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  ]!;
}

export const median = (values: readonly number[]) =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  );

/** p50, p99 and max of latencies in milliseconds. */
export function latencySummary(latencies: readonly number[]) {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? Number.NaN,
  };
}

export interface Measure {
  /** What was measured, e.g. "vlogflow probe". */
  label: string;
  value: number;
  /** e.g. "ms", "jobs/s", "s". */
  unit: string;
}

const shown = (measure: Measure) =>
  `${measure.value >= 100 ? measure.value.toFixed(0) : measure.value.toFixed(measure.value >= 10 ? 1 : 2)} ${measure.unit} (${measure.label})`;

/** Prints `figure <name>: measured ÷ baseline = ratio`, with the target when there is one. */
export function printFigure(
  name: string,
  measured: Measure,
  baseline: Measure,
  target?: string,
): number {
  const ratio = measured.value / baseline.value;
  console.log(
    `figure ${name}: ${shown(measured)} ÷ ${shown(baseline)} = ${ratio.toFixed(2)}${target ? `  [target ${target}]` : ''}`,
  );
  return ratio;
}

/** Prints a measurement that is not a ratio (counts of errors, what a ratio was made of). */
export function printNote(text: string): void {
  console.log(`  ${text}`);
}
