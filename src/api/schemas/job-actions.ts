import { z } from 'zod';
import { errorBodySchema } from '../errors.js';
import { commonErrors, idParams, optionalWrittenText } from './common.js';

/** Optional: a cancel without a body gives no reason (the route fills `{}` in for it). */
export const cancelBodySchema = z.strictObject({ reason: optionalWrittenText(500) }).optional();
export const cancelAcceptedSchema = z.object({
  id: z.string(),
  status: z.string().describe('Status when the cancel was accepted; the job ends `cancelled`'),
  cancelRequested: z.literal(true),
});
/**
 * Optional: the attempt the retry is of. With it, a retry sent again after its answer was lost
 * learns that it was taken (202 again) rather than being refused for the attempt it started.
 */
export const retryBodySchema = z
  .strictObject({
    attempt: z
      .number()
      .int()
      .min(1)
      .max(1_000)
      .optional()
      .describe(
        'The attempt this retry is of: the `attempt` the job read when it failed. Makes the retry safe to send again: once that attempt has been retried, the answer is the `202` of that retry, with `Idempotent-Replayed: true`.',
      ),
  })
  .optional();
export const retryAcceptedSchema = z.object({
  id: z.string(),
  attempt: z.number(),
  retryCount: z.number().describe('Retries so far, this one included'),
});

export interface RouteDocs {
  /** What generated clients name the call. */
  operationId: string;
  summary: string;
  description: string;
}

export function cancelJobSchema(tag: string, docs: RouteDocs) {
  return {
    tags: [tag],
    ...docs,
    params: idParams,
    body: cancelBodySchema,
    response: { 202: cancelAcceptedSchema, ...commonErrors, 409: errorBodySchema },
  };
}

export function retryJobSchema(tag: string, docs: RouteDocs) {
  return {
    tags: [tag],
    ...docs,
    params: idParams,
    body: retryBodySchema,
    response: {
      202: retryAcceptedSchema,
      ...commonErrors,
      /** BUDGET_EXCEEDED: the job's estimate, held again for the new attempt, is more than what is left. */
      402: errorBodySchema,
      409: errorBodySchema,
    },
  };
}
