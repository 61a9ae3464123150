import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { jobKindRegistry } from '../../kinds/index.js';
import { errorBodySchema } from '../errors.js';
import { concurrencyKeySchema } from '../schemas/common.js';
import { jobViewSchema } from '../schemas/jobs.js';
import type { StartJob } from '../services/job-starter.js';
import { toJobView } from '../services/job-views.js';

/**
 * `POST /api/<path>` for every registered kind whose start request is plain JSON: the body is
 * the job's input, validated by the kind's schema, and an optional `concurrencyKey`; the job is answered 202 as `GET /api/jobs/:id`
 * shows it.
 */
export function jobStartRoutes(
  kinds: typeof jobKindRegistry,
  startJob: StartJob,
): FastifyPluginAsyncZod {
  return async (app) => {
    for (const { declaration, startRoute } of kinds) {
      if (!startRoute) continue;
      const [type] = declaration.jobTypes;
      app.post(
        startRoute.path,
        {
          schema: {
            operationId: startRoute.operationId,
            tags: [startRoute.tag],
            summary: startRoute.summary,
            body: startRoute.body.extend({ concurrencyKey: concurrencyKeySchema }),
            response: {
              202: jobViewSchema,
              400: errorBodySchema,
              401: errorBodySchema,
              402: errorBodySchema,
              415: errorBodySchema,
              503: errorBodySchema,
            },
          },
          config: { jobView: true },
        },
        async (request, reply) => {
          const { concurrencyKey, ...input } = request.body as { concurrencyKey?: string };
          const { row } = await startJob<unknown>({
            kind: declaration,
            type,
            workflowArgs: (job) => startRoute.workflowArgs(job),
            ownerId: request.userId,
            input,
            concurrencyKey: concurrencyKey ?? null,
            idempotencyKey: null,
            requestFingerprint: null,
            // Kinds started by plain JSON (the probe) call no paid provider; a kind that does
            // has its own routes, which estimate its cost.
            estimatedCost: 0n,
          });
          const view = toJobView(row);
          return reply.code(202).header('location', view.links.self).send(view);
        },
      );
    }
  };
}
