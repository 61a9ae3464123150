import { FailureCode } from '../jobs/failures.js';
import type { Providers } from '../providers/index.js';
import { ProviderError } from '../providers/types.js';
import { providerRequestDuration, providerRequests } from './metrics.js';

/** The `outcome` label of a provider call that threw. */
function outcomeOf(error: unknown, signal: AbortSignal | undefined): string {
  if (error instanceof ProviderError && error.code === FailureCode.PROVIDER_RATE_LIMITED)
    return 'rate_limited';
  if (signal?.aborted) return 'cancelled';
  if (error instanceof ProviderError && !error.retryable) return 'rejected';
  return 'error';
}

/** Runs one provider call, counting it and timing it under the provider's name (`gemini`, `veo`, `local`). */
async function metered<T>(
  name: string,
  operation: string,
  signal: AbortSignal | undefined,
  call: () => Promise<T>,
): Promise<T> {
  const provider = name.split(':')[0]!;
  const stopTimer = providerRequestDuration.startTimer({ provider, operation });
  try {
    const answer = await call();
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
 * the activities call them as they are.
 */
export function meterProviders(providers: Providers): Providers {
  const { analyzer, videoGenerator, textGenerator } = providers;
  return {
    ...providers,
    analyzer: analyzer && {
      name: analyzer.name,
      analyze: (request) =>
        metered(analyzer.name, 'analyze_media', request.signal, () => analyzer.analyze(request)),
    },
    videoGenerator: videoGenerator && {
      name: videoGenerator.name,
      start: (request, context) =>
        metered(videoGenerator.name, 'start_video_generation', context.signal, () =>
          videoGenerator.start(request, context),
        ),
      check: (operationName) =>
        metered(videoGenerator.name, 'check_video_generation', undefined, () =>
          videoGenerator.check(operationName),
        ),
    },
    textGenerator: textGenerator && {
      name: textGenerator.name,
      model: textGenerator.model,
      generateJson: (request) =>
        metered(textGenerator.name, 'generate_text', request.signal, () =>
          textGenerator.generateJson(request),
        ),
    },
  };
}
