import { randomUUID } from 'node:crypto';
import { setTimeout } from 'node:timers/promises';
import {
  isGrpcServiceError,
  ServiceError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type WorkflowHandle,
} from '@temporalio/client';
import type { FastifyBaseLogger } from 'fastify';
import type { z } from 'zod';
import type { JobRow } from '../../db/schema.js';
import type { JobProgress } from '../../jobs/contracts.js';
import { isTerminalStatus } from '../../jobs/model.js';
import { isTemporalUnavailable, type TemporalAccess } from '../../temporal-client.js';
import {
  cancelJobUpdate,
  cancelRefusal,
  jobProgressQuery,
  maxJobRetries,
  retryJobUpdate,
  retryRefusal,
} from '../../workflows/job-messages.js';
import { ApiError } from '../errors.js';
import type { cancelAcceptedSchema, retryAcceptedSchema } from '../schemas/job-actions.js';

/** gRPC FAILED_PRECONDITION: the server's answer to an Update whose workflow task failed. */
const failedPrecondition = 9;

function isAbortedWithItsWorkflowTask(error: unknown): boolean {
  return (
    error instanceof ServiceError &&
    isGrpcServiceError(error.cause) &&
    Number(error.cause.code) === failedPrecondition
  );
}

export interface JobActionSettings {
  /** Time a workflow gets to accept or refuse a cancel or retry before the API answers 503. */
  timeoutMs: number;
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
 */
export function createJobActions(temporal: TemporalAccess, settings: JobActionSettings) {
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
  ): Promise<Result> {
    const handle = temporal.client.workflow.getHandle(row.workflow_id);
    const deadline = Date.now() + settings.timeoutMs;
    const updateId = randomUUID();
    for (let pauseMs = 20; ; pauseMs = Math.min(pauseMs * 2, 500)) {
      try {
        return await temporal.client.withDeadline(deadline, () => send(handle, updateId));
      } catch (error) {
        if (error instanceof WorkflowUpdateFailedError) {
          throw new ApiError(refused, error.cause?.message ?? error.message);
        }
        if (error instanceof WorkflowNotFoundError) throw new ApiError(refused, closedMessage);
        const aborted = isAbortedWithItsWorkflowTask(error);
        if (aborted && Date.now() + pauseMs < deadline) {
          await setTimeout(pauseMs);
          continue;
        }
        if (aborted || error instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
          throw new ApiError(
            'JOB_CONTROL_TIMEOUT',
            `No worker took the ${what} request within ${settings.timeoutMs} ms; it may still ` +
              'take effect when one is back. Send it again to learn the outcome.',
            undefined,
            { 'retry-after': '5' },
          );
        }
        if (isTemporalUnavailable(error)) {
          throw new ApiError(
            'TEMPORAL_UNAVAILABLE',
            `The ${what} request could not be sent: Temporal is unavailable`,
          );
        }
        throw error;
      }
    }
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

    async retry(
      row: JobRow,
      requestedBy: string,
      noun: string,
      log: FastifyBaseLogger,
    ): Promise<z.infer<typeof retryAcceptedSchema>> {
      // A completed, cancelled or exhausted job's workflow has closed and could not answer;
      // any other status may be stale, so the workflow judges the rest.
      const closed = row.status === 'completed' || row.status === 'cancelled';
      const refusal = closed
        ? retryRefusal(row.status, row.attempt, noun)
        : row.attempt > maxJobRetries
          ? retryRefusal('failed', row.attempt, noun)
          : null;
      if (refusal) throw new ApiError('JOB_NOT_RETRYABLE', refusal);
      const { attempt } = await control(
        row,
        'retry',
        'JOB_NOT_RETRYABLE',
        `The ${noun} is ${row.status} and can no longer be retried`,
        (handle, updateId) =>
          handle.executeUpdate(retryJobUpdate, { args: [{ requestedBy }], updateId }),
      );
      log.info({ attempt }, 'retry accepted');
      return { id: row.id, attempt, retryCount: attempt - 1 };
    },

    /** The workflow's own answer, or null when it cannot give one (closed, unreachable). */
    async live(row: JobRow, log: FastifyBaseLogger): Promise<JobProgress | null> {
      // A query waits for a worker to answer it: with none polling, it would hold the request.
      return temporal.client
        .withDeadline(Date.now() + liveQueryTimeoutMs, () =>
          temporal.client.workflow.getHandle(row.workflow_id).query(jobProgressQuery),
        )
        .catch((error: unknown) => {
          log.warn({ err: error }, 'live progress query failed');
          return null;
        });
    },
  };
}

export type JobActions = ReturnType<typeof createJobActions>;
