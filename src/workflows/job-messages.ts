/**
 * The messages every job workflow answers (Temporal's signals, queries and updates) and the
 * rules their validators apply. Their names are part of the durable contract; the types they
 * carry are in `src/jobs/contracts.ts`.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import {
  isJobStatus,
  isRetryableStatus,
  isTerminalStatus,
  maxJobRetries,
  type JobStatus,
} from '../jobs/model.js';
import type {
  CancelJobRequest,
  CancelJobResponse,
  JobProgress,
  JobTurnNudge,
  ProviderTurnNudge,
  RetryJobRequest,
  RetryJobResponse,
} from '../jobs/contracts.js';

/** Live state of any job workflow, answered from the workflow's memory. */
export const jobProgressQuery = defineQuery<JobProgress>('jobProgress');

/**
 * Asks a running job to stop: its running step is cancelled and what it half-made is removed.
 * The API sends it as an Update so the workflow, which also arbitrates retries, answers whether
 * the cancel won; the validator refuses a job that has ended or is being retried.
 */
export const cancelJobUpdate = defineUpdate<CancelJobResponse, [CancelJobRequest]>('cancelJob');

/**
 * The same request as a fire-and-forget signal, for operators and scripts
 * (`temporal workflow signal --name cancelJob`), and for runs that received it before the API
 * sent the Update; a job that cannot be cancelled ignores it.
 */
export const cancelJobSignal = defineSignal<[CancelJobRequest]>('cancelJob');

/**
 * Retries a failed job: the validator refuses (and nothing changes) unless the job failed, has
 * retries left and is not being cancelled; accepted, the workflow continues as new with
 * attempt + 1.
 */
export const retryJobUpdate = defineUpdate<RetryJobResponse, [RetryJobRequest]>('retryJob');

/**
 * The input a next attempt of the job would start with: what the retry Update continues as new
 * with, every finished stage's output carried. An operator's re-drive asks a closed run for it
 * (Temporal answers a closed run's query by replaying its history) and starts a new run of the
 * same job from it, so the new attempt resumes where this one failed.
 */
export const nextAttemptInputQuery = defineQuery<unknown>('nextAttemptInput');

/**
 * Tells a job waiting in its concurrency key's line that a job of the line ended: it asks for
 * the turn again (and learns its new place). Sent by the ending job to those behind it.
 */
export const jobTurnSignal = defineSignal<[JobTurnNudge]>('jobTurn');

/**
 * Tells a vlog waiting for a provider lease that one was freed and may be its own: it asks the
 * governor again at once. Sent by the vlog whose generation ended.
 */
export const providerTurnSignal = defineSignal<[ProviderTurnNudge]>('providerTurn');

/** What the cancel and retry validators judge: the job's status, or a request already taken. */
export type JobStanding = JobStatus | 'being retried' | 'being cancelled';

/**
 * Why a job cannot be retried now, or null when it can: the one rule behind the retry
 * Update's validator and the API's answer for a job whose workflow has already closed.
 */
export function retryRefusal(status: JobStanding, attempt: number, noun = 'job'): string | null {
  if (!(isJobStatus(status) && isRetryableStatus(status)))
    return `Only a failed or timed-out ${noun} can be retried; this one is ${status}`;
  if (attempt > maxJobRetries)
    return `This ${noun} was already retried ${maxJobRetries} times, the most allowed`;
  return null;
}

/** Why a job cannot be cancelled now, or null when it can. */
export function cancelRefusal(status: JobStanding, noun = 'job'): string | null {
  if (status === 'being retried')
    return `The ${noun} is being retried and cannot be cancelled until its new attempt starts`;
  if (isJobStatus(status) && isTerminalStatus(status))
    return `The ${noun} is already ${status} and cannot be cancelled`;
  return null;
}
