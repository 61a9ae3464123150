import { proxyActivities } from '@temporalio/workflow';
import type { SharedActivities } from '../activities/index.js';
import type { MediaSweepInput, MediaSweepResult } from '../jobs/contracts.js';

function sweepActivities(taskQueue: string | undefined) {
  return proxyActivities<SharedActivities>({
    ...(taskQueue && { taskQueue }),
    startToCloseTimeout: '10m',
    // One heartbeat per job swept: a lost worker is noticed without waiting out the batch.
    heartbeatTimeout: '10s',
    retry: { initialInterval: '1s', maximumInterval: '5m', maximumAttempts: 5 },
  });
}

/** Batches one run deletes at most; the rest waits for the next scheduled run. */
const maxBatchesPerRun = 20;

/**
 * Deletes the media of ended vlogs whose retention has passed, batch by batch, until a batch
 * comes back short. Started by the `media-sweep-<task queue>` schedule; overlapping runs are
 * skipped, and a run that fails leaves the rest to the next.
 */
export async function sweepExpiredMedia(input: MediaSweepInput): Promise<MediaSweepResult> {
  const { deleteExpiredMedia } = sweepActivities(input.taskQueue);
  let jobs = 0;
  let deletedObjects = 0;
  for (let batch = 0; batch < maxBatchesPerRun; batch += 1) {
    const done = await deleteExpiredMedia({
      retentionMs: input.retentionMs,
      retryWindowMs: input.retryWindowMs,
      limit: input.batchSize,
    });
    jobs += done.jobIds.length;
    deletedObjects += done.deletedObjects;
    if (done.jobIds.length < input.batchSize) return { jobs, deletedObjects, complete: true };
  }
  return { jobs, deletedObjects, complete: false };
}
