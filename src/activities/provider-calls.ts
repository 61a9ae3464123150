import { ApplicationFailure, CancelledFailure, Context, log } from '@temporalio/activity';
import { FailureCode, type ProviderFailureDetails } from '../jobs/failures.js';
import { ProviderError } from '../providers/types.js';

/**
 * What an activity throws for a provider call's error: the failure type is its code, permanent
 * ones are non-retryable, the provider's own retry delay (RetryInfo) sets the next attempt, and
 * the details name the provider (`provider`: its label, e.g. `gemini`).
 */
export function toFailure(error: unknown, context: Context, provider: string): unknown {
  // An aborted provider call after a cancellation is the cancellation, not a provider failure.
  if (context.cancellationSignal.aborted) return new CancelledFailure('cancelled');
  if (!(error instanceof ProviderError)) return error;
  if (error.providerSaid !== undefined) {
    log.warn('provider failure', { code: error.code, provider, providerSaid: error.providerSaid });
  }
  const delayMs = error.retryable ? retryDelayWithin(error.retryDelayMs, context) : undefined;
  return ApplicationFailure.create({
    message: error.message,
    type: error.code,
    nonRetryable: !error.retryable,
    details: [providerDetails(provider)],
    ...(delayMs !== undefined ? { nextRetryDelay: delayMs } : {}),
  });
}

/** The longest wait a provider's hint may ask of a step's next attempt. */
const maxHintedRetryDelayMs = 10 * 60_000;

/**
 * The provider's hint, held to the time its step has left: Temporal gives up a step at once,
 * as failed, when the retry it is told to wait for would start past the step's
 * schedule-to-close, so a 503 asking for a day failed its job after one try of three. Held to
 * that time, the step waits as asked for as long as it may, and its job's deadline ends it.
 */
function retryDelayWithin(hintMs: number | undefined, context: Context): number | undefined {
  if (hintMs === undefined) return undefined;
  const { scheduleToCloseTimeoutMs, scheduledTimestampMs } = context.info;
  const leftMs = scheduleToCloseTimeoutMs
    ? scheduledTimestampMs + scheduleToCloseTimeoutMs - Date.now() - 1_000
    : Number.POSITIVE_INFINITY;
  const delayMs = Math.min(hintMs, maxHintedRetryDelayMs, leftMs);
  return delayMs > 0 ? delayMs : undefined;
}

/** The details of a failure a provider's answer caused, naming the provider. */
export function providerDetails(provider: string): ProviderFailureDetails {
  return { provider };
}

/** A provider this worker was built with, or a non-retryable failure saying it is missing. */
export function required<T>(value: T | null, what: string): T {
  if (value === null) {
    throw ApplicationFailure.nonRetryable(
      `${what} is not configured on this worker`,
      FailureCode.PROVIDER_NOT_CONFIGURED,
    );
  }
  return value;
}

/** Times a model is asked again when its answer does not match the schema. */
export const answerRounds = 3;

export type Reading<T> = { value: T } | { problem: string };

/** Parses a model's text as JSON and hands it to `check`. */
export function readJsonAnswer<T>(text: string, check: (json: unknown) => Reading<T>): Reading<T> {
  // Said apart: a server that answers a streamed request with one JSON body (it ignored
  // `stream`) streams nothing, and "not JSON" sent its operator looking at the wrong thing.
  if (text.trim() === '') return { problem: 'the answer is empty' };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { problem: 'the answer is not JSON' };
  }
  return check(json);
}

/** Most characters of a rejection's problem quoted back to the model, in the job error and logs. */
const maxProblemChars = 500;

/** A rejected answer and the repair prompt that asks the model to correct it. */
export interface Repair {
  /** The rejected answer (the caller's bound on answers applies to it too). */
  answer: string;
  instruction: string;
}

function repairFor(answer: string, problem: string): Repair {
  return {
    answer,
    instruction:
      `That answer was rejected: ${problem}. Answer again with JSON only, following the ` +
      'schema, with every text within its limits.',
  };
}

/**
 * Asks a model until its answer reads as valid, at most `answerRounds` times; each round after
 * the first hands the model its rejected answer and why it was rejected (a repair prompt).
 * Provider errors become activity failures; answers that never fit end in a non-retryable
 * INVALID_PROVIDER_OUTPUT, since retrying the activity would only ask the same again.
 */
export async function askUntilValid<T>(options: {
  jobId: string;
  what: string;
  /** Who answers (its label, e.g. `gemini`), named in the failures. */
  provider: string;
  ask: (round: number, repair: Repair | null) => Promise<string>;
  read: (text: string) => Reading<T>;
}): Promise<T> {
  const context = Context.current();
  let problem = '';
  let repair: Repair | null = null;
  for (let round = 1; round <= answerRounds; round += 1) {
    let text: string;
    try {
      text = await options.ask(round, repair);
    } catch (error) {
      throw toFailure(error, context, options.provider);
    }
    const answer = options.read(text);
    if ('value' in answer) return answer.value;
    problem =
      answer.problem.length > maxProblemChars
        ? `${answer.problem.slice(0, maxProblemChars)}…`
        : answer.problem;
    repair = repairFor(text, problem);
    // The problem names what was wrong (JSON paths, limits), never the answer's own text.
    log.warn('model answer rejected', { jobId: options.jobId, what: options.what, round, problem });
  }
  throw ApplicationFailure.nonRetryable(
    `The ${options.what} did not match the expected schema after ${answerRounds} answers: ${problem}`,
    FailureCode.INVALID_PROVIDER_OUTPUT,
    providerDetails(options.provider),
  );
}
