/**
 * The Temporal runtime's own metrics (`temporal_*`), which the SDK serves on a loopback port of
 * this process (`src/worker/runtime.ts` installs it). Kept apart from the runtime so that an
 * API process, which runs no worker, never loads the worker's native module.
 */

let sdkMetricsUrl: string | null = null;

/** Called once the runtime serves its metrics at `url`. */
export function setTemporalSdkMetricsUrl(url: string): void {
  sdkMetricsUrl = url;
}

/** The runtime's metrics in Prometheus text; empty in a process without a worker. */
export async function temporalSdkMetrics(): Promise<string> {
  if (sdkMetricsUrl === null) return '';
  const response = await fetch(sdkMetricsUrl, { signal: AbortSignal.timeout(5_000) });
  if (!response.ok) throw new Error(`the Temporal runtime's metrics answered ${response.status}`);
  return response.text();
}
