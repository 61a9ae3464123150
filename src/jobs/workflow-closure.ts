/**
 * How a workflow that closed without projecting its job's end (terminated, timed out on the
 * server, gone) is shown: the status and stable error code the reconciler writes. Pure rules:
 * the activity reads the closure from Temporal, this decides what the API shows.
 */
import type { JobSnapshot } from './contracts.js';
import { FailureCode } from './failures.js';
import type { JobStatus } from './model.js';

/** How a job's workflow closed, as read from Temporal. */
export type WorkflowClosure = { runId: string; closedAt: string } & (
  | { how: 'completed'; result: unknown }
  | { how: 'failed'; failureType: string | null; message: string }
  | { how: 'cancelled' }
  | { how: 'terminated'; reason: string | null; identity: string | null }
  | { how: 'timed_out' }
  | { how: 'not_found' }
);

/** The `reason` label of `vlogflow_jobs_reconciled_total`: a closure, or a reset followed. */
export type ReconcileReason = WorkflowClosure['how'] | 'reset';

export const reconcileReasons: readonly ReconcileReason[] = [
  'completed',
  'failed',
  'cancelled',
  'terminated',
  'timed_out',
  'not_found',
  'reset',
];

/** What the job's row held when its workflow was found closed. */
export interface JobBeforeClosure {
  progress: number;
  attempt: number;
  startedAt: string | null;
}

const knownCodes = new Set<string>(Object.values(FailureCode));

/**
 * The codes of the jobs the reconciler ended whose workflow can still be reset (its history is
 * there): such a job follows the new run like a job in flight.
 */
export const reopenableEndCodes: readonly FailureCode[] = [
  FailureCode.WORKFLOW_TERMINATED,
  FailureCode.WORKFLOW_TIMED_OUT,
];

/** The job's final snapshot for a workflow that closed this way. */
export function closedJobSnapshot(job: JobBeforeClosure, closure: WorkflowClosure): JobSnapshot {
  const base = {
    progress: job.progress,
    phase: null,
    attempt: job.attempt,
    runId: closure.runId,
    startedAt: job.startedAt,
    completedAt: closure.closedAt,
    result: null,
  };
  const ended = (status: JobStatus, code: FailureCode, message: string): JobSnapshot => ({
    ...base,
    status,
    error: { code, message },
  });
  switch (closure.how) {
    case 'completed':
      return { ...base, status: 'completed', progress: 100, result: closure.result, error: null };
    case 'failed':
      return ended(
        'failed',
        closure.failureType && knownCodes.has(closure.failureType)
          ? (closure.failureType as FailureCode)
          : FailureCode.JOB_FAILED,
        closure.message,
      );
    case 'cancelled':
      return ended('cancelled', FailureCode.CANCELLED, 'The job was cancelled in Temporal');
    case 'terminated': {
      const by = closure.identity ? ` by ${closure.identity}` : '';
      const reason = closure.reason ? `: ${closure.reason}` : '';
      return ended(
        'failed',
        FailureCode.WORKFLOW_TERMINATED,
        `The workflow was terminated in Temporal${by}${reason}`,
      );
    }
    case 'timed_out':
      return ended(
        'timeout',
        FailureCode.WORKFLOW_TIMED_OUT,
        'The workflow ran past its execution or run timeout in Temporal',
      );
    case 'not_found':
      return ended(
        'failed',
        FailureCode.WORKFLOW_NOT_FOUND,
        'The workflow no longer exists in Temporal (its history was deleted)',
      );
  }
}
