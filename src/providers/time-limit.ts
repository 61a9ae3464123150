import { FailureCode } from '../jobs/failures.js';
import { ProviderError } from './types.js';

/**
 * Runs one provider call under the caller's signal and a time limit, and lets go of both as
 * soon as the call settles. The call gets a signal that aborts on either; one that does not
 * honour it (@google/genai drops it on some paths) is given up on at the abort, its request
 * left to end by itself. Past the limit it fails as a retryable PROVIDER_UNAVAILABLE saying
 * what did not end in time; on the caller's abort, with the caller's reason.
 *
 * Not the clients' own limits: @google/genai keeps a successful request's timer armed (it
 * bounds a body the caller may still read) with its listener on the caller's signal, and
 * `AbortSignal.timeout` keeps its timer to the end. A timer started in an activity holds the
 * activity's context (its async store), so each finished call kept its activity in memory for
 * the whole limit: at a fast intake, 1,900 finished analyses at once.
 */
export async function withTimeLimit<T>(
  caller: AbortSignal,
  limitMs: number,
  what: string,
  call: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  caller.throwIfAborted();
  const controller = new AbortController();
  const { signal } = controller;
  const onCallerAbort = () => controller.abort(caller.reason);
  caller.addEventListener('abort', onCallerAbort, { once: true });
  const timer = setTimeout(() => {
    controller.abort(
      new ProviderError(
        FailureCode.PROVIDER_UNAVAILABLE,
        `${what} did not end within ${limitMs} ms`,
        true,
      ),
    );
  }, limitMs);
  try {
    return await new Promise<T>((resolve, reject) => {
      signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
      call(signal).then(resolve, reject);
    });
  } finally {
    clearTimeout(timer);
    caller.removeEventListener('abort', onCallerAbort);
  }
}
