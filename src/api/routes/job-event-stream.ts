import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { JobRow } from '../../db/schema.js';
import type { JobEvent } from '../../jobs/events.js';
import { isTerminalStatus } from '../../jobs/model.js';
import type { JobEventFeed } from '../services/job-event-feed.js';
import { commonErrors, idParams } from '../schemas/common.js';

export interface JobEventRouteOptions {
  /** Path of the kind's jobs, e.g. `/vlogs`; the stream is `<path>/:id/events`. */
  path: string;
  tag: string;
  noun: string;
  /** The caller's job of this kind, or a 404 ApiError. */
  findOwned: (userId: string, id: string) => Promise<JobRow>;
  /** The job as its own GET route shows it: the data of the final `end` event. */
  view: (row: JobRow) => Promise<unknown>;
  feed: JobEventFeed;
}

/** What a client that lost the stream waits before reconnecting (the SSE `retry` field). */
const reconnectDelayMs = 2_000;

const lastEventIdSchema = z
  .string()
  .regex(/^\d{1,9}$/, { error: 'must be the id of an event this stream sent' })
  .transform(Number)
  .optional()
  .describe('Resume after this event: only the events after it are sent');

/** One event as a client's SSE parser sees it; `data` is JSON. */
const streamedEventSchema = z
  .object({
    id: z.string().optional().describe("The job's sequence number; absent on `end`"),
    event: z.enum(['status', 'progress', 'end']),
    data: z
      .string()
      .describe(
        '`status` and `progress`: `{ jobId, seq, type, status, progress, phase, attempt, error, ' +
          'at }`; `end`: the job as its GET route shows it, after which the stream closes.',
      ),
  })
  .describe('A Server-Sent Event');

/**
 * `GET <path>/:id/events`: the job's progress as Server-Sent Events, read from its durable event
 * log. Without `Last-Event-ID` the stream starts from the job's first state; with it, right
 * after that event, so a client that reconnects (to this API process or another) gets exactly
 * what it missed. When the job ends (`completed`, `failed`, `timeout`, `cancelled`) an `end`
 * event follows and the stream closes; a failed job that is later retried goes on in a new
 * stream resumed from the last id.
 */
export function jobEventRoutes(options: JobEventRouteOptions): FastifyPluginAsyncZod {
  const { path, tag, noun, findOwned, view, feed } = options;
  return async (app) => {
    const open = new Set<ServerResponse>();
    // Streams never finish on their own; ended here, clients reconnect to another process.
    app.addHook('preClose', async () => {
      for (const response of open) response.end();
    });

    app.get(
      `${path}/:id/events`,
      {
        schema: {
          tags: [tag],
          summary: `Stream a ${noun}'s progress (Server-Sent Events)`,
          description:
            'Every status and progress change, in order, from a durable log; reconnect with ' +
            '`Last-Event-ID` to resume without losing or repeating an event. Polling the job ' +
            'remains supported.',
          params: idParams,
          headers: z.object({ 'last-event-id': lastEventIdSchema }).passthrough(),
          response: {
            200: {
              description: 'The event stream',
              content: { 'text/event-stream': { schema: streamedEventSchema } },
            },
            ...commonErrors,
          },
        },
      },
      async (request, reply) => {
        const { userId } = request;
        const row = await findOwned(userId, request.params.id);
        const afterSeq = request.headers['last-event-id'] ?? -1;

        reply.hijack();
        const response = reply.raw;
        response.writeHead(200, {
          ...(reply.getHeaders() as OutgoingHttpHeaders),
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache, no-transform',
          connection: 'keep-alive',
          'x-accel-buffering': 'no',
        });
        open.add(response);
        response.write(`retry: ${reconnectDelayMs}\n\n`);

        const keepAlive = setInterval(() => response.write(': keep-alive\n\n'), feed.keepAliveMs);
        let unsubscribe = () => undefined as void;
        const finish = () => {
          clearInterval(keepAlive);
          unsubscribe();
          open.delete(response);
          if (!response.writableEnded) response.end();
        };
        response.on('close', finish);

        /** Sends the `end` event if the job has nothing after `seq` and has ended; says whether it did. */
        const endIfOver = async (seq: number): Promise<boolean> => {
          const current = await findOwned(userId, row.id);
          if (current.projection_seq > seq || !isTerminalStatus(current.status)) return false;
          await write(response, `event: end\ndata: ${JSON.stringify(await view(current))}\n\n`);
          finish();
          return true;
        };

        if (isTerminalStatus(row.status) && row.projection_seq <= afterSeq) {
          if (await endIfOver(afterSeq)) return;
        }
        unsubscribe = feed.subscribe(row.id, afterSeq, async (events) => {
          try {
            for (const event of events) {
              if (!(await write(response, formatEvent(event)))) return false;
            }
            const last = events.at(-1)!;
            return !(isTerminalStatus(last.status) && (await endIfOver(last.seq)));
          } catch (error) {
            // A stream that cannot go on is closed, so its client reconnects and resumes.
            request.log.error({ err: error }, 'progress stream failed');
            finish();
            return false;
          }
        });
        if (response.destroyed) finish();
      },
    );
  };
}

function formatEvent(event: JobEvent): string {
  return `id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

/** Writes a chunk and waits for the client to take it if it is behind; false once it has gone. */
async function write(response: ServerResponse, chunk: string): Promise<boolean> {
  if (response.destroyed || response.writableEnded) return false;
  if (response.write(chunk)) return true;
  return new Promise((resolve) => {
    const done = (drained: boolean) => {
      response.off('drain', onDrain);
      response.off('close', onClose);
      resolve(drained);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    response.on('drain', onDrain);
    response.on('close', onClose);
  });
}
