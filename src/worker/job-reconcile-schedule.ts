import type { Client } from '@temporalio/client';
import type { JobReconcileInput } from '../jobs/contracts.js';
import type { reconcileJobProjections } from '../workflows/job-reconcile.js';
import { ensureRecurringWorkflow } from './recurring-workflow.js';

/** What the job reconciler's schedule runs and how often. */
export interface JobReconcileSettings extends JobReconcileInput {
  /** JOB_RECONCILE_INTERVAL_MS. */
  intervalMs: number;
}

/** Jobs one reconcile activity call checks: one visibility query lists them all. */
export const jobReconcileBatchSize = 100;

/**
 * Batches one scheduled run checks at most: 1,000 jobs every `JOB_RECONCILE_INTERVAL_MS`. With
 * 10,000 vlogs waiting quietly for Veo, 50 batches a run (5,000 jobs every 30 s) were the
 * largest part of the worker's and the dev server's work; a lap of 10,000 now takes ten runs.
 */
export const jobReconcileBatchesPerRun = 10;

/**
 * One schedule per task queue, like the media sweep's: each stack sharing a namespace checks
 * the jobs of its own database, whichever of its workers runs the activity.
 */
export function jobReconcileScheduleId(taskQueue: string): string {
  return `job-reconcile-${taskQueue}`;
}

/**
 * Keeps the job reconciler running every `intervalMs` (see ensureRecurringWorkflow): every
 * worker start serving `workflows` calls it, so there is one reconciler whatever the number of
 * worker processes. Each run resumes where the previous one stopped from the result the schedule
 * hands it, which the server keeps only under an overlap policy other than ALLOW_ALL (it skips).
 */
export function ensureJobReconcileSchedule(
  client: Client,
  taskQueue: string,
  settings: JobReconcileSettings,
): Promise<'created' | 'updated'> {
  const input: Parameters<typeof reconcileJobProjections>[0] = {
    staleMs: settings.staleMs,
    batchSize: settings.batchSize,
    ...(settings.maxBatchesPerRun !== undefined && { maxBatchesPerRun: settings.maxBatchesPerRun }),
    ...(settings.reopenWindowMs !== undefined && { reopenWindowMs: settings.reopenWindowMs }),
  };
  return ensureRecurringWorkflow(client, {
    scheduleId: jobReconcileScheduleId(taskQueue),
    workflowType: 'reconcileJobProjections',
    taskQueue,
    args: [input],
    intervalMs: settings.intervalMs,
  });
}
