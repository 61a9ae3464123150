import {
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { JobProgress, JobRecord, JobSnapshot } from '../jobs/messages.js';
import type { JobError } from '../jobs/model.js';
import { JobStatusKey } from '../temporal/search-attributes.js';
import { jobProgressQuery } from './definitions.js';

// The read model must catch up whenever the database comes back, so these retry without limit.
const projection = proxyActivities<Activities>({
  startToCloseTimeout: '15s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
});

export type SnapshotChange = Partial<Omit<JobSnapshot, 'runId' | 'attempt'>>;

/**
 * The lifecycle every job workflow shares: it owns the job's live state, answers the progress
 * query, keeps the JobStatus search attribute current, and projects each change to the
 * database with an increasing sequence number.
 */
export class JobTracker {
  private seq = 0;
  private snapshot: JobSnapshot;

  constructor(readonly job: JobRecord) {
    this.snapshot = {
      status: 'pending',
      progress: 0,
      phase: null,
      attempt: 1,
      runId: workflowInfo().runId,
      startedAt: null,
      completedAt: null,
      result: null,
      error: null,
    };
    setHandler(jobProgressQuery, () => this.progress());
  }

  progress(): JobProgress {
    return { jobId: this.job.id, seq: this.seq, ...this.snapshot };
  }

  async update(change: SnapshotChange): Promise<void> {
    const previousStatus = this.snapshot.status;
    this.snapshot = { ...this.snapshot, ...change };
    this.seq += 1;
    if (this.snapshot.status !== previousStatus) {
      upsertSearchAttributes([{ key: JobStatusKey, value: this.snapshot.status }]);
    }
    await projection.recordJobUpdate({
      jobId: this.job.id,
      seq: this.seq,
      snapshot: this.snapshot,
    });
  }

  /**
   * Runs the job's body between the `pending` row and a terminal status: `completed` with the
   * body's result, `cancelled` when the workflow is cancelled, `failed` with the error's type
   * as its code otherwise. The failure is rethrown so the workflow itself ends failed too.
   */
  async run<Result>(runningStatus: string, body: () => Promise<Result>): Promise<Result> {
    await projection.registerJob(this.job);
    await this.update({ status: runningStatus, startedAt: now() });
    try {
      const result = await body();
      await this.update({
        status: 'completed',
        progress: 100,
        phase: null,
        completedAt: now(),
        result,
      });
      return result;
    } catch (error) {
      const ended: SnapshotChange = isCancellation(error)
        ? {
            status: 'cancelled',
            completedAt: now(),
            error: { code: 'CANCELLED', message: 'The job was cancelled' },
          }
        : { status: 'failed', completedAt: now(), error: toJobError(error) };
      await CancellationScope.nonCancellable(() => this.update(ended));
      throw error;
    }
  }
}

function now(): string {
  return new Date().toISOString();
}

function toJobError(error: unknown): JobError {
  if (error instanceof ApplicationFailure) {
    return { code: error.type ?? 'JOB_FAILED', message: error.message };
  }
  return { code: 'JOB_FAILED', message: error instanceof Error ? error.message : String(error) };
}
