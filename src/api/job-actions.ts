import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { FastifyBaseLogger } from 'fastify';
import { z } from 'zod';
import type { JobRow } from '../db/schema.js';
import type { JobProgress } from '../jobs/messages.js';
import { isTerminalStatus } from '../jobs/model.js';
import type { TemporalAccess } from '../temporal/client.js';
import {
  cancelJobSignal,
  jobProgressQuery,
  retryJobUpdate,
  retryRefusal,
} from '../workflows/definitions.js';
import { ApiError } from './errors.js';

export const cancelBodySchema = z
  .strictObject({ reason: z.string().trim().max(500).optional() })
  .nullish();
export const cancelAcceptedSchema = z.object({
  id: z.string(),
  status: z.string(),
  cancelRequested: z.literal(true),
});
export const retryAcceptedSchema = z.object({
  id: z.string(),
  attempt: z.number(),
  retryCount: z.number().describe('Retries so far, this one included'),
});

/**
 * Cancel, retry and live progress, the same for every job kind: routes look up the caller's
 * job (404 for anyone else's), then hand it here. `noun` names the job in messages.
 */
export function createJobActions(temporal: TemporalAccess) {
  return {
    async cancel(
      row: JobRow,
      reason: string | null,
      noun: string,
      log: FastifyBaseLogger,
    ): Promise<z.infer<typeof cancelAcceptedSchema>> {
      if (isTerminalStatus(row.status)) {
        throw new ApiError(
          'JOB_NOT_CANCELLABLE',
          `The ${noun} is already ${row.status} and cannot be cancelled`,
        );
      }
      await temporal.client.workflow
        .getHandle(row.workflow_id)
        .signal(cancelJobSignal, { reason })
        .catch((error: unknown) => {
          if (error instanceof WorkflowNotFoundError) {
            throw new ApiError(
              'JOB_NOT_CANCELLABLE',
              `The ${noun} has already finished and cannot be cancelled`,
            );
          }
          throw error;
        });
      log.info({ reason }, 'cancel requested');
      return { id: row.id, status: row.status, cancelRequested: true };
    },

    async retry(
      row: JobRow,
      requestedBy: string,
      noun: string,
      log: FastifyBaseLogger,
    ): Promise<z.infer<typeof retryAcceptedSchema>> {
      // A finished or exhausted job's workflow may have closed and could not answer the Update.
      const refusal = retryRefusal(row.status, row.attempt, noun);
      if (refusal) throw new ApiError('JOB_NOT_RETRYABLE', refusal);
      try {
        const { attempt } = await temporal.client.workflow
          .getHandle(row.workflow_id)
          .executeUpdate(retryJobUpdate, { args: [{ requestedBy }] });
        log.info({ attempt }, 'retry accepted');
        return { id: row.id, attempt, retryCount: attempt - 1 };
      } catch (error) {
        if (error instanceof WorkflowUpdateFailedError) {
          throw new ApiError('JOB_NOT_RETRYABLE', error.cause?.message ?? error.message);
        }
        if (error instanceof WorkflowNotFoundError) {
          throw new ApiError(
            'JOB_NOT_RETRYABLE',
            `The ${noun} is ${row.status} and can no longer be retried`,
          );
        }
        throw error;
      }
    },

    /** The workflow's own answer, or null when it cannot give one (closed, unreachable). */
    async live(row: JobRow, log: FastifyBaseLogger): Promise<JobProgress | null> {
      return temporal.client.workflow
        .getHandle(row.workflow_id)
        .query(jobProgressQuery)
        .catch((error: unknown) => {
          log.warn({ err: error }, 'live progress query failed');
          return null;
        });
    },
  };
}

export type JobActions = ReturnType<typeof createJobActions>;
