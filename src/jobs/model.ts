/**
 * The job vocabulary shared by the API, the activities and the workflows. Pure data and
 * functions only: workflow code imports this module.
 */
import type { jobKindRegistry } from '../kinds/index.js';

/** A job kind's name: one for each line of the registry in `src/kinds/index.ts`. */
export type JobKind = (typeof jobKindRegistry)[number]['declaration']['kind'];

/** A job type, of any kind: every kind declares its own (`jobTypes`). */
export type JobType = (typeof jobKindRegistry)[number]['declaration']['jobTypes'][number];

/**
 * Every status a job can be stored in, whatever its kind. The database refuses any other
 * (migrations 0006, 0008); a new status is added here and to that constraint by a new migration.
 */
export const jobStatuses = [
  'pending',
  'queued',
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

/** Most retries a job gets after its first attempt: a failed job on a later one has none left. */
export const maxJobRetries = 3;

export function isJobStatus(value: string): value is JobStatus {
  return (jobStatuses as readonly string[]).includes(value);
}

/**
 * What each status means for a job, one row a status: the compiler refuses a status without
 * its row, and `TerminalStatus` is read from the rows.
 */
const statusRules = {
  /** Accepted, its workflow not yet in its first stage. */
  pending: { terminal: false, retryable: false, waiting: true },
  /** Waiting for its turn behind earlier jobs of its concurrency key. */
  queued: { terminal: false, retryable: false, waiting: true },
  running: { terminal: false, retryable: false, waiting: false },
  analyzing: { terminal: false, retryable: false, waiting: false },
  generating: { terminal: false, retryable: false, waiting: false },
  transferring: { terminal: false, retryable: false, waiting: false },
  processing: { terminal: false, retryable: false, waiting: false },
  completed: { terminal: true, retryable: false, waiting: false },
  failed: { terminal: true, retryable: true, waiting: false },
  cancelled: { terminal: true, retryable: false, waiting: false },
  timeout: { terminal: true, retryable: true, waiting: false },
} as const satisfies Record<JobStatus, { terminal: boolean; retryable: boolean; waiting: boolean }>;

export type TerminalStatus = {
  [Status in JobStatus]: (typeof statusRules)[Status]['terminal'] extends true ? Status : never;
}[JobStatus];

/** Whether a job in this status has ended; any other status is still in flight. */
export function isTerminalStatus(status: JobStatus): status is TerminalStatus {
  return statusRules[status].terminal;
}

/** Whether a job that ended in this status can be retried (within the retry window). */
export function isRetryableStatus(status: JobStatus): boolean {
  return statusRules[status].retryable;
}

/** Whether a job in `status` on `attempt` can be retried: its status allows it, and a retry is left. */
export function canBeRetried(status: JobStatus, attempt: number): boolean {
  return isRetryableStatus(status) && attempt <= maxJobRetries;
}

/** Whether a job in this status waits to start (accepted, or in its key's line). */
export function isWaitingStatus(status: JobStatus): boolean {
  return statusRules[status].waiting;
}

/** Whether a job in this status is in one of its kind's stages: started and not ended. */
export function isStageStatus(status: JobStatus): boolean {
  return !statusRules[status].terminal && !statusRules[status].waiting;
}

/** Statuses a job can end in, for queries. */
export const terminalStatuses: readonly TerminalStatus[] = jobStatuses.filter(isTerminalStatus);

/** Statuses of a job waiting to start, for queries. */
export const waitingStatuses: readonly JobStatus[] = jobStatuses.filter(isWaitingStatus);

/** Statuses a job can be retried from, for queries. */
export const retryableStatuses: readonly JobStatus[] = jobStatuses.filter(isRetryableStatus);

/** A job's error as stored and served: a stable code and a human message. */
export interface JobError {
  code: string;
  message: string;
  /**
   * The provider whose call failed (`gemini`, `veo`, `local`, `openai`, `embedded`), when a
   * provider's call ended the job: part of its failure group's fingerprint.
   */
  provider?: string;
}
