import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { aiKind } from '../declaration.js';
import { aiJobActionDocs, getAiJobSchema, listAiJobsSchema, startAiJobSchema } from './schemas.js';
import type { AiJobService } from './service.js';
import type { JobActions } from '../../../api/services/job-actions.js';
import { jobActionRoutes } from '../../../api/routes/job-actions.js';
import { jobEventStreamRoutes } from '../../../api/routes/job-event-stream.js';

/** AI generation jobs: started, read, listed, cancelled, retried and followed. */
export function aiJobRoutes(aiJobs: AiJobService, actions: JobActions): FastifyPluginAsyncZod {
  return async (app) => {
    app.post(
      '/ai/jobs',
      { schema: startAiJobSchema, config: { jobView: true } },
      async (request, reply) => {
        const idempotencyKey = request.headers['idempotency-key'] ?? null;
        const { view, replayed } = await aiJobs.start(request.userId, request.body, idempotencyKey);
        return reply
          .code(202)
          .header('location', view.links.self)
          .header('idempotent-replayed', String(replayed))
          .send(view);
      },
    );

    app.get(
      '/ai/jobs/:id',
      { schema: getAiJobSchema, config: { jobView: true } },
      async (request) => {
        const row = await aiJobs.findOwned(request.userId, request.params.id);
        const live =
          request.query.live === 'true' ? await actions.live(row, request.log) : undefined;
        return aiJobs.view(row, live);
      },
    );

    app.get(
      '/ai/jobs',
      { schema: listAiJobsSchema, config: { jobList: 'jobs' } },
      async (request) => aiJobs.list(request.userId, request.query),
    );

    const kind = { path: '/ai/jobs', tag: 'ai', noun: aiKind.noun, findOwned: aiJobs.findOwned };
    await app.register(jobActionRoutes({ ...kind, actions, docs: aiJobActionDocs }));
    await app.register(
      jobEventStreamRoutes({
        ...kind,
        kind: aiKind.kind,
        operationIds: { stream: 'streamAiJobEvents', link: 'linkAiJobEvents' },
        view: (row) => aiJobs.view(row),
      }),
    );
  };
}
