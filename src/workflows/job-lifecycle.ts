import {
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  setHandler,
  type ActivityOptions,
  type RetryPolicy,
} from '@temporalio/workflow';
import type { TaskQueueNames } from '../capacity/task-queues.js';
import { FailureCode, nonRetryableFailureCodes } from '../jobs/failures.js';
import type { JobRecord, ProviderRetrySettings } from '../jobs/contracts.js';
import { maxJobRetries, type JobError, type JobStatus } from '../jobs/model.js';
import type { ActivityPolicy } from '../kinds/declaration.js';
import { nextAttemptInputQuery, retryJobUpdate, retryRefusal } from './job-messages.js';
import {
  acceptCancelRequests,
  cancelledError,
  cancelledFailure,
  JobTracker,
  toJobError,
  type SnapshotChange,
} from './job-tracker.js';
import { AttemptDeadline } from './attempt-deadline.js';
import { awaitJobTurn } from './job-turn.js';

/** Retry policy of activities that call a paid provider: permanent failures are never retried. */
export function providerRetryPolicy(settings: ProviderRetrySettings): RetryPolicy {
  return {
    initialInterval: settings.initialIntervalMs,
    backoffCoefficient: 2,
    maximumInterval: settings.maximumIntervalMs,
    maximumAttempts: settings.maximumAttempts,
    nonRetryableErrorTypes: nonRetryableFailureCodes,
  };
}

/**
 * A kind's declared activity policy as `proxyActivities` takes it, `provider` resolved and the
 * task queue its domain's; without queue names (a run started before the queue map) the
 * activity runs on the workflow's own queue, as it did then.
 */
export function activityOptions(
  policy: ActivityPolicy,
  providerRetry: ProviderRetrySettings,
  taskQueues: TaskQueueNames | undefined,
): ActivityOptions {
  const { retry, domain, ...options } = policy;
  return {
    ...options,
    ...(taskQueues && { taskQueue: taskQueues[domain] }),
    retry: retry === 'provider' ? providerRetryPolicy(providerRetry) : retry,
  };
}

/** What the input of every retryable job workflow carries. */
export interface RetryableRun {
  job: JobRecord;
  /** 1 for the first run, +1 for each retry. */
  attempt: number;
  /** Projection sequence number reached by the previous run. */
  seq: number;
}

export interface RetryableJob<Input extends RetryableRun, Result> {
  input: Input;
  /** What the job is called in messages: "vlog", "AI job". */
  noun: string;
  /** Status (and first snapshot change) recorded as an attempt starts. */
  start: { status: JobStatus; change?: SnapshotChange };
  /**
   * Time an attempt may take, waits for a provider's quota not counted (AttemptDeadline); past
   * it the running step is cancelled and the job ends so.
   */
  deadline: { ms: number; status: 'failed' | 'timeout'; error: JobError };
  /** How long a failed or timed-out job stays open to a retry. */
  retryWindowMs: number;
  /**
   * The attempt's work, run in a scope that a cancel request or the deadline cancels; it waits
   * for a provider's quota through `deadline.notCounting`.
   */
  body: (tracker: JobTracker, deadline: AttemptDeadline) => Promise<Result>;
  /** Removes what a cancelled attempt half-made; runs although the workflow is being cancelled. */
  cleanup?: () => Promise<unknown>;
  /** The next attempt's input: the same job, continued as new with attempt + 1. */
  nextAttempt: (next: { attempt: number; seq: number }) => Input;
}

/**
 * The lifecycle every retryable job kind shares, so vlogs and AI jobs cancel, time out and
 * retry the same way: a job with a concurrency key first waits its turn (`queued`); a cancel
 * request ends that wait or stops the running step, runs the cleanup and ends the
 * job `cancelled` with the reason; the deadline ends it with its own status; a failed or
 * timed-out job stays open for a retry Update, accepted by continuing as new with attempt + 1.
 * A failed job no longer holds its key's turn: its retry enters the line again at its end,
 * behind the jobs that waited meanwhile.
 */
export async function runRetryableJob<Input extends RetryableRun, Result>(
  spec: RetryableJob<Input, Result>,
): Promise<Result> {
  const { input, noun } = spec;
  const tracker = new JobTracker(input.job, { attempt: input.attempt, seq: input.seq });
  const work = new CancellationScope();
  let retryRequested = false;

  // Cancel and retry are judged here, one message at a time, so of a cancel and a retry sent
  // together exactly one is accepted: a retry is only taken from a failed job, a cancel only
  // from a running one, and each refuses once the other has been taken.
  const cancel = acceptCancelRequests({
    tracker,
    noun,
    standing: () => (retryRequested ? 'being retried' : tracker.status),
    onCancel: () => work.cancel(),
  });
  const standing = () =>
    retryRequested ? 'being retried' : cancel.request() ? 'being cancelled' : tracker.status;
  setHandler(nextAttemptInputQuery, () =>
    spec.nextAttempt({ attempt: input.attempt + 1, seq: tracker.seq }),
  );
  setHandler(
    retryJobUpdate,
    (_request) => {
      retryRequested = true;
      return { attempt: input.attempt + 1 };
    },
    {
      validator: (_request) => {
        const refusal = retryRefusal(standing(), input.attempt, noun);
        if (refusal) throw new Error(refusal);
      },
    },
  );

  const opensAtOnce = tracker.registersWithFirstStage();
  if (!opensAtOnce) await tracker.register();
  // The deadline covers this attempt from its first stage on, not its wait in line, nor its
  // waits for a provider's quota.
  const deadline = new AttemptDeadline(spec.deadline.ms, () => work.cancel());
  let outcome: { result: Result } | { error: unknown };
  try {
    if (opensAtOnce) {
      await tracker.open(spec.start.status, spec.start.change);
    } else {
      await work.run(() => awaitJobTurn(tracker));
      await tracker.begin(spec.start.status, spec.start.change);
    }
    deadline.start();
    outcome = { result: await work.run(() => spec.body(tracker, deadline)) };
  } catch (error) {
    outcome = { error };
  }
  deadline.end();
  // An accepted cancel decides the outcome even when the step it interrupted finished or failed
  // in the same instant: the caller was told the cancel won.
  const cancelRequest = cancel.request();
  if (cancelRequest || ('error' in outcome && isCancellation(outcome.error) && !deadline.expired)) {
    if (spec.cleanup) await CancellationScope.nonCancellable(spec.cleanup);
    await tracker.end('cancelled', cancelledError(noun, cancelRequest));
    // Cancelled by an operator in Temporal, the workflow ends Cancelled; cancelled through the
    // API, it fails with type CANCELLED so the Web UI says why.
    if (!cancelRequest && 'error' in outcome) throw outcome.error;
    throw cancelledFailure(noun);
  }
  if ('result' in outcome) {
    await tracker.complete(outcome.result);
    return outcome.result;
  }
  if (deadline.expired) await tracker.end(spec.deadline.status, spec.deadline.error);
  else await tracker.end('failed', toJobError(outcome.error));
  return awaitRetry(spec, tracker, () => retryRequested);
}

/**
 * A failed job stays open for a retry until the retry window closes. Accepted, the retry
 * continues as new, carrying the projection sequence number (and whatever the input keeps).
 */
async function awaitRetry<Input extends RetryableRun, Result>(
  spec: RetryableJob<Input, Result>,
  tracker: JobTracker,
  retryRequested: () => boolean,
): Promise<never> {
  const { error } = tracker.progress();
  if (
    spec.input.attempt <= maxJobRetries &&
    (await condition(retryRequested, spec.retryWindowMs))
  ) {
    await condition(allHandlersFinished);
    return continueAsNew<(input: Input) => Promise<Result>>(
      spec.nextAttempt({ attempt: spec.input.attempt + 1, seq: tracker.seq }),
    );
  }
  throw ApplicationFailure.nonRetryable(
    error?.message ?? `The ${spec.noun} failed`,
    error?.code ?? FailureCode.JOB_FAILED,
  );
}
