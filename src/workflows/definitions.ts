import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type {
  CancelJobSignal,
  JobProgress,
  RetryJobRequest,
  RetryJobResponse,
} from '../jobs/messages.js';

/** Live state of any job workflow, answered from the workflow's memory. */
export const jobProgressQuery = defineQuery<JobProgress>('jobProgress');

/** Asks a running job to stop: its running step is cancelled and what it half-made is removed. */
export const cancelJobSignal = defineSignal<[CancelJobSignal]>('cancelJob');

/**
 * Retries a failed job: the validator refuses (and nothing changes) unless the job failed and
 * has retries left; accepted, the workflow continues as new with attempt + 1.
 */
export const retryJobUpdate = defineUpdate<RetryJobResponse, [RetryJobRequest]>('retryJob');

/** Most retries a job gets after its first attempt. */
export const maxJobRetries = 3;

/** Statuses a job can be retried from. */
export const retryableStatuses = ['failed', 'timeout'] as const;

/**
 * Why a job cannot be retried now, or null when it can: the one rule behind the retry
 * Update's validator and the API's answer for a job whose workflow has already closed.
 */
export function retryRefusal(status: string, attempt: number, noun = 'job'): string | null {
  if (!(retryableStatuses as readonly string[]).includes(status))
    return `Only a failed or timed-out ${noun} can be retried; this one is ${status}`;
  if (attempt > maxJobRetries)
    return `This ${noun} was already retried ${maxJobRetries} times, the most allowed`;
  return null;
}
