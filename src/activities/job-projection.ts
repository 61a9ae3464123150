import { log } from '@temporalio/activity';
import type { Db } from '../db/database.js';
import { jobKindRegistry } from '../kinds/index.js';
import type { ActivityDependencies } from './index.js';
import type { JobRecord, JobStart, JobUpdate, JobUpdates } from '../jobs/contracts.js';
import { applyJobUpdate, insertJob, type AppliedJobUpdate, type CostHoldEnd } from '../db/jobs.js';
import { closeCostHold } from '../db/costs.js';
import { isTerminalStatus, type JobStatus } from '../jobs/model.js';
import { countJobTransition, zeroJobCounters } from '../metrics/job-metrics.js';

/**
 * Ends the hold of a job's attempt that ended (and of any earlier one): a completed job's cost
 * is settled to what its ledger charged, a failed, timed-out or cancelled one's estimate is
 * released (what it spent stays spent). Both leave the ledger as the job's actual cost.
 */
export async function settleJobCost(
  db: Db,
  jobId: string,
  ended: { status: JobStatus; attempt: number },
): Promise<void> {
  await closeCostHold(
    db,
    jobId,
    ended.attempt,
    ended.status === 'completed' ? 'settled' : 'released',
  );
}

/**
 * Charges an ended job what its kind says the provider bills regardless (a generation left
 * running); without the kind, every kind is asked, each charging under its calls' own keys (a
 * job of another kind has none), so nothing is charged twice.
 */
export async function chargeEndedJob(
  deps: ActivityDependencies,
  jobId: string,
  kind: string | undefined,
): Promise<void> {
  for (const registration of jobKindRegistry) {
    if (kind !== undefined && registration.declaration.kind !== kind) continue;
    await registration.chargeOnEnd?.(deps, { jobId });
  }
}

/**
 * How an update that ends a job closes its cost holds in its own statement: settled for a
 * completed job, released for a failed, timed-out or cancelled one (as settleJobCost); none for
 * a job still running.
 */
function costHoldsClosedWith(update: JobUpdate): { closeCostHolds?: CostHoldEnd } {
  const { status } = update.snapshot;
  if (!isTerminalStatus(status)) return {};
  return { closeCostHolds: status === 'completed' ? 'settled' : 'released' };
}

/** Activities that keep the jobs table (the API's read model) in step with the workflows. */
export function createJobProjectionActivities(deps: ActivityDependencies) {
  const { db } = deps;
  zeroJobCounters();

  /** What follows an update's write: its transition counted and logged. */
  function afterJobUpdate(update: JobUpdate, applied: AppliedJobUpdate | null) {
    if (applied) countJobTransition(update, applied);
    log.info('job update recorded', {
      jobId: update.jobId,
      seq: update.seq,
      status: update.snapshot.status,
      progress: update.snapshot.progress,
      applied: applied !== null,
    });
  }

  /**
   * The row's update is tried first, one statement: the API has almost always written the row
   * by then. Only an update that found nothing to change (no row yet, or a repeated delivery)
   * is followed by the row's insert and the update again.
   */
  async function recordStart(job: JobRecord, update: JobUpdate): Promise<void> {
    let applied = await applyJobUpdate(db, update);
    if (!applied) {
      await insertJob(db, job, 'pending');
      applied = await applyJobUpdate(db, update);
    }
    afterJobUpdate(update, applied);
  }

  /**
   * Applies a workflow's snapshot and counts the transition it made in the job metrics. A job
   * that ends (completed, failed, cancelled, timed out) frees any provider lease or place in
   * line it still had, whatever step it ended in, and its cost hold is settled or released,
   * all in the same statement (applyJobUpdate). It is first charged what its kind's provider
   * still bills for it (a generation left running), before the end is applied: a job never
   * reads as ended with a cost still to come.
   */
  async function recordUpdate(update: JobUpdate): Promise<void> {
    if (isTerminalStatus(update.snapshot.status)) {
      await chargeEndedJob(deps, update.jobId, update.kind);
    }
    afterJobUpdate(update, await applyJobUpdate(db, update, costHoldsClosedWith(update)));
  }

  return {
    /** Ensures the job's row exists, in case the API died between starting the workflow and writing it. */
    async registerJob(job: JobRecord): Promise<void> {
      await insertJob(db, job, 'pending');
    },

    /**
     * Ensures the job's row exists and records the state its run starts in: registerJob and
     * recordJobUpdate in one activity (runs before projection writes went behind the workflow).
     */
    recordJobStart: ({ job, update }: JobStart): Promise<void> => recordStart(job, update),

    /** Applies one snapshot (runs before projection writes went behind the workflow). */
    recordJobUpdate: (update: JobUpdate): Promise<void> => recordUpdate(update),

    /**
     * Applies the updates a run queued since its last write, in order: each as recordJobUpdate
     * would, the first as recordJobStart would when the write registers the job. A repeated
     * delivery changes nothing: each update's sequence number is applied once.
     */
    async recordJobUpdates({ register, updates }: JobUpdates): Promise<void> {
      for (const [index, update] of updates.entries()) {
        if (index === 0 && register) await recordStart(register, update);
        else await recordUpdate(update);
      }
    },
  };
}
