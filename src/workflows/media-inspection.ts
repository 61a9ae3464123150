import { proxyActivities } from '@temporalio/workflow';
import type { SharedActivities } from '../activities/index.js';
import type { MediaInspectionInput, MediaInspectionResult } from '../jobs/contracts.js';

/**
 * Reads an upload's stored files on a worker with ffprobe, for the API to check against the
 * media limits. One activity, not retried: the API is waiting for the answer, and an upload that
 * cannot be inspected passes, as it did when the API ran ffprobe itself and had none. A worker
 * must take it within 10 s and finish within a minute; its queue is its own, so renders holding
 * every media slot do not keep it waiting.
 */
export async function inspectUploadedMedia(
  input: MediaInspectionInput,
): Promise<MediaInspectionResult> {
  const { inspectStoredMedia } = proxyActivities<SharedActivities>({
    taskQueue: input.taskQueue,
    scheduleToStartTimeout: '10s',
    startToCloseTimeout: '1m',
    heartbeatTimeout: '20s',
    retry: { maximumAttempts: 1 },
  });
  return inspectStoredMedia({ files: input.files });
}
