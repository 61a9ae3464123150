import { ActivityFailure, isCancellation, log } from '@temporalio/workflow';

/**
 * A scheduled run's step whose activity failure leaves its work to the next run: logged, and
 * `instead` taken for its result, so the run's other steps stand. A cancel still ends the run.
 */
export function leftToNextRun<T>(message: string, instead: T) {
  return (error: unknown): T => {
    if (!(error instanceof ActivityFailure) || isCancellation(error)) throw error;
    log.warn(message, { error: error.message });
    return instead;
  };
}
