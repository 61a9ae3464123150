import fastifyMultipart from '@fastify/multipart';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { vlogKind } from '../declaration.js';
import {
  createVlogSchema,
  getVlogSchema,
  listVlogsSchema,
  uploadLimitsSchema,
  uploadLimitsView,
  vlogActionDocs,
} from './schemas.js';
import type { JobActions } from '../../../api/services/job-actions.js';
import type { VlogService } from './service.js';
import { jobActionRoutes } from '../../../api/routes/job-actions.js';
import { jobEventStreamRoutes } from '../../../api/routes/job-event-stream.js';

/** Vlogs: created from an upload, read, listed, cancelled, retried and followed. */
export function vlogRoutes(vlogs: VlogService, actions: JobActions): FastifyPluginAsyncZod {
  const { maxFiles, maxFileBytes } = vlogs.uploadLimits;
  return async (app) => {
    await app.register(fastifyMultipart, {
      limits: {
        files: maxFiles,
        fileSize: maxFileBytes,
        fields: 10,
        fieldSize: 16 * 1024,
        parts: maxFiles + 10,
        headerPairs: 100,
      },
    });

    app.post(
      '/vlogs',
      {
        // The rate limit ran just before; the upload has not been read yet.
        onRequest: async (request) => {
          const key = request.headers['idempotency-key'];
          await vlogs.admit(request.userId, typeof key === 'string' ? key : undefined);
        },
        schema: createVlogSchema(maxFiles),
        config: { jobView: true },
      },
      async (request, reply) => {
        // Counted before a byte of the body is read, until the upload has ended: stored and
        // started, or refused and deleted. A client that closes its connection does not end it
        // sooner (its upload is stopped at its next step), or closing would skip the cap.
        const endUpload = vlogs.uploadsInProgress.hold(request.userId);
        try {
          const idempotencyKey = request.headers['idempotency-key'] ?? null;
          const { view, replayed } = await vlogs.submit(request, idempotencyKey);
          return reply
            .code(202)
            .header('location', view.links.self)
            .header('idempotent-replayed', String(replayed))
            .send(view);
        } finally {
          endUpload();
        }
      },
    );

    app.get('/vlogs/upload-limits', { schema: uploadLimitsSchema }, () =>
      uploadLimitsView(vlogs.allUploadLimits),
    );

    app.get('/vlogs/:id', { schema: getVlogSchema, config: { jobView: true } }, async (request) => {
      const row = await vlogs.findOwned(request.userId, request.params.id);
      if (request.query.live !== 'true') return vlogs.view(row);
      return vlogs.view(row, await actions.live(row, request.log));
    });

    app.get('/vlogs', { schema: listVlogsSchema, config: { jobList: 'vlogs' } }, async (request) =>
      vlogs.list(request.userId, request.query),
    );

    const kind = { path: '/vlogs', tag: 'vlogs', noun: vlogKind.noun, findOwned: vlogs.findOwned };
    await app.register(jobActionRoutes({ ...kind, actions, docs: vlogActionDocs }));
    await app.register(
      jobEventStreamRoutes({
        ...kind,
        kind: vlogKind.kind,
        operationIds: { stream: 'streamVlogEvents', link: 'linkVlogEvents' },
        view: (row) => vlogs.view(row),
      }),
    );
  };
}
