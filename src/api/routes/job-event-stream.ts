import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { isTerminalStatus } from '../../jobs/model.js';
import type { JobRow } from '../../db/schema.js';
import { validationFailed } from '../errors.js';
import { jobEventStreamLinkSchema, jobEventStreamSchema } from '../schemas/job-event-stream.js';

export interface JobEventStreamRouteOptions {
  /** The kind whose jobs these streams are, as its declaration names it: a link opens its own. */
  kind: string;
  /** Path of the kind's jobs, e.g. `/vlogs`; the stream is `<path>/:id/events`. */
  path: string;
  tag: string;
  noun: string;
  /** OpenAPI operationIds of the stream and of its signed link. */
  operationIds: { stream: string; link: string };
  /** The caller's job of this kind, or a 404 ApiError. */
  findOwned: (userId: string, id: string) => Promise<JobRow>;
  /** The job as its own GET route shows it: the data of the final `end` event. */
  view: (row: JobRow) => Promise<unknown>;
}

/**
 * `GET <path>/:id/events`: the job's progress as Server-Sent Events, read from its durable event
 * log. Without `Last-Event-ID` (or `?lastEventId=`) the stream starts from the job's first
 * state; with it, right after that event, so a client that reconnects (to this API process or another) gets exactly
 * what it missed; after the `end` event, a 204.
 *
 * `POST <path>/:id/events/link` gives a short-lived link that opens the stream without an
 * Authorization header, which a browser's EventSource cannot send.
 */
export function jobEventStreamRoutes(options: JobEventStreamRouteOptions): FastifyPluginAsyncZod {
  const { kind, path, tag, noun, operationIds, findOwned, view } = options;
  return async (app) => {
    app.get(
      `${path}/:id/events`,
      {
        schema: jobEventStreamSchema(tag, noun, operationIds.stream),
        config: { streamLink: { kind } },
      },
      async (request, reply) => {
        const { userId } = request;
        const row = await findOwned(userId, request.params.id);
        // An EventSource's own reconnect sends the header with its latest event, later than the
        // position its URL was opened with.
        // An empty header (parsed as no position) is sent all the same, and wins as one.
        const fromHeader = request.raw.headers['last-event-id'] !== undefined;
        const field = fromHeader ? 'headers.last-event-id' : 'querystring.lastEventId';
        const after = (fromHeader
          ? request.headers['last-event-id']
          : request.query.lastEventId) ?? { seq: -1, part: 0, ended: false };
        // Every event is logged before it is sent: a later one was never sent, and a stream
        // resuming after it would wait for it for good, or pass over the output logged up to it.
        if (after.seq > row.projection_seq) {
          throw validationFailed([
            {
              field,
              message: `must be the id of an event this stream sent (the ${noun}'s last is ${row.projection_seq})`,
            },
          ]);
        }
        if (after.part > 0) {
          const last = await app.jobEventStreams.lastOutputPart(row.id, after.seq);
          if (after.part > last) {
            const logged =
              last === 0
                ? `state ${after.seq} has no output`
                : `output after state ${after.seq} ends at ${after.seq}-${last}`;
            throw validationFailed([
              {
                field,
                message: `must be the id of an event this stream sent (the ${noun}'s ${logged})`,
              },
            ]);
          }
        }
        // An `end` follows only a state that ended the job.
        if (after.ended) {
          const status = await app.jobEventStreams.statusAt(row.id, after.seq);
          if (status === undefined || !isTerminalStatus(status)) {
            throw validationFailed([
              {
                field,
                message: `must be the id of an event this stream sent (the ${noun} did not end at state ${after.seq})`,
              },
            ]);
          }
        }
        await app.jobEventStreams.stream(reply, {
          userId,
          row,
          after,
          reload: () => findOwned(userId, row.id),
          view,
          log: request.log,
        });
      },
    );

    app.post(
      `${path}/:id/events/link`,
      { schema: jobEventStreamLinkSchema(tag, noun, operationIds.link) },
      async (request, reply) => {
        const row = await findOwned(request.userId, request.params.id);
        const { access, expiresAt } = app.streamLinks.sign(request.userId, {
          kind,
          jobId: row.id,
        });
        const stream = request.url.split('?')[0]!.replace(/\/link$/, '');
        return reply.code(201).send({
          url: `${stream}?access=${access}`,
          expiresAt: expiresAt.toISOString(),
        });
      },
    );
  };
}
