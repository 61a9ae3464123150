import { FailureCode } from '../jobs/failures.js';
import type { Providers } from '../providers/index.js';
import { ProviderError, providerOf } from '../providers/types.js';
import type { TraceProviderCall } from '../tracing/index.js';
import { providerRequestDuration, providerRequests } from './metrics.js';

const outcomes = ['ok', 'rate_limited', 'rejected', 'error', 'cancelled'] as const;

/** The `outcome` label of a provider call that threw. */
function outcomeOf(error: unknown, signal: AbortSignal | undefined): (typeof outcomes)[number] {
  if (error instanceof ProviderError && error.code === FailureCode.PROVIDER_RATE_LIMITED)
    return 'rate_limited';
  if (signal?.aborted) return 'cancelled';
  if (error instanceof ProviderError && !error.retryable) return 'rejected';
  return 'error';
}

/**
 * Puts a provider's counters at 0 for each of its operations and outcomes, so that its first
 * 429 is an increase for the alert rules (`increase()` sees nothing in a first sample).
 */
function zeroProviderCounters(provider: string, operations: string[]): void {
  for (const operation of operations)
    for (const outcome of outcomes) providerRequests.inc({ provider, operation, outcome }, 0);
}

/** Runs one provider call, counting it and timing it, in a span of its own when traced. */
async function metered<T>(
  provider: string,
  operation: string,
  signal: AbortSignal | undefined,
  call: () => Promise<T>,
  traced: TraceProviderCall | undefined,
): Promise<T> {
  const stopTimer = providerRequestDuration.startTimer({ provider, operation });
  try {
    const answer = await (traced
      ? traced({ provider, operation }, call, (error) => outcomeOf(error, signal))
      : call());
    providerRequests.inc({ provider, operation, outcome: 'ok' });
    return answer;
  } catch (error) {
    providerRequests.inc({ provider, operation, outcome: outcomeOf(error, signal) });
    throw error;
  } finally {
    stopTimer();
  }
}

/**
 * The providers with every call counted and timed (`vlogflow_provider_requests_total`,
 * `vlogflow_provider_request_duration_seconds`), whichever provider the configuration chose:
 * the activities call them as they are. With tracing on, each call is also a span (named
 * `<provider> <operation>`, labelled with its outcome) inside its activity's.
 */
export function meterProviders(providers: Providers, traced?: TraceProviderCall): Providers {
  const { analyzer, videoGenerator, textGenerator } = providers;
  const analysis = analyzer && providerOf(analyzer.name);
  const video = videoGenerator && providerOf(videoGenerator.name);
  if (analysis) zeroProviderCounters(analysis, ['analyze_media']);
  if (video) zeroProviderCounters(video, ['start_video_generation', 'check_video_generation']);
  if (textGenerator) zeroProviderCounters(textGenerator.provider, ['generate_text']);
  const measure = <T>(
    provider: string,
    operation: string,
    signal: AbortSignal | undefined,
    call: () => Promise<T>,
  ) => metered(provider, operation, signal, call, traced);
  return {
    ...providers,
    analyzer: analyzer && {
      name: analyzer.name,
      analyze: (request) =>
        measure(analysis!, 'analyze_media', request.signal, () => analyzer.analyze(request)),
    },
    videoGenerator: videoGenerator && {
      name: videoGenerator.name,
      ...(videoGenerator.remote !== undefined && { remote: videoGenerator.remote }),
      start: (request, context) =>
        measure(video!, 'start_video_generation', context.signal, () =>
          videoGenerator.start(request, context),
        ),
      check: (operationName, context) =>
        measure(video!, 'check_video_generation', context.signal, () =>
          videoGenerator.check(operationName, context),
        ),
    },
    textGenerator: textGenerator && {
      name: textGenerator.name,
      provider: textGenerator.provider,
      model: textGenerator.model,
      notice: textGenerator.notice,
      generateJson: (request) =>
        measure(textGenerator.provider, 'generate_text', request.signal, () =>
          textGenerator.generateJson(request),
        ),
    },
  };
}
