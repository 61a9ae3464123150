/**
 * The job vocabulary shared by the API, the activities and the workflows. Pure data and
 * functions only: workflow code imports this module.
 */

export const jobKinds = ['probe', 'vlog', 'ai'] as const;
export type JobKind = (typeof jobKinds)[number];

/** Statuses a job can end in; a job in any other status is still in flight. */
export const terminalStatuses = ['completed', 'failed', 'cancelled', 'timeout'] as const;
export type TerminalStatus = (typeof terminalStatuses)[number];

/** Statuses a job can be retried from (within the retry window, with retries left). */
export const retryableStatuses = ['failed', 'timeout'] as const;

export function isTerminalStatus(status: string): status is TerminalStatus {
  return (terminalStatuses as readonly string[]).includes(status);
}

/** A job's error as stored and served: a stable code and a human message. */
export interface JobError {
  code: string;
  message: string;
}
