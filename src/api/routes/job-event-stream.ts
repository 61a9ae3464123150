import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { JobRow } from '../../db/schema.js';
import { jobEventStreamSchema } from '../schemas/job-event-stream.js';

export interface JobEventStreamRouteOptions {
  /** Path of the kind's jobs, e.g. `/vlogs`; the stream is `<path>/:id/events`. */
  path: string;
  tag: string;
  noun: string;
  /** The stream route's OpenAPI operationId. */
  operationId: string;
  /** The caller's job of this kind, or a 404 ApiError. */
  findOwned: (userId: string, id: string) => Promise<JobRow>;
  /** The job as its own GET route shows it: the data of the final `end` event. */
  view: (row: JobRow) => Promise<unknown>;
}

/**
 * `GET <path>/:id/events`: the job's progress as Server-Sent Events, read from its durable event
 * log. Without `Last-Event-ID` the stream starts from the job's first state; with it, right
 * after that event, so a client that reconnects (to this API process or another) gets exactly
 * what it missed; after the `end` event, a 204.
 */
export function jobEventStreamRoutes(options: JobEventStreamRouteOptions): FastifyPluginAsyncZod {
  const { path, tag, noun, operationId, findOwned, view } = options;
  return async (app) => {
    app.get(
      `${path}/:id/events`,
      { schema: jobEventStreamSchema(tag, noun, operationId) },
      async (request, reply) => {
        const { userId } = request;
        const row = await findOwned(userId, request.params.id);
        await app.jobEventStreams.stream(reply, {
          row,
          after: request.headers['last-event-id'] ?? { seq: -1, part: 0, ended: false },
          reload: () => findOwned(userId, row.id),
          view,
          log: request.log,
        });
      },
    );
  };
}
