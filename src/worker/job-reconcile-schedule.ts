import {
  ScheduleAlreadyRunning,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleOptionsStartWorkflowAction,
  type ScheduleSpec,
} from '@temporalio/client';
import type { JobReconcileInput } from '../jobs/contracts.js';
import type { reconcileJobProjections } from '../workflows/job-reconcile.js';

/** What the job reconciler's schedule runs and how often. */
export interface JobReconcileSettings extends JobReconcileInput {
  /** JOB_RECONCILE_INTERVAL_MS. */
  intervalMs: number;
}

/** Jobs one reconcile activity call checks: one visibility query lists them all. */
export const jobReconcileBatchSize = 100;

/**
 * One schedule per task queue, like the media sweep's: each stack sharing a namespace checks
 * the jobs of its own database, whichever of its workers runs the activity.
 */
export function jobReconcileScheduleId(taskQueue: string): string {
  return `job-reconcile-${taskQueue}`;
}

/**
 * Creates the job reconciler's schedule, or brings an existing one to these settings. Every
 * worker start serving `workflows` calls it, so concurrent starts end with one schedule and
 * one reconciler whatever the number of worker processes.
 */
export async function ensureJobReconcileSchedule(
  client: Client,
  taskQueue: string,
  settings: JobReconcileSettings,
): Promise<'created' | 'updated'> {
  const scheduleId = jobReconcileScheduleId(taskQueue);
  const spec: ScheduleSpec = { intervals: [{ every: settings.intervalMs }] };
  const action: ScheduleOptionsStartWorkflowAction<typeof reconcileJobProjections> = {
    type: 'startWorkflow',
    workflowType: 'reconcileJobProjections',
    workflowId: scheduleId,
    taskQueue,
    args: [
      {
        staleMs: settings.staleMs,
        batchSize: settings.batchSize,
        ...(settings.reopenWindowMs !== undefined && { reopenWindowMs: settings.reopenWindowMs }),
      },
    ],
  };
  // A run that outlasts the interval is not joined by a second one; a missed run is not made up.
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' };
  try {
    await client.schedule.create({ scheduleId, spec, action, policies });
    return 'created';
  } catch (error) {
    if (!(error instanceof ScheduleAlreadyRunning)) throw error;
  }
  await client.schedule
    .getHandle(scheduleId)
    .update((previous) => ({ ...previous, spec, action, policies }));
  return 'updated';
}
