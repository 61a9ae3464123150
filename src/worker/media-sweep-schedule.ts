import {
  ScheduleAlreadyRunning,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleOptionsStartWorkflowAction,
  type ScheduleSpec,
} from '@temporalio/client';
import type { MediaSweepInput } from '../jobs/contracts.js';
import type { sweepExpiredMedia } from '../workflows/media-sweep.js';

/** What the media sweep's schedule runs and how often. */
export interface MediaSweepSettings extends MediaSweepInput {
  /** MEDIA_SWEEP_INTERVAL_MS. */
  intervalMs: number;
}

/** Media jobs a sweep handles per activity call. */
export const mediaSweepBatchSize = 100;

/** One schedule per task queue: the stacks sharing a namespace each sweep their own media. */
export function mediaSweepScheduleId(taskQueue: string): string {
  return `media-sweep-${taskQueue}`;
}

/**
 * Creates the media sweep's schedule, or brings an existing one to these settings. Every worker
 * start calls it (`npm start` and `npm run worker` alike), so the schedule always runs what the
 * latest configuration says; concurrent starts end with one schedule.
 */
export async function ensureMediaSweepSchedule(
  client: Client,
  taskQueue: string,
  settings: MediaSweepSettings,
): Promise<'created' | 'updated'> {
  const scheduleId = mediaSweepScheduleId(taskQueue);
  const spec: ScheduleSpec = { intervals: [{ every: settings.intervalMs }] };
  const action: ScheduleOptionsStartWorkflowAction<typeof sweepExpiredMedia> = {
    type: 'startWorkflow',
    workflowType: 'sweepExpiredMedia',
    workflowId: scheduleId,
    taskQueue,
    args: [
      {
        ...(settings.taskQueue && { taskQueue: settings.taskQueue }),
        retentionMs: settings.retentionMs,
        retryWindowMs: settings.retryWindowMs,
        batchSize: settings.batchSize,
      },
    ],
  };
  // A sweep that outlasts the interval is not joined by a second one.
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
