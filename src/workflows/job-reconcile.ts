import { patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { SharedActivities } from '../activities/index.js';
import { leftToNextRun } from './left-to-next-run.js';
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

const { freeLeasesLeftRunning, releaseCostHoldsLeftOpen } = proxyActivities<SharedActivities>({
  // Each look at an operation waits for its provider's request slot, one interval apart.
  startToCloseTimeout: '5m',
  heartbeatTimeout: '30s',
  retry: { initialInterval: '1s', maximumInterval: '1m', maximumAttempts: 3 },
});

/**
 * A run that takes this patch ends by freeing the leases that ended jobs hold for operations
 * they left running, once the provider says those ended. Runs recorded before it keep replaying
 * without that step.
 */
const freesLeasesLeftRunning = 'job-reconcile-frees-leases-left-running';

/**
 * A run that takes this patch ends by dropping the cost holds whose attempt can no longer
 * start (an API died between taking one and reaching Temporal). Runs recorded before it keep
 * replaying without that step.
 */
const releasesCostHoldsLeftOpen = 'job-reconcile-releases-cost-holds-left-open';

/**
 * Batches one run checks at most when its input does not say (runs scheduled before the
 * schedule named it); the rest waits for the next run.
 */
const maxBatchesPerRun = 50;

/**
 * Checks the jobs in flight whose rows have not changed for a while against their workflows,
 * batch by batch, and ends those whose workflow closed outside its own code (terminated, timed
 * out on the server) or moves them to the run a reset started. Started by the
 * `job-reconcile-<task queue>` schedule; overlapping runs are skipped.
 *
 * A backlog larger than one run's batches is covered over several runs: each run resumes after
 * the last job the previous one checked, as that run's result says (the schedule hands each run
 * the previous completed run's result), reaches the end of the jobs in order of id, and goes on
 * from the first up to where it started. So every quiet job in flight is checked within
 * ⌈jobs ÷ (batch size × batches per run)⌉ runs, each doing no more than its batches.
 *
 * Then it frees the provider leases of operations that ended jobs left running and that have
 * ended since (a Veo generation cannot be stopped: its cancelled vlog's lease is held until it
 * ends), and drops the cost holds whose attempt can no longer start (taken by an API that died
 * before it started the job's workflow or sent its retry). A failure in either leaves its work
 * to the next run, and this run's result stands.
 */
export async function reconcileJobProjections(
  input: JobReconcileInput,
): Promise<JobReconcileResult> {
  const result = await reconcileBatches(input);
  if (patched(freesLeasesLeftRunning)) {
    await freeLeasesLeftRunning().catch(
      leftToNextRun('leases of operations left running not freed this run', undefined),
    );
  }
  if (patched(releasesCostHoldsLeftOpen)) {
    await releaseCostHoldsLeftOpen({ staleMs: input.staleMs, limit: input.batchSize }).catch(
      leftToNextRun('cost holds left open not released this run', undefined),
    );
  }
  return result;
}

async function reconcileBatches(input: JobReconcileInput): Promise<JobReconcileResult> {
  const batches = input.maxBatchesPerRun ?? maxBatchesPerRun;
  const total = { checked: 0, ended: 0, followed: 0 };
  // Runs scheduled before the cursor, and runs started by hand, have none: from the first id.
  const startedAfter = resumeAfterId(workflowInfo().lastResult);
  let afterId = startedAfter;
  let wrapped = false;
  for (let batch = 0; batch < batches; batch += 1) {
    const done: ReconcileJobBatchResult = await reconcileJobBatch({
      staleMs: input.staleMs,
      ...(input.reopenWindowMs !== undefined && { reopenWindowMs: input.reopenWindowMs }),
      limit: input.batchSize,
      afterId,
      ...(wrapped && startedAfter !== null && { throughId: startedAfter }),
    });
    total.checked += done.checked;
    total.ended += done.ended;
    total.followed += done.followed;
    if (done.checked === input.batchSize && done.lastId !== null) {
      afterId = done.lastId;
      continue;
    }
    // The last of the jobs, or back where the run started: every job has been checked once.
    if (startedAfter === null || wrapped) return { ...total, complete: true, resumeAfterId: null };
    wrapped = true;
    afterId = null;
  }
  return { ...total, complete: false, resumeAfterId: afterId };
}

/** Where the previous run stopped, from its result; null when it finished or never said. */
function resumeAfterId(lastResult: unknown): string | null {
  if (typeof lastResult !== 'object' || lastResult === null) return null;
  const { resumeAfterId } = lastResult as Partial<JobReconcileResult>;
  return typeof resumeAfterId === 'string' ? resumeAfterId : null;
}
