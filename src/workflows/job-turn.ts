/**
 * Concurrency keys, on the workflow side: a job with a key waits its turn before its first
 * stage, shown `queued` with the number of jobs ahead; a keyed job that ends wakes the jobs
 * waiting behind it. The line itself is kept in the database (`src/db/job-turns.ts`).
 *
 * No `patched()` guard: a job without a key runs no command of this module, and every job
 * accepted before keys existed has none, so no recorded history can diverge.
 */
import {
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  proxyActivities,
  setHandler,
} from '@temporalio/workflow';
import type { SharedActivities } from '../activities/index.js';
import type { JobRecord } from '../jobs/contracts.js';
import { jobTurnSignal } from './job-messages.js';
import type { JobTracker } from './job-tracker.js';
import { databaseRetry } from './database-retry.js';

// Like the projection: the line must be read whenever the database comes back.
const line = proxyActivities<SharedActivities>({
  startToCloseTimeout: '15s',
  retry: databaseRetry,
});

/**
 * A waiting job asks again on this timer even when no job wakes it, so a wake-up that never
 * comes (a job of the line ended outside its workflow's control) delays it, never stalls it.
 * Doubled while nothing changes, so a long wait adds few events to the history.
 */
const firstRecheckMs = 15_000;
const maxRecheckMs = 5 * 60_000;

/** The phase a waiting job shows. */
export function queuedPhase(ahead: number): string {
  return `queued: ${ahead} ahead`;
}

/**
 * Returns once the job has the turn of its key: at once without a key, else after waiting in
 * status `queued`. Cancelling the calling scope ends the wait.
 */
export async function awaitJobTurn(tracker: JobTracker): Promise<void> {
  const { job } = tracker;
  if (!job.concurrencyKey) return;
  let woken = false;
  setHandler(jobTurnSignal, () => {
    woken = true;
  });
  let recheckMs = firstRecheckMs;
  for (;;) {
    woken = false;
    const turn = await line.claimJobTurn({ jobId: job.id, attempt: tracker.progress().attempt });
    if (turn.granted) return;
    const phase = queuedPhase(turn.ahead);
    if (tracker.status !== 'queued' || tracker.progress().phase !== phase) {
      await tracker.update({ status: 'queued', progress: 0, phase });
    }
    const wasWoken = await condition(() => woken, recheckMs);
    recheckMs = wasWoken ? firstRecheckMs : Math.min(recheckMs * 2, maxRecheckMs);
  }
}

/**
 * Wakes the jobs waiting in the line of an ending job's key: the first takes the turn if it is
 * free, the others show their new place. Runs even while the workflow is being cancelled.
 */
export function passJobTurn(job: JobRecord): Promise<void> {
  if (!job.concurrencyKey) return Promise.resolve();
  return CancellationScope.nonCancellable(async () => {
    const waiting = await line.listJobsAwaitingTurn({ jobId: job.id });
    await Promise.all(
      waiting.map((id) =>
        getExternalWorkflowHandle(id)
          .signal(jobTurnSignal, { fromJobId: job.id })
          // A job that has closed meanwhile needs no wake-up.
          .catch(() => undefined),
      ),
    );
  });
}
