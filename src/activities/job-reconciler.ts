// The reconciler: a job's row is projected by its own workflow, so a workflow that closes
// without running its code to the end (terminated in the Web UI or the CLI, a batch terminate,
// a server-side execution or run timeout, a reset) would leave the job in flight forever. Run
// in batches by the `reconcileJobProjections` workflow, which a Temporal Schedule starts.
import { log } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import type { Db } from '../db/database.js';
import {
  applyJobUpdate,
  dropExpiredReservations,
  endJobInFlight,
  findJobsToReconcile,
  followResetRun,
  type JobInFlight,
} from '../db/jobs.js';
import { listJobsAwaitingTurn } from '../db/job-turns.js';
import {
  providerWaitersToWake,
  releaseEndedJobLeases,
  type JobLease,
} from '../db/provider-quota.js';
import { jobKindRegistry } from '../kinds/index.js';
import { forgetAnswersOfEndedAttempts, forgetModelAnswers } from '../db/model-answers.js';
import { dropCostHoldLeftOpen, listCostHoldsLeftOpen } from '../db/costs.js';
import { forgetRedrive } from '../db/failure-groups.js';
import { chargeEndedJob, settleJobCost } from './job-projection.js';
import type { ActivityDependencies } from './index.js';
import type { ReconcileJobBatchInput, ReconcileJobBatchResult } from '../jobs/contracts.js';
import { isTerminalStatus } from '../jobs/model.js';
import {
  closedJobSnapshot,
  reopenableEndCodes,
  type WorkflowClosure,
} from '../jobs/workflow-closure.js';
import { countJobTransition } from '../metrics/job-metrics.js';
import { jobReconcileBatches, jobsReconciled } from '../metrics/metrics.js';
import { jobProgressQuery, jobTurnSignal, providerTurnSignal } from '../workflows/job-messages.js';
import { reportHeartbeat } from './heartbeat.js';

const { HistoryEventFilterType } = proto.temporal.api.enums.v1;

/** Ids safe to quote in a visibility query; any other is checked by a describe. */
const plainId = /^[A-Za-z0-9._:-]+$/;

/** A reset run whose worker does not answer soon is left to project itself. */
const progressQueryTimeoutMs = 5_000;

/** What became of one job in flight once checked. */
type Outcome = 'alive' | 'ended' | 'followed' | 'moved';

export function createJobReconcilerActivities(deps: ActivityDependencies) {
  const { db, temporalClient } = deps;
  // At 0 from the start, so that the first batch is an increase and none at all is a flat 0.
  for (const outcome of ['completed', 'failed']) jobReconcileBatches.inc({ outcome }, 0);
  async function reconcileBatch(input: ReconcileJobBatchInput): Promise<ReconcileJobBatchResult> {
    if (!temporalClient) throw new Error('The job reconciler needs a Temporal client');
    const client = temporalClient;
    const jobs = await findJobsToReconcile(db, {
      staleMs: input.staleMs,
      reopenWindowMs: input.reopenWindowMs ?? 0,
      endedWith: reopenableEndCodes,
      afterId: input.afterId,
      ...(input.throughId !== undefined && { throughId: input.throughId }),
      limit: input.limit,
    });
    const running = await runningRuns(client, jobs);
    const failures: unknown[] = [];
    let succeeded = 0;
    const result = {
      checked: jobs.length,
      ended: 0,
      followed: 0,
      lastId: jobs.at(-1)?.id ?? null,
    };
    for (const job of jobs) {
      const listed = running.get(job.workflow_id);
      // Listed running on the run it follows (or before any run projected): in flight.
      if (listed !== undefined && (job.run_id === null || listed === job.run_id)) continue;
      // A job it ended moves only to another run visibility lists running: a reset since.
      if (isTerminalStatus(job.status) && (listed === undefined || job.run_id === null)) {
        continue;
      }
      try {
        const outcome =
          isTerminalStatus(job.status) && job.run_id !== null && listed !== undefined
            ? await followRun(db, client, job, job.run_id, listed)
            : await reconcileJob(deps, client, job);
        if (outcome === 'ended') result.ended += 1;
        if (outcome === 'followed') result.followed += 1;
        succeeded += 1;
      } catch (error) {
        // One job's trouble leaves the others checked; the next run tries it again.
        failures.push(error);
        log.warn('a job could not be reconciled', {
          jobId: job.id,
          error: (error as Error).message,
        });
      }
      reportHeartbeat({ jobId: job.id });
    }
    // Nothing checked and everything failed: Temporal or the database is down, retry the batch.
    if (failures.length > 0 && succeeded === 0) throw failures[0];
    if (result.ended + result.followed > 0) log.info('jobs reconciled', result);
    return result;
  }

  return {
    /**
     * Checks up to `limit` jobs in flight whose row has not changed for `staleMs` against their
     * workflows. One visibility list finds the batch's running workflows; each job without one
     * is described, and a closed workflow ends the job with a status and code that say how it
     * closed, a reset moves the job to the new run. A job it ended itself within
     * `reopenWindowMs` follows a reset of its workflow the same way. Every write is conditional
     * on the row as it was read, so a projection that lands meanwhile wins. The batch that
     * starts from the first job (no `afterId`) then forgets the model answers still kept for
     * attempts that have ended (forgetAnswersOfEndedAttempts): once a pass over the jobs, not
     * once a batch, since that statement looks at every job's answers whatever the batch.
     */
    async reconcileJobBatch(input: ReconcileJobBatchInput): Promise<ReconcileJobBatchResult> {
      try {
        const result = await reconcileBatch(input);
        if (input.afterId === null) {
          const forgotten = await forgetAnswersOfEndedAttempts(db);
          if (forgotten > 0) log.info('model answers of ended attempts forgotten', { forgotten });
        }
        jobReconcileBatches.inc({ outcome: 'completed' });
        return result;
      } catch (error) {
        jobReconcileBatches.inc({ outcome: 'failed' });
        throw error;
      }
    },

    /**
     * Frees the provider leases ended jobs still hold for operations they left running, once
     * the provider says those ended (each kind's freeLeasesLeftRunning), and wakes the jobs the
     * freed leases admit, as the end of a live job's operation does.
     */
    async freeLeasesLeftRunning(): Promise<{ freed: number }> {
      if (!temporalClient) throw new Error('The job reconciler needs a Temporal client');
      const freed: JobLease[] = [];
      for (const registration of jobKindRegistry) {
        freed.push(...((await registration.freeLeasesLeftRunning?.(deps)) ?? []));
      }
      const lastFreedOf = new Map(freed.map((lease) => [lease.provider, lease.jobId]));
      for (const [provider, jobId] of lastFreedOf) {
        await wakeVideoGenerationWaiters(deps, temporalClient, jobId, [provider]);
      }
      if (freed.length > 0) log.info('leases of operations left running freed', { freed });
      return { freed: freed.length };
    },

    /**
     * Drops the cost holds whose attempt can no longer start (listCostHoldsLeftOpen): a hold an
     * API took for a job whose workflow it never started, or for a retry it never sent, before
     * it died. The workflow decides: a hold stays while its workflow is running (its first
     * write makes the row; an Update sent again may still take the retry), and goes once the
     * workflow is not found or has closed, with the record of a re-drive that asked for its
     * attempt. Without this, such a hold counts against its owner's budgets forever. The expired reservations such an API left go too (dropExpiredReservations).
     */
    async releaseCostHoldsLeftOpen(input: {
      staleMs: number;
      limit: number;
    }): Promise<{ checked: number; released: number; reservationsDropped: number }> {
      if (!temporalClient) throw new Error('The job reconciler needs a Temporal client');
      const holds = await listCostHoldsLeftOpen(db, input);
      let released = 0;
      for (const hold of holds) {
        let running;
        try {
          const description = await temporalClient.workflow.getHandle(hold.workflowId).describe();
          running = description.status.name === 'RUNNING';
        } catch (error) {
          if (!(error instanceof WorkflowNotFoundError)) throw error;
          running = false;
        }
        if (!running && (await dropCostHoldLeftOpen(db, hold))) {
          await forgetRedrive(db, hold);
          released += 1;
          log.info('cost hold left open released', { jobId: hold.jobId, attempt: hold.attempt });
        }
        reportHeartbeat({ jobId: hold.jobId });
      }
      const reservationsDropped = await dropExpiredReservations(db, input);
      if (reservationsDropped > 0)
        log.info('expired reservations dropped', { reservationsDropped });
      return { checked: holds.length, released, reservationsDropped };
    },
  };
}

/** The running run of each of the jobs' workflows that visibility lists, in one query. */
async function runningRuns(client: Client, jobs: JobInFlight[]): Promise<Map<string, string>> {
  const ids = jobs.map((job) => job.workflow_id).filter((id) => plainId.test(id));
  const running = new Map<string, string>();
  if (ids.length === 0) return running;
  const query = `ExecutionStatus = 'Running' AND WorkflowId IN (${ids.map((id) => `'${id}'`).join(', ')})`;
  for await (const execution of client.workflow.list({ query })) {
    running.set(execution.workflowId, execution.runId);
  }
  return running;
}

/**
 * Describes the job's workflow (visibility may lag; a describe does not) and acts on what it
 * finds: nothing while the run the job follows is running, the new run after a reset, the
 * job's end once the workflow closed.
 */
async function reconcileJob(
  deps: ActivityDependencies,
  client: Client,
  job: JobInFlight,
): Promise<Outcome> {
  const { db } = deps;
  let description;
  try {
    description = await client.workflow.getHandle(job.workflow_id).describe();
  } catch (error) {
    if (!(error instanceof WorkflowNotFoundError)) throw error;
    return endJob(deps, client, job, {
      how: 'not_found',
      runId: job.run_id ?? '',
      closedAt: now(),
    });
  }
  if (description.status.name === 'RUNNING') {
    return description.runId === job.run_id || job.run_id === null
      ? 'alive'
      : followRun(db, client, job, job.run_id, description.runId);
  }
  const closure = await readClosure(client, job.workflow_id, description.runId);
  return closure ? endJob(deps, client, job, closure) : 'alive';
}

/**
 * The current run is not the one the job's row names. After a continue-as-new (a retry) the
 * new run projects itself soon with higher numbers; after a reset the row is moved to the new
 * run, which numbers its updates from the reset point again, and its state is read at once.
 */
async function followRun(
  db: Db,
  client: Client,
  job: JobInFlight,
  fromRunId: string,
  runId: string,
): Promise<Outcome> {
  const previous = await client.workflow.getHandle(job.workflow_id, fromRunId).describe();
  if (previous.status.name === 'CONTINUED_AS_NEW' || previous.status.name === 'RUNNING') {
    return 'alive';
  }
  const moved = await followResetRun(db, {
    jobId: job.id,
    fromRunId,
    expectedSeq: job.projection_seq,
    runId,
    endedWith: reopenableEndCodes,
  });
  if (!moved) return 'moved';
  jobsReconciled.inc({ kind: job.kind, reason: 'reset' });
  log.info('job follows the run a reset started', { jobId: job.id, fromRunId, runId });
  // The new run's updates since the reset were older than the row: its state now is what counts.
  try {
    const progress = await client.withDeadline(Date.now() + progressQueryTimeoutMs, () =>
      client.workflow.getHandle(job.workflow_id, runId).query(jobProgressQuery),
    );
    const { jobId, seq, ...snapshot } = progress;
    const update = { jobId, seq, snapshot };
    const applied = await applyJobUpdate(db, update);
    if (applied) countJobTransition(update, applied);
  } catch (error) {
    // Its next update brings the row up to date all the same.
    log.warn('the run a reset started did not answer its progress query', {
      jobId: job.id,
      runId,
      error: (error as Error).message,
    });
  }
  return 'followed';
}

/** How the run closed, from its close event; null if it turns out to have continued as new. */
async function readClosure(
  client: Client,
  workflowId: string,
  runId: string,
): Promise<WorkflowClosure | null> {
  const { history } = await client.workflowService.getWorkflowExecutionHistory({
    namespace: client.options.namespace,
    execution: { workflowId, runId },
    historyEventFilterType: HistoryEventFilterType.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT,
  });
  const event = history?.events?.at(-1);
  if (!event) return null;
  const closedAt = event.eventTime?.seconds
    ? new Date(
        Number(event.eventTime.seconds) * 1000 + (event.eventTime.nanos ?? 0) / 1e6,
      ).toISOString()
    : now();
  const base = { runId, closedAt };
  if (event.workflowExecutionTerminatedEventAttributes) {
    const { reason, identity } = event.workflowExecutionTerminatedEventAttributes;
    return { ...base, how: 'terminated', reason: reason || null, identity: identity || null };
  }
  if (event.workflowExecutionTimedOutEventAttributes) return { ...base, how: 'timed_out' };
  if (event.workflowExecutionCanceledEventAttributes) return { ...base, how: 'cancelled' };
  if (event.workflowExecutionFailedEventAttributes) {
    const failure = event.workflowExecutionFailedEventAttributes.failure;
    return {
      ...base,
      how: 'failed',
      failureType: failure?.applicationFailureInfo?.type || null,
      message: failure?.message || 'The workflow failed',
    };
  }
  if (event.workflowExecutionCompletedEventAttributes) {
    // The result as the client decodes it (its data converter), from the same run.
    const result: unknown = await client.workflow
      .getHandle(workflowId, runId, { followRuns: false })
      .result();
    return { ...base, how: 'completed', result };
  }
  return null;
}

/**
 * Ends the job as its workflow closed, unless the row moved on since it was read, and charges
 * what its kind's provider bills although nothing looks at it any more (a generation left
 * running), as the projection of an end does.
 */
async function endJob(
  deps: ActivityDependencies,
  client: Client,
  job: JobInFlight,
  closure: WorkflowClosure,
): Promise<Outcome> {
  const { db } = deps;
  const snapshot = closedJobSnapshot(
    {
      progress: job.progress,
      attempt: job.attempt,
      startedAt: job.started_at?.toISOString() ?? null,
    },
    closure,
  );
  const applied = await endJobInFlight(db, {
    jobId: job.id,
    expectedSeq: job.projection_seq,
    snapshot,
  });
  if (!applied) return 'moved';
  countJobTransition({ jobId: job.id, seq: job.projection_seq + 1, snapshot }, applied);
  jobsReconciled.inc({ kind: job.kind, reason: closure.how });
  const freed = await releaseEndedJobLeases(db, job.id);
  await forgetModelAnswers(db, job.id, job.attempt);
  await chargeEndedJob(deps, job.id, job.kind);
  await settleJobCost(db, job.id, snapshot);
  // The jobs waiting behind it in its key's line, or for the Veo lease it held, would only
  // notice at their next recheck.
  for (const waiting of await listJobsAwaitingTurn(db, job.id)) {
    await client.workflow
      .getHandle(waiting)
      .signal(jobTurnSignal, { fromJobId: job.id })
      // A job that has closed meanwhile needs no wake-up.
      .catch(() => undefined);
  }
  await wakeVideoGenerationWaiters(deps, client, job.id, freed);
  log.info('job ended as its workflow closed', {
    jobId: job.id,
    how: closure.how,
    status: snapshot.status,
    code: snapshot.error?.code ?? null,
  });
  return 'ended';
}

/**
 * Wakes the vlogs a Veo lease freed by the job's end would admit, as a vlog whose generation
 * ended does (its workflow cannot now). Nothing to wake when Veo is not metered or the job held
 * no Veo lease (`freed`: the providers whose lease it held).
 */
async function wakeVideoGenerationWaiters(
  deps: ActivityDependencies,
  client: Client,
  jobId: string,
  freed: string[],
): Promise<void> {
  const metered = deps.providers.quotas.videoOperations;
  if (!metered || !freed.includes(metered.provider)) return;
  const waiting = await providerWaitersToWake(deps.db, metered.provider, metered.maxConcurrent);
  await Promise.all(
    waiting.map((id) =>
      client.workflow
        .getHandle(id)
        .signal(providerTurnSignal, { fromJobId: jobId })
        // A vlog that has closed meanwhile needs no wake-up.
        .catch(() => undefined),
    ),
  );
}

function now(): string {
  return new Date().toISOString();
}
