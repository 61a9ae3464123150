import { log } from '@temporalio/activity';
import type { Db } from '../db/database.js';
import type { JobRecord, JobUpdate } from '../jobs/contracts.js';
import { applyJobUpdate, insertJob } from '../db/jobs.js';
import { releaseProviderLeases } from '../db/provider-quota.js';
import { isTerminalStatus } from '../jobs/model.js';
import { countJobTransition, zeroJobCounters } from '../metrics/job-metrics.js';

/** Activities that keep the jobs table (the API's read model) in step with the workflows. */
export function createJobProjectionActivities({ db }: { db: Db }) {
  zeroJobCounters();
  return {
    /** Ensures the job's row exists, in case the API died between starting the workflow and writing it. */
    async registerJob(job: JobRecord): Promise<void> {
      await insertJob(db, job, 'pending');
    },

    /**
     * Applies a workflow's snapshot and counts the transition it made in the job metrics. A job
     * that ends (completed, failed, cancelled, timed out) frees any provider lease or place in
     * line it still had, whatever step it ended in.
     */
    async recordJobUpdate(update: JobUpdate): Promise<void> {
      const applied = await applyJobUpdate(db, update);
      if (applied) countJobTransition(update, applied);
      if (isTerminalStatus(update.snapshot.status)) await releaseProviderLeases(db, update.jobId);
      log.info('job update recorded', {
        jobId: update.jobId,
        seq: update.seq,
        status: update.snapshot.status,
        progress: update.snapshot.progress,
        applied: applied !== null,
      });
    },
  };
}
