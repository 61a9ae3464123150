import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ProbeInput } from '../../jobs/messages.js';
import { errorBodySchema } from '../errors.js';
import type { StartJob } from '../services/job-starter.js';
import { jobViewSchema } from '../schemas/jobs.js';
import { toJobView } from '../services/job-views.js';

const probeBodySchema = z.strictObject({
  steps: z.number().int().min(1).max(100).default(5).describe('Progress steps to record'),
  stepDelayMs: z
    .number()
    .int()
    .min(0)
    .max(60_000)
    .default(1_000)
    .describe('Durable timer between steps'),
}) satisfies z.ZodType<ProbeInput>;

/**
 * Probe jobs walk through every layer without calling any provider: a smoke test of a
 * deployment that leaves a job to inspect in the API and the Web UI.
 */
export function probeRoutes(startJob: StartJob): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/probes',
      {
        schema: {
          tags: ['probes'],
          summary: 'Start a probe job',
          body: probeBodySchema,
          response: {
            202: jobViewSchema,
            400: errorBodySchema,
            401: errorBodySchema,
            415: errorBodySchema,
            503: errorBodySchema,
          },
        },
      },
      async (request, reply) => {
        const { row } = await startJob({
          kind: 'probe',
          type: 'PROBE',
          workflowType: 'probeJob',
          workflowArgs: (job) => [{ job }],
          ownerId: request.userId,
          input: request.body,
          idempotencyKey: null,
          requestFingerprint: null,
          summary: `Probe: ${request.body.steps} steps, ${request.body.stepDelayMs} ms apart`,
        });
        const view = toJobView(row);
        return reply.code(202).header('location', view.links.self).send(view);
      },
    );
  };
}
