import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Db } from '../../db/database.js';
import { findOwnedJob } from '../../db/jobs.js';
import type { jobKindRegistry } from '../../kinds/index.js';
import type { JobRunSettings } from '../../kinds/registration.js';
import { errorBodySchema, jobNotFound } from '../errors.js';
import { concurrencyKeySchema, idempotencyKeySchema } from '../schemas/common.js';
import { jobViewSchema } from '../schemas/jobs.js';
import type { JobActions } from '../services/job-actions.js';
import { requestFingerprint, type StartJob } from '../services/job-starter.js';
import { toJobView } from '../services/job-views.js';
import { jobActionRoutes } from './job-actions.js';

export interface JobStartRouteDependencies {
  db: Db;
  startJob: StartJob;
  actions: JobActions;
  /** What each job's workflow takes from the configuration to run its activities. */
  runSettings: JobRunSettings;
}

/**
 * `POST /api/<path>` for every registered kind whose start request is plain JSON: the body is
 * the job's input, validated by the kind's schema, and an optional `concurrencyKey`; the job is
 * answered 202 as `GET /api/jobs/:id` shows it. An Idempotency-Key makes the request safe to
 * repeat, as for every kind. Beside it, `POST /api/<path>/:id/cancel`, and `/retry` for a kind
 * that declares retries: a job of any kind can be stopped.
 */
export function jobStartRoutes(
  kinds: typeof jobKindRegistry,
  { db, startJob, actions, runSettings }: JobStartRouteDependencies,
): FastifyPluginAsyncZod {
  return async (app) => {
    for (const { declaration, startRoute } of kinds) {
      if (!startRoute) continue;
      const [type] = declaration.jobTypes;
      const { noun } = declaration;
      app.post(
        startRoute.path,
        {
          schema: {
            operationId: startRoute.operationId,
            tags: [startRoute.tag],
            summary: startRoute.summary,
            description:
              'Send an Idempotency-Key to make the request safe to repeat. Without a body, every field takes its default.',
            headers: z.object({ 'idempotency-key': idempotencyKeySchema }).passthrough(),
            // Optional: a request with no body at all takes the defaults (preValidation below).
            body: startRoute.body.extend({ concurrencyKey: concurrencyKeySchema }).optional(),
            response: {
              202: jobViewSchema,
              400: errorBodySchema,
              401: errorBodySchema,
              402: errorBodySchema,
              409: errorBodySchema,
              415: errorBodySchema,
              422: errorBodySchema,
              429: errorBodySchema,
              503: errorBodySchema,
            },
          },
          config: { jobView: true },
          // A request with no body at all asks for the defaults (`curl -X POST …/probes`); an
          // empty JSON body is still malformed JSON, and a JSON `null` is no object: the schema
          // refuses both.
          preValidation: async (request) => {
            if (request.body === undefined) request.body = {};
          },
        },
        async (request, reply) => {
          const body = request.body as { concurrencyKey?: string };
          const { concurrencyKey, ...input } = body;
          const idempotencyKey = request.headers['idempotency-key'] ?? null;
          const { row, replayed } = await startJob<unknown>({
            kind: declaration,
            type,
            workflowArgs: (job) => startRoute.workflowArgs(job, runSettings),
            ownerId: request.userId,
            input,
            concurrencyKey: concurrencyKey ?? null,
            idempotencyKey,
            requestFingerprint: idempotencyKey ? requestFingerprint({ type, ...body }) : null,
            // Kinds started by plain JSON (the probe) call no paid provider; a kind that does
            // has its own routes, which estimate its cost.
            estimatedCost: 0n,
          });
          const view = toJobView(row);
          return reply
            .code(202)
            .header('location', view.links.self)
            .header('idempotent-replayed', String(replayed))
            .send(view);
        },
      );

      const named = noun.charAt(0).toUpperCase() + noun.slice(1);
      await app.register(
        jobActionRoutes({
          path: startRoute.path,
          tag: startRoute.tag,
          noun,
          findOwned: async (userId, id) => {
            const row = await findOwnedJob(db, userId, id);
            if (!row || row.kind !== declaration.kind) throw jobNotFound(noun, id);
            return row;
          },
          actions,
          docs: {
            cancel: {
              operationId: `cancel${named}`,
              summary: `Cancel a running ${noun}`,
              description: `Its step stops and the ${noun} ends \`cancelled\` with the reason.`,
            },
            retry: declaration.retries
              ? {
                  operationId: `retry${named}`,
                  summary: `Retry a failed ${noun} (at most 3 times)`,
                  description: `The ${noun} keeps its id; its retry count goes up by one.`,
                }
              : null,
          },
        }),
      );
    }
  };
}
