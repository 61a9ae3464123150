import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { JobRow } from '../../db/schema.js';
import { cancelJobSchema, retryJobSchema, type RouteDocs } from '../schemas/job-actions.js';
import type { JobActions } from '../services/job-actions.js';

export interface JobActionRouteOptions {
  /** Path of the kind's jobs, e.g. `/vlogs`; the routes are `<path>/:id/cancel` and `/retry`. */
  path: string;
  tag: string;
  /** What the kind is called in messages. */
  noun: string;
  /** The caller's job of this kind, or a 404 ApiError. */
  findOwned: (userId: string, id: string) => Promise<JobRow>;
  actions: JobActions;
  /** `retry` null: the kind has no retries, and no retry route. */
  docs: { cancel: RouteDocs; retry: RouteDocs | null };
}

/** `POST <path>/:id/cancel` and `POST <path>/:id/retry`, the same for every job kind. */
export function jobActionRoutes(options: JobActionRouteOptions): FastifyPluginAsyncZod {
  const { path, tag, noun, findOwned, actions, docs } = options;
  return async (app) => {
    app.post(
      `${path}/:id/cancel`,
      {
        schema: cancelJobSchema(tag, docs.cancel),
        // No body at all gives no reason; a JSON null is no object, and the schema refuses it.
        preValidation: async (request) => {
          if (request.body === undefined) request.body = {};
        },
      },
      async (request, reply) => {
        const row = await findOwned(request.userId, request.params.id);
        const reason = request.body?.reason ?? null;
        return reply.code(202).send(await actions.cancel(row, reason, noun, request.log));
      },
    );

    if (!docs.retry) return;
    app.post(
      `${path}/:id/retry`,
      {
        schema: retryJobSchema(tag, docs.retry),
        preValidation: async (request) => {
          if (request.body === undefined) request.body = {};
        },
      },
      async (request, reply) => {
        const row = await findOwned(request.userId, request.params.id);
        const { accepted, replayed } = await actions.retry(
          row,
          { requestedBy: request.userId, ofAttempt: request.body?.attempt },
          noun,
          request.log,
        );
        return reply.code(202).header('idempotent-replayed', String(replayed)).send(accepted);
      },
    );
  };
}
