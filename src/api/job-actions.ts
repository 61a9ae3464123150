import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { FastifyBaseLogger } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
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
import { ApiError, errorBodySchema } from './errors.js';
import { commonErrors, idParams } from './route-schemas.js';

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

/** How long `?live=true` waits for the workflow's answer before answering `live: null`. */
const liveQueryTimeoutMs = 3_000;

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

export interface JobActionRouteOptions {
  /** Path of the kind's jobs, e.g. `/vlogs`; the routes are `<path>/:id/cancel` and `/retry`. */
  path: string;
  tag: string;
  /** What the kind is called in messages. */
  noun: string;
  /** The caller's job of this kind, or a 404 ApiError. */
  findOwned: (userId: string, id: string) => Promise<JobRow>;
  actions: JobActions;
  docs: {
    cancel: { summary: string; description: string };
    retry: { summary: string; description: string };
  };
}

/** `POST <path>/:id/cancel` and `POST <path>/:id/retry`, the same for every job kind. */
export function jobActionRoutes(options: JobActionRouteOptions): FastifyPluginAsyncZod {
  const { path, tag, noun, findOwned, actions, docs } = options;
  return async (app) => {
    app.post(
      `${path}/:id/cancel`,
      {
        schema: {
          tags: [tag],
          ...docs.cancel,
          params: idParams,
          body: cancelBodySchema,
          response: { 202: cancelAcceptedSchema, ...commonErrors, 409: errorBodySchema },
        },
      },
      async (request, reply) => {
        request.log = request.log.child({ jobId: request.params.id });
        const row = await findOwned(request.userId, request.params.id);
        const reason = request.body?.reason ?? null;
        return reply.code(202).send(await actions.cancel(row, reason, noun, request.log));
      },
    );

    app.post(
      `${path}/:id/retry`,
      {
        schema: {
          tags: [tag],
          ...docs.retry,
          params: idParams,
          response: { 202: retryAcceptedSchema, ...commonErrors, 409: errorBodySchema },
        },
      },
      async (request, reply) => {
        request.log = request.log.child({ jobId: request.params.id });
        const row = await findOwned(request.userId, request.params.id);
        return reply.code(202).send(await actions.retry(row, request.userId, noun, request.log));
      },
    );
  };
}
