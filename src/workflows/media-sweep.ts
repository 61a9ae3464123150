import { patched, proxyActivities } from '@temporalio/workflow';
import type { SharedActivities } from '../activities/index.js';
import type {
  DeleteOrphanUploadsResult,
  MediaSweepInput,
  MediaSweepResult,
} from '../jobs/contracts.js';
import { leftToNextRun } from './left-to-next-run.js';

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
 * A run that takes this patch ends by deleting the upload folders no job uses (their API died
 * mid-request). Runs recorded before it keep replaying without that step.
 */
const sweepsOrphanUploads = 'media-sweep-orphan-uploads';

/**
 * Deletes the media of ended vlogs whose retention has passed, batch by batch, until a batch
 * comes back short, then the uploads that never became a job. Started by the
 * `media-sweep-<task queue>` schedule; overlapping runs are skipped, and a run that fails
 * leaves the rest to the next.
 */
export async function sweepExpiredMedia(input: MediaSweepInput): Promise<MediaSweepResult> {
  const result = await sweepEndedJobs(input);
  if (input.orphanUploadAgeMs !== undefined && patched(sweepsOrphanUploads)) {
    result.orphanUploads = await sweepOrphanUploads(input, input.orphanUploadAgeMs).catch(
      leftToNextRun('orphaned uploads not deleted this run', 0),
    );
  }
  return result;
}

async function sweepEndedJobs(input: MediaSweepInput): Promise<MediaSweepResult> {
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

/** Upload folders deleted, batch by batch through them all, as far as one run goes. */
async function sweepOrphanUploads(input: MediaSweepInput, olderThanMs: number): Promise<number> {
  const { deleteOrphanUploads } = sweepActivities(input.taskQueue);
  let deleted = 0;
  let afterBatchId: string | null = null;
  for (let batch = 0; batch < maxBatchesPerRun; batch += 1) {
    const done: DeleteOrphanUploadsResult = await deleteOrphanUploads({
      olderThanMs,
      limit: input.batchSize,
      afterBatchId,
    });
    deleted += done.deletedBatches;
    if (done.checked < input.batchSize) break;
    afterBatchId = done.lastBatchId;
  }
  return deleted;
}
