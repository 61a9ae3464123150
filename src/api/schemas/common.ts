import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorBodySchema } from '../errors.js';

declare module 'fastify' {
  interface FastifySchema {
    /**
     * The multipart/form-data body of a route that reads its parts itself (files stream to
     * storage): documented in OpenAPI as the request body, never used to validate.
     */
    multipartForm?: z.ZodType;
  }
}

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

/**
 * Documents on every route with a body the errors its body can get before the handler runs:
 * 413 (over the body limit) and 415 (a content type the route does not read).
 */
export function documentErrorResponses(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    if (!route.schema?.body && !route.schema?.multipartForm) return;
    route.schema = {
      ...route.schema,
      response: {
        413: errorBodySchema,
        415: errorBodySchema,
        ...(route.schema.response as object | undefined),
      },
    };
  });
}

/** The OpenAPI transform: zod schemas as JSON schemas, and `multipartForm` as the request body. */
export const documentMultipartForms: typeof jsonSchemaTransform = (document) => {
  const { multipartForm, ...schema } = document.schema ?? {};
  if (!multipartForm) return jsonSchemaTransform(document);
  return jsonSchemaTransform({
    ...document,
    schema: { ...schema, body: multipartForm, consumes: ['multipart/form-data'] },
  });
};
