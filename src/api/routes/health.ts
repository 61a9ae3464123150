import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Readiness } from '../services/readiness.js';
import { ApiError, errorBodySchema } from '../errors.js';

/** One check of `/readyz`: no more, since the route asks no token. */
export const readinessCheckSchema = z.object({
  ok: z.boolean(),
  error: z.string().optional(),
});

export function healthRoutes(readiness: Readiness): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/healthz',
      {
        schema: {
          operationId: 'checkLiveness',
          tags: ['health'],
          security: [],
          summary: 'The process is up',
          response: { 200: z.object({ status: z.literal('ok') }) },
        },
      },
      () => ({ status: 'ok' as const }),
    );

    app.get(
      '/readyz',
      {
        schema: {
          operationId: 'checkReadiness',
          tags: ['health'],
          security: [],
          summary: 'Temporal and the database are reachable, and the workers have ffmpeg',
          response: {
            200: z.object({
              status: z.literal('ready'),
              checks: z.record(z.string(), readinessCheckSchema),
            }),
            503: errorBodySchema,
          },
        },
      },
      async () => {
        const checks = await readiness();
        const failing = Object.entries(checks)
          .filter(([, check]) => !check.ok)
          .map(([name]) => name);
        if (failing.length > 0) {
          throw new ApiError('NOT_READY', `Not ready: ${failing.join(' and ')} not available`, {
            checks,
          });
        }
        return { status: 'ready' as const, checks };
      },
    );
  };
}
