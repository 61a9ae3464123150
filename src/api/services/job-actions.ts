import { randomUUID } from 'node:crypto';
import { setTimeout } from 'node:timers/promises';
import {
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type WorkflowHandle,
} from '@temporalio/client';
import type { FastifyBaseLogger } from 'fastify';
import type { z } from 'zod';
import { dropCostHold, isCostHeld } from '../../db/costs.js';
import type { Db } from '../../db/database.js';
import { lockOwner, markJobRetried } from '../../db/jobs.js';
import type { JobRow } from '../../db/schema.js';
import type { JobProgress } from '../../jobs/contracts.js';
import { isTerminalStatus, maxJobRetries } from '../../jobs/model.js';
import {
  isFailedPrecondition,
  isTemporalUnavailable,
  temporalAnswers,
  type TemporalAccess,
} from '../../temporal-client.js';
import {
  cancelJobUpdate,
  cancelRefusal,
  jobProgressQuery,
  retryJobUpdate,
  retryRefusal,
} from '../../workflows/job-messages.js';
import { ApiError } from '../errors.js';
import type { cancelAcceptedSchema, retryAcceptedSchema } from '../schemas/job-actions.js';
import { estimateOf, holdAttemptCost, type BudgetDefaults } from './budgets.js';
import { refuseOwnerAtJobCap } from './job-starter.js';
import { sharedWhileRunning } from './shared-while-running.js';

export interface JobActionSettings {
  /** Time a workflow gets to accept or refuse a cancel or retry before the API answers 503. */
  timeoutMs: number;
}

/** Where a retry holds its job's estimate again, and the budgets and cap it is held to. */
export interface JobActionCosts {
  db: Db;
  budgets: BudgetDefaults;
  /** A retry puts its job in flight again: refused 429 for an owner at this many, as a start. */
  maxJobsInFlight: number;
}

/**
 * A completed, cancelled or exhausted job's workflow has closed and could not answer; any other
 * status may be stale, so the workflow judges the rest.
 */
function refuseRetryOfClosedJob(row: JobRow, noun: string): void {
  const closed = row.status === 'completed' || row.status === 'cancelled';
  const refusal = closed
    ? retryRefusal(row.status, row.attempt, noun)
    : row.attempt > maxJobRetries
      ? retryRefusal('failed', row.attempt, noun)
      : null;
  if (refusal) throw new ApiError('JOB_NOT_RETRYABLE', refusal);
}

/**
 * The answer to a retry of an attempt the job is no longer on: only a retry (or a re-drive)
 * moves a job to its next attempt, so an earlier attempt was retried, and the retry asking for
 * it again is that one's replay. A later attempt than the job's has not run.
 */
function retriedBefore(
  row: Pick<JobRow, 'id' | 'attempt'>,
  ofAttempt: number,
  noun: string,
): z.infer<typeof retryAcceptedSchema> {
  if (ofAttempt > row.attempt) {
    throw new ApiError(
      'JOB_NOT_RETRYABLE',
      `The ${noun} is on attempt ${row.attempt}; attempt ${ofAttempt} has not run`,
    );
  }
  return { id: row.id, attempt: ofAttempt + 1, retryCount: ofAttempt };
}

/**
 * The one Update id of every retry of a job's next attempt: Temporal applies an Update id once
 * in a run, and a request with an id it has seen waits for that Update's outcome. A retry the
 * API gave up waiting for (503 JOB_CONTROL_TIMEOUT) and then sent again is thus one retry, not
 * two attempts.
 */
function retryUpdateId(row: Pick<JobRow, 'attempt'>): string {
  return `retry-attempt-${row.attempt + 1}`;
}

/** The answer to a cancel or retry Temporal could not be asked, or not be heard from. */
function temporalUnavailable(what: string): ApiError {
  return new ApiError(
    'TEMPORAL_UNAVAILABLE',
    `The ${what} request could not be sent, or its answer not heard: Temporal is unavailable. ` +
      'Send it again once it is back.',
  );
}

/**
 * The attempt of the job's workflow task when workers took it before and did not complete it
 * (failed it: a search attribute the namespace lacks, a nondeterministic change; or were lost
 * with it), or null. Workers that keep failing the task look, from the API, like none at all.
 */
async function failingTaskAttempt(
  temporal: TemporalAccess,
  handle: WorkflowHandle,
): Promise<number | null> {
  const described = await temporal.client
    .withDeadline(Date.now() + 1_000, () => handle.describe())
    .catch(() => null);
  const attempt = described?.raw.pendingWorkflowTask?.attempt ?? 0;
  return attempt > 1 ? attempt : null;
}

/** How long `?live=true` waits for the workflow's answer before answering `live: null`. */
const liveQueryTimeoutMs = 3_000;

/**
 * Cancel, retry and live progress, the same for every job kind: routes look up the caller's
 * job (404 for anyone else's), then hand it here. `noun` names the job in messages.
 *
 * Cancel and retry are Updates the job's workflow judges one at a time, so when both are sent
 * together exactly one is accepted and the other answers 409. The stored status answers only
 * where it is final: a job projected as ended cannot be cancelled, a completed or cancelled one
 * (whose workflow has closed) cannot be retried.
 *
 * A retry starts paid work again, so it holds the job's estimate for its new attempt first, as
 * a submission does (under the owner's lock, 402 BUDGET_EXCEEDED before the workflow is asked),
 * and puts the job in flight again, so it is held to the owner's in-flight cap as a start is;
 * the hold is dropped when the workflow does not take the retry, and otherwise settled or
 * released when that attempt ends.
 */
export function createJobActions(
  temporal: TemporalAccess,
  settings: JobActionSettings,
  costs: JobActionCosts,
) {
  /** The live queries running, by workflow id: reads of a job while one runs share it. */
  const liveQuery = sharedWhileRunning<string, JobProgress | null>();

  /**
   * Sends an Update and waits for the workflow's verdict, mapping its refusal to `refused`.
   *
   * The server aborts an Update whose workflow task failed under it (FAILED_PRECONDITION), as
   * when an activity's result lands while the task that carries the Update runs: nothing was
   * applied, so it is sent again, under the same id so the workflow applies it at most once.
   */
  async function control<Result>(
    row: JobRow,
    what: string,
    refused: 'JOB_NOT_CANCELLABLE' | 'JOB_NOT_RETRYABLE',
    closedMessage: string,
    send: (handle: WorkflowHandle, updateId: string) => Promise<Result>,
    updateId: string = randomUUID(),
  ): Promise<Result> {
    const handle = temporal.client.workflow.getHandle(row.workflow_id);
    const deadline = Date.now() + settings.timeoutMs;
    for (let pauseMs = 20; ; pauseMs = Math.min(pauseMs * 2, 500)) {
      try {
        return await temporal.client.withDeadline(deadline, () => send(handle, updateId));
      } catch (error) {
        if (error instanceof WorkflowUpdateFailedError) {
          throw new ApiError(refused, error.cause?.message ?? error.message);
        }
        if (error instanceof WorkflowNotFoundError) throw new ApiError(refused, closedMessage);
        const aborted = isFailedPrecondition(error);
        if (aborted && Date.now() + pauseMs < deadline) {
          await setTimeout(pauseMs);
          continue;
        }
        if (aborted || error instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
          // Out of time because Temporal is out, not because no worker took the request.
          if (!(await temporalAnswers(temporal))) throw temporalUnavailable(what);
          const failing = await failingTaskAttempt(temporal, handle);
          throw new ApiError(
            'JOB_CONTROL_TIMEOUT',
            failing === null
              ? `No worker took the ${what} request within ${settings.timeoutMs} ms; it may ` +
                  'still take effect when one is back. Send it again to learn the outcome.'
              : `The ${what} request waits on the job's workflow task, which workers have ` +
                  `taken ${failing - 1} times without completing it (each failed it or was ` +
                  "lost: the job's Temporal history says which, and why); it takes effect " +
                  'once one completes it. Send it again then.',
            undefined,
            { 'retry-after': '5' },
          );
        }
        if (isTemporalUnavailable(error)) throw temporalUnavailable(what);
        throw error;
      }
    }
  }

  /** The retry Update alone, once the stored status does not already refuse it. */
  async function sendRetry(
    row: JobRow,
    requestedBy: string,
    noun: string,
    log: FastifyBaseLogger,
  ): Promise<z.infer<typeof retryAcceptedSchema>> {
    refuseRetryOfClosedJob(row, noun);
    const { attempt } = await control(
      row,
      'retry',
      'JOB_NOT_RETRYABLE',
      `The ${noun} is ${row.status} and can no longer be retried`,
      (handle, updateId) =>
        handle.executeUpdate(retryJobUpdate, { args: [{ requestedBy }], updateId }),
      retryUpdateId(row),
    );
    log.info({ attempt }, 'retry accepted');
    return { id: row.id, attempt, retryCount: attempt - 1 };
  }

  return {
    async cancel(
      row: JobRow,
      reason: string | null,
      noun: string,
      log: FastifyBaseLogger,
    ): Promise<z.infer<typeof cancelAcceptedSchema>> {
      const refusal = isTerminalStatus(row.status) ? cancelRefusal(row.status, noun) : null;
      if (refusal) throw new ApiError('JOB_NOT_CANCELLABLE', refusal);
      const { status } = await control(
        row,
        'cancel',
        'JOB_NOT_CANCELLABLE',
        `The ${noun} has already finished and cannot be cancelled`,
        (handle, updateId) =>
          handle.executeUpdate(cancelJobUpdate, { args: [{ reason }], updateId }),
      );
      log.info({ reason }, 'cancel accepted');
      return { id: row.id, status, cancelRequested: true };
    },

    /**
     * An owner's retry: the new attempt's hold, then the Update, then the job shown accepted
     * again (markJobRetried) before the 202, so that a client reading it or resuming its stream
     * right after is not told of the failure it retried. Every retry of one attempt is
     * the same Update (retryUpdateId), so a retry sent again, or beside another retry or a
     * re-drive of that attempt, waits for that one's verdict instead of starting one more
     * attempt. A retry the workflow refuses drops the hold it took, so the job is left as it
     * was; one nobody judged in time (no worker, Temporal not answering) keeps it, since the
     * Update may still be taken once a worker is back, and its attempt must then run held.
     */
    async retry(
      row: JobRow,
      { requestedBy, ofAttempt }: { requestedBy: string; ofAttempt?: number | undefined },
      noun: string,
      log: FastifyBaseLogger,
    ): Promise<{ accepted: z.infer<typeof retryAcceptedSchema>; replayed: boolean }> {
      if (ofAttempt !== undefined && ofAttempt !== row.attempt) {
        return { accepted: retriedBefore(row, ofAttempt, noun), replayed: true };
      }
      refuseRetryOfClosedJob(row, noun);
      const attempt = row.attempt + 1;
      const held = await costs.db.transaction().execute(async (tx) => {
        await lockOwner(tx, row.owner_id);
        // A retry of this attempt under way (its hold taken) is this one sent again: it only
        // learns that one's answer, and must not be refused for the place that one takes.
        if (!(await isCostHeld(tx, row.id, attempt))) {
          await refuseOwnerAtJobCap(tx, row.owner_id, costs.maxJobsInFlight);
        }
        return holdAttemptCost(
          tx,
          { jobId: row.id, ownerId: row.owner_id, attempt, estimate: estimateOf(row) },
          costs.budgets,
        );
      });
      let accepted: z.infer<typeof retryAcceptedSchema>;
      try {
        accepted = await sendRetry(row, requestedBy, noun, log);
      } catch (error) {
        // Only a hold this request took: one it found belongs to a retry whose Update may
        // have been taken meanwhile (its attempt may be running, not yet projected).
        if (held && error instanceof ApiError && error.code === 'JOB_NOT_RETRYABLE') {
          await dropCostHold(costs.db, row.id, attempt).catch((dropError: unknown) => {
            log.error({ err: dropError, attempt }, 'cost hold of a refused retry not dropped');
          });
        }
        throw error;
      }
      // The retry is taken whatever this write does: without it, the job shows its new attempt
      // once that attempt's run writes its first state.
      await markJobRetried(costs.db, {
        id: row.id,
        projectionSeq: row.projection_seq,
        attempt: accepted.attempt,
        phase: 'retried',
      }).catch((error: unknown) => {
        log.warn({ err: error, attempt: accepted.attempt }, 'accepted retry not shown yet');
      });
      return { accepted, replayed: false };
    },

    /**
     * Sends the retry Update alone, holding nothing: for a caller that holds the new attempt's
     * estimate itself, in a transaction of its own under the owner's lock (a re-drive).
     */
    sendRetry,

    /**
     * The workflow's own answer, or null when it cannot give one: the job has ended (its row is
     * final, and a query of a closed workflow has a worker replay its whole history), or the
     * workflow does not answer in time. Reads of one job that come while its query runs share
     * its answer, so hard polling makes one query a job at a time, not one a read.
     */
    live(row: JobRow, log: FastifyBaseLogger): Promise<JobProgress | null> {
      if (isTerminalStatus(row.status)) return Promise.resolve(null);
      // A query waits for a worker to answer it: with none polling, it would hold the request.
      return liveQuery(row.workflow_id, () =>
        temporal.client
          .withDeadline(Date.now() + liveQueryTimeoutMs, () =>
            temporal.client.workflow.getHandle(row.workflow_id).query(jobProgressQuery),
          )
          .catch((error: unknown) => {
            log.warn({ err: error }, 'live progress query failed');
            return null;
          }),
      );
    },
  };
}

export type JobActions = ReturnType<typeof createJobActions>;
