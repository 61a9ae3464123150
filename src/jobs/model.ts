/**
 * The job vocabulary shared by the API, the activities and the workflows. Pure data and
 * functions only: workflow code imports this module.
 */
import type { jobKindRegistry } from '../kinds/index.js';

/** A job kind's name: one for each line of the registry in `src/kinds/index.ts`. */
export type JobKind = (typeof jobKindRegistry)[number]['declaration']['kind'];

/**
 * Every status a job can be stored in, whatever its kind. The database refuses any other
 * (migration 0006); a new status is added here and to that constraint by a new migration.
 */
export const jobStatuses = [
  'pending',
  'running',
  'analyzing',
  'generating',
  'transferring',
  'processing',
  'completed',
  'failed',
  'cancelled',
  'timeout',
] as const;
export type JobStatus = (typeof jobStatuses)[number];

export function isJobStatus(value: string): value is JobStatus {
  return (jobStatuses as readonly string[]).includes(value);
}

/** Reached only if a value escaped its union: the compiler flags the switch that left it out. */
export function assertNever(value: never, what: string): never {
  throw new Error(`Unexpected ${what}: ${String(value)}`);
}

export type TerminalStatus = 'completed' | 'failed' | 'cancelled' | 'timeout';

/** Whether a job in this status has ended; any other status is still in flight. */
export function isTerminalStatus(status: JobStatus): status is TerminalStatus {
  switch (status) {
    case 'pending':
    case 'running':
    case 'analyzing':
    case 'generating':
    case 'transferring':
    case 'processing':
      return false;
    case 'completed':
    case 'failed':
    case 'cancelled':
    case 'timeout':
      return true;
    default:
      return assertNever(status, 'job status');
  }
}

/** Whether a job that ended in this status can be retried (within the retry window). */
export function isRetryableStatus(status: JobStatus): boolean {
  switch (status) {
    case 'failed':
    case 'timeout':
      return true;
    case 'pending':
    case 'running':
    case 'analyzing':
    case 'generating':
    case 'transferring':
    case 'processing':
    case 'completed':
    case 'cancelled':
      return false;
    default:
      return assertNever(status, 'job status');
  }
}

/** Statuses a job can end in, for queries. */
export const terminalStatuses: readonly TerminalStatus[] = jobStatuses.filter(isTerminalStatus);

/** Statuses a job can be retried from, for queries. */
export const retryableStatuses: readonly JobStatus[] = jobStatuses.filter(isRetryableStatus);

/** A job's error as stored and served: a stable code and a human message. */
export interface JobError {
  code: string;
  message: string;
}
