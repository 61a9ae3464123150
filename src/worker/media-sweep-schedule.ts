import type { Client } from '@temporalio/client';
import type { MediaSweepInput } from '../jobs/contracts.js';
import type { sweepExpiredMedia } from '../workflows/media-sweep.js';
import { ensureRecurringWorkflow } from './recurring-workflow.js';

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

/** Keeps the media sweep running every `intervalMs` (see ensureRecurringWorkflow). */
export function ensureMediaSweepSchedule(
  client: Client,
  taskQueue: string,
  settings: MediaSweepSettings,
): Promise<'created' | 'updated'> {
  const input: Parameters<typeof sweepExpiredMedia>[0] = {
    ...(settings.taskQueue && { taskQueue: settings.taskQueue }),
    retentionMs: settings.retentionMs,
    retryWindowMs: settings.retryWindowMs,
    batchSize: settings.batchSize,
    ...(settings.orphanUploadAgeMs !== undefined && {
      orphanUploadAgeMs: settings.orphanUploadAgeMs,
    }),
  };
  return ensureRecurringWorkflow(client, {
    scheduleId: mediaSweepScheduleId(taskQueue),
    workflowType: 'sweepExpiredMedia',
    taskQueue,
    args: [input],
    intervalMs: settings.intervalMs,
  });
}
