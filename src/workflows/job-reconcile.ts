import { proxyActivities } from '@temporalio/workflow';
import type { SharedActivities } from '../activities/index.js';
import type {
  JobReconcileInput,
  JobReconcileResult,
  ReconcileJobBatchResult,
} from '../jobs/contracts.js';

const { reconcileJobBatch } = proxyActivities<SharedActivities>({
  startToCloseTimeout: '5m',
  // One heartbeat per job checked: a lost worker is noticed without waiting out the batch.
  heartbeatTimeout: '30s',
  retry: { initialInterval: '1s', maximumInterval: '1m', maximumAttempts: 5 },
});

/** Batches one run checks at most; the rest waits for the next scheduled run. */
const maxBatchesPerRun = 50;

/**
 * Checks the jobs in flight whose rows have not changed for a while against their workflows,
 * batch by batch, and ends those whose workflow closed outside its own code (terminated, timed
 * out on the server) or moves them to the run a reset started. Started by the
 * `job-reconcile-<task queue>` schedule; overlapping runs are skipped.
 */
export async function reconcileJobProjections(
  input: JobReconcileInput,
): Promise<JobReconcileResult> {
  const total = { checked: 0, ended: 0, followed: 0 };
  let afterId: string | null = null;
  for (let batch = 0; batch < maxBatchesPerRun; batch += 1) {
    const done: ReconcileJobBatchResult = await reconcileJobBatch({
      staleMs: input.staleMs,
      ...(input.reopenWindowMs !== undefined && { reopenWindowMs: input.reopenWindowMs }),
      limit: input.batchSize,
      afterId,
    });
    total.checked += done.checked;
    total.ended += done.ended;
    total.followed += done.followed;
    if (done.checked < input.batchSize || done.lastId === null) return { ...total, complete: true };
    afterId = done.lastId;
  }
  return { ...total, complete: false };
}
