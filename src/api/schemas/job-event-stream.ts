import { z } from 'zod';
import { parseJobEventId } from '../../jobs/job-event.js';
import { errorBodySchema } from '../errors.js';
import { commonErrors, idParams } from './common.js';

const lastEventIdSchema = z
  .string()
  .transform((id, context) => {
    // An empty id is the SSE spec's "no last event id" (an event's empty `id:` resets it): the
    // stream starts from the first event, as without the header.
    if (id === '') return undefined;
    const position = parseJobEventId(id);
    if (!position) {
      context.addIssue({ code: 'custom', message: 'must be the id of an event this stream sent' });
      return z.NEVER;
    }
    return position;
  })
  .optional()
  .describe('Resume after this event: only the events after it are sent');

/** One event as a client's SSE parser sees it; `data` is JSON. */
const streamedEventSchema = z
  .object({
    id: z
      .string()
      .optional()
      .describe(
        "The event's place in the job's log: its sequence number for a state (`7`), followed by " +
          'the part for streamed output (`7-2`), or by `end` for the end (`7-end`)',
      ),
    event: z.enum(['status', 'progress', 'output', 'end', 'keepalive']),
    data: z
      .string()
      .describe(
        '`status`, `progress` and `output`: `{ jobId, seq, part, type, status, progress, phase, ' +
          'attempt, error, output, at }`, where `output` is `{ text, offset }` for a piece of ' +
          "the model's answer (offset 0 starts a new answer) and null otherwise; `end`: the job " +
          'as its GET route shows it, after which the stream closes; `keepalive` (no `id`): ' +
          '`{ intervalMs, waitingForWorker? }`, sent when the stream opens and every ' +
          '`intervalMs` (EVENT_STREAM_KEEPALIVE_MS, 15 s) after, so a client that hears nothing ' +
          'for a few intervals knows the stream is dead and reconnects; `waitingForWorker`, ' +
          "as in the job's read, while the job waits in a queue no worker polls.",
      ),
  })
  .describe('A Server-Sent Event');

export function jobEventStreamSchema(tag: string, noun: string, operationId: string) {
  return {
    operationId,
    tags: [tag],
    summary: `Stream a ${noun}'s progress (Server-Sent Events)`,
    description:
      'Every status and progress change and, while a model writes, its answer in pieces (about ' +
      'four a second), in order, from a durable log; reconnect with ' +
      '`Last-Event-ID` (or `?lastEventId=`) to resume without losing or repeating an event. A ' +
      'reconnect after the ' +
      '`end` event is answered 204 (an EventSource then stops), unless the job went on since ' +
      '(retried, or that end was superseded by what really happened), whose new events ' +
      'follow. Polling the job remains supported. One API process holds at most ' +
      'EVENT_STREAM_MAX_PER_USER (20) streams of one user (429 TOO_MANY_STREAMS above) and ' +
      'EVENT_STREAM_MAX_OPEN (5000) in all (503 STREAM_CAPACITY_REACHED above).',
    params: idParams,
    querystring: z.strictObject({
      access: z
        .string()
        .max(512)
        .optional()
        .describe('A signed stream link (`POST …/events/link`), instead of the bearer token'),
      lastEventId: lastEventIdSchema.describe(
        'Resume after this event, as `Last-Event-ID` does, for a client opening a new stream ' +
          '(an EventSource cannot set the header); the header wins when both are given, since ' +
          "an EventSource's own reconnect sends it with the latest event",
      ),
    }),
    headers: z.object({ 'last-event-id': lastEventIdSchema }).passthrough(),
    security: [{ bearerAuth: [] }, { streamLink: [] }] as Record<string, string[]>[],
    response: {
      200: {
        description: 'The event stream',
        content: { 'text/event-stream': { schema: streamedEventSchema } },
      },
      204: z
        .null()
        .describe('The client has seen the `end` event (its `Last-Event-ID`) and nothing followed'),
      ...commonErrors,
      403: errorBodySchema,
    },
  };
}

export function jobEventStreamLinkSchema(tag: string, noun: string, operationId: string) {
  return {
    operationId,
    tags: [tag],
    summary: `A signed link to the ${noun}'s progress stream, for a browser's EventSource`,
    description:
      'An EventSource cannot send an Authorization header: the link opens this one stream ' +
      'without it until `expiresAt` (EVENT_STREAM_LINK_TTL_SECONDS, 15 minutes), and a stream ' +
      'it opened runs to its end. It opens nothing else; ask for a new one to reconnect later.',
    params: idParams,
    response: {
      201: z.object({
        url: z.string().describe('The stream, path and signed `access` parameter'),
        expiresAt: z.iso.datetime(),
      }),
      ...commonErrors,
    },
  };
}
