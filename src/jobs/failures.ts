/**
 * Why a job failed, as a small closed set. Activities throw ApplicationFailures whose `type` is
 * one of these; permanent ones are non-retryable. The code is what the API reports.
 */
export const FailureCode = {
  /** The request or its media cannot be processed as given. */
  INVALID_INPUT: 'INVALID_INPUT',
  MEDIA_UNREADABLE: 'MEDIA_UNREADABLE',
  /** ffmpeg or ffprobe ran past its time limit on a file (the message names the step): retried. */
  MEDIA_PROCESSING_TIMEOUT: 'MEDIA_PROCESSING_TIMEOUT',
  /**
   * ffmpeg or ffprobe was stopped by a signal its job did not send (a terminal's Ctrl-C, an
   * operator, the out-of-memory killer) or by its worker shutting down; the message names the
   * signal and the step: retried.
   */
  MEDIA_PROCESSING_INTERRUPTED: 'MEDIA_PROCESSING_INTERRUPTED',
  /** The provider refused the content on safety grounds. */
  SAFETY_BLOCKED: 'SAFETY_BLOCKED',
  /** Veo's responsible-AI filter removed every generated video (not charged). */
  CONTENT_FILTERED: 'CONTENT_FILTERED',
  PROVIDER_INVALID_ARGUMENT: 'PROVIDER_INVALID_ARGUMENT',
  /**
   * The request is longer than the model reads at once (its context window, in tokens): the
   * API's limits count characters, and a character can be several tokens.
   */
  PROVIDER_INPUT_TOO_LONG: 'PROVIDER_INPUT_TOO_LONG',
  PROVIDER_PERMISSION_DENIED: 'PROVIDER_PERMISSION_DENIED',
  PROVIDER_NOT_FOUND: 'PROVIDER_NOT_FOUND',
  /** The worker that ran the step has no provider for it (a variable or ffmpeg missing there). */
  PROVIDER_NOT_CONFIGURED: 'PROVIDER_NOT_CONFIGURED',
  /** Transient: retried with backoff. */
  PROVIDER_RATE_LIMITED: 'PROVIDER_RATE_LIMITED',
  PROVIDER_UNAVAILABLE: 'PROVIDER_UNAVAILABLE',
  /** The model's answer did not match the schema, even after re-asking. */
  INVALID_PROVIDER_OUTPUT: 'INVALID_PROVIDER_OUTPUT',
  /** The provider's long-running operation ended in an error. */
  GENERATION_FAILED: 'GENERATION_FAILED',
  TRANSFER_FAILED: 'TRANSFER_FAILED',
  VLOG_DEADLINE_EXCEEDED: 'VLOG_DEADLINE_EXCEEDED',
  /** An AI job did not finish within its time limit (status `timeout`). */
  JOB_TIMEOUT: 'JOB_TIMEOUT',
  CANCELLED: 'CANCELLED',
  JOB_FAILED: 'JOB_FAILED',
  /**
   * The job's workflow was terminated in Temporal (Web UI, CLI, a batch): the reconciler ends
   * the job `failed` with the reason given.
   */
  WORKFLOW_TERMINATED: 'WORKFLOW_TERMINATED',
  /** The workflow's execution or run timeout passed on the server: the job ends `timeout`. */
  WORKFLOW_TIMED_OUT: 'WORKFLOW_TIMED_OUT',
  /** The job's workflow no longer exists (its history was deleted): the job ends `failed`. */
  WORKFLOW_NOT_FOUND: 'WORKFLOW_NOT_FOUND',
} as const;

export type FailureCode = (typeof FailureCode)[keyof typeof FailureCode];

/** What any provider call can end with: a kind that calls a provider declares these. */
export const providerCallFailureCodes = [
  FailureCode.SAFETY_BLOCKED,
  FailureCode.PROVIDER_INVALID_ARGUMENT,
  FailureCode.PROVIDER_INPUT_TOO_LONG,
  FailureCode.PROVIDER_PERMISSION_DENIED,
  FailureCode.PROVIDER_NOT_FOUND,
  FailureCode.PROVIDER_NOT_CONFIGURED,
  FailureCode.PROVIDER_RATE_LIMITED,
  FailureCode.PROVIDER_UNAVAILABLE,
  FailureCode.INVALID_PROVIDER_OUTPUT,
] as const;

/**
 * What the shared job lifecycle can end any job with, the reconciler's codes for a workflow
 * that closed outside the workflow's own control included.
 */
export const lifecycleFailureCodes = [
  FailureCode.CANCELLED,
  FailureCode.JOB_FAILED,
  FailureCode.WORKFLOW_TERMINATED,
  FailureCode.WORKFLOW_TIMED_OUT,
  FailureCode.WORKFLOW_NOT_FOUND,
] as const;

/** Failure types Temporal must not retry: retrying cannot change the outcome. */
export const nonRetryableFailureCodes: FailureCode[] = [
  FailureCode.INVALID_INPUT,
  FailureCode.MEDIA_UNREADABLE,
  FailureCode.SAFETY_BLOCKED,
  FailureCode.CONTENT_FILTERED,
  FailureCode.PROVIDER_INVALID_ARGUMENT,
  FailureCode.PROVIDER_INPUT_TOO_LONG,
  FailureCode.PROVIDER_PERMISSION_DENIED,
  FailureCode.PROVIDER_NOT_FOUND,
  FailureCode.PROVIDER_NOT_CONFIGURED,
  FailureCode.INVALID_PROVIDER_OUTPUT,
  FailureCode.GENERATION_FAILED,
];

/**
 * The first detail of an activity failure raised by a provider's call: who answered, so that a
 * failed job's failure group names the provider (`toJobError` reads it).
 */
export interface ProviderFailureDetails {
  provider: string;
}

/** The provider a failure's details name, if its first detail is `ProviderFailureDetails`. */
export function providerOfFailureDetails(
  details: readonly unknown[] | null | undefined,
): string | null {
  const first = details?.[0];
  if (typeof first !== 'object' || first === null || !('provider' in first)) return null;
  return typeof first.provider === 'string' ? first.provider : null;
}
