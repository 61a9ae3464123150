import { z } from 'zod';
import { commonErrors, idParams } from './common.js';

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

export function jobEventStreamSchema(tag: string, noun: string) {
  return {
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
  };
}
