import { z } from 'zod';
import { errorBodySchema } from '../errors.js';

/** A job id in a path. */
export const idParams = z.object({ id: z.string().min(1).max(128) });

/** The `Idempotency-Key` header of the routes that create jobs. */
export const idempotencyKeySchema = z
  .string()
  .regex(/^[\x21-\x7e]{1,255}$/, { error: 'must be 1 to 255 visible ASCII characters' })
  .optional();

/** Errors every authenticated route about one job can answer. */
export const commonErrors = {
  400: errorBodySchema,
  401: errorBodySchema,
  404: errorBodySchema,
  429: errorBodySchema,
  /** DATABASE_UNAVAILABLE and the like: retry after Retry-After. */
  503: errorBodySchema,
};

/** The `?live=` flag of a job's GET route. */
export function liveQuerySchema(description: string) {
  return z.strictObject({
    live: z.enum(['true', 'false']).default('false').describe(description),
  });
}
