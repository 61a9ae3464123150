import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorBodySchema, unknownFieldMessage, validationFailed } from '../errors.js';

declare module 'fastify' {
  interface FastifySchema {
    /**
     * The multipart/form-data body of a route that reads its parts itself (files stream to
     * storage): documented in OpenAPI as the request body, never used to validate.
     */
    multipartForm?: z.ZodType;
  }
}

/** A response schema of `z.null()`, as jsonSchemaTransform writes it for OpenAPI 3.0. */
function isNoBody(schema: unknown): schema is { description?: string } {
  const { enum: values } = (schema ?? {}) as { enum?: unknown[] };
  return Array.isArray(values) && values.length === 1 && values[0] === null;
}

/**
 * The OpenAPI transform: zod schemas as JSON schemas, `multipartForm` as the request body, a
 * response of `z.null()` (a 204, a 304) as one with no content, and a wildcard path (`/media/*`)
 * as a named parameter, `{key}`, which OpenAPI can express.
 */
const documentRoute: typeof jsonSchemaTransform = (document) => {
  const { multipartForm, ...schema } = document.schema ?? {};
  const transformed = jsonSchemaTransform(
    multipartForm
      ? {
          ...document,
          schema: { ...schema, body: multipartForm, consumes: ['multipart/form-data'] },
        }
      : document,
  );
  const responses = transformed.schema.response as Record<string, unknown> | undefined;
  if (responses) {
    // fastify-swagger documents no content for a response of type `null` only; a client
    // checking answers against the document would otherwise expect a JSON body in a 304.
    for (const [status, response] of Object.entries(responses)) {
      if (isNoBody(response))
        responses[status] = { type: 'null', description: response.description };
    }
  }
  if (responses) documentHeaders(responses, document.url, [document.route.method].flat());
  if (!document.url.endsWith('*')) return transformed;
  const params = transformed.schema.params as
    { properties: Record<string, unknown>; required?: string[] } | undefined;
  const { '*': wildcard, ...named } = params?.properties ?? {};
  return {
    url: `${document.url.slice(0, -1)}{key}`,
    schema: {
      ...transformed.schema,
      params: {
        ...params,
        properties: { ...named, key: wildcard },
        required: [...(params?.required ?? []).filter((name) => name !== '*'), 'key'],
      },
    },
  };
};

const integerHeader = (description: string) => ({ type: 'integer', description });
const textHeader = (description: string) => ({ type: 'string', description });

/**
 * The headers each answer carries (docs/api.md), so a generated client types them: the
 * conditional reads' ETag and poll interval, the starts' replay and location, the rate limit's
 * and every refusal's wait. They are set by hooks and plugins, which no route schema names.
 */
function documentHeaders(responses: Record<string, unknown>, url: string, methods: string[]) {
  const underApi = url.startsWith('/api/');
  const reads = methods.includes('GET') && underApi;
  for (const [status, response] of Object.entries(responses)) {
    const headers: Record<string, object> = {};
    if (underApi) {
      headers['RateLimit-Limit'] = integerHeader('requests the window allows this caller');
      headers['RateLimit-Remaining'] = integerHeader('requests left in the window');
      headers['RateLimit-Reset'] = integerHeader('seconds until the window ends');
    }
    if (reads && (status === '200' || status === '304')) {
      headers['ETag'] = textHeader('the answer, for If-None-Match');
      headers['Cache-Control'] = textHeader('`private, no-cache`: ask again, with If-None-Match');
      headers['X-Poll-Interval'] = integerHeader(
        "seconds to wait before reading a job again, on a job's view while it is in flight",
      );
    }
    if (status === '202' && methods.includes('POST')) {
      headers['Idempotent-Replayed'] = textHeader(
        '`true` when this answers an earlier request (its Idempotency-Key, or the attempt a retry names)',
      );
      headers['Location'] = textHeader("the job's view, on a start");
    }
    if (status === '429' || status === '503' || status === '409') {
      headers['Retry-After'] = integerHeader('seconds to wait before sending the request again');
    }
    if (status === '401') headers['WWW-Authenticate'] = textHeader('the Bearer challenge');
    if (status === '405') headers['Allow'] = textHeader('the methods the path takes');
    if (status === '206' || status === '416') {
      headers['Content-Range'] = textHeader('the bytes sent, or `bytes */<size>`');
    }
    if (Object.keys(headers).length > 0) {
      responses[status] = { ...(response as object), headers };
    }
  }
}

/** Whether a route's body schema takes a request without a body. */
function bodyMayBeLeftOut(body: unknown): boolean {
  return body instanceof z.ZodType && body.safeParse(undefined).success;
}

/** An operation as `<method> <OpenAPI path>`: `/jobs/:id` is written `/jobs/{id}`. */
function operationKey(method: string, url: string): string {
  return `${method.toLowerCase()} ${url.replace(/:(\w+)/g, '{$1}')}`;
}

/**
 * The policy of `/docs` and its assets. Swagger UI is a large third-party script served from the
 * web page's own origin, where the page keeps its token (sessionStorage): it runs under a policy
 * as strict as the page's, so nothing injected into it runs, loads from elsewhere, or sends
 * anything elsewhere. Its validator badge is off (validatorUrl null), so no image comes from
 * outside either.
 */
const docsCsp = [
  "default-src 'none'",
  "script-src 'self'",
  "script-src-attr 'none'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The OpenAPI document at `/openapi.json` and its browser at `/docs`. Registered before the
 * routes: it documents on every route with a body the errors its body can get before the
 * handler runs, 413 (over the body limit) and 415 (a content type the route does not read).
 */
export const openApi = fp(
  async (app: FastifyInstance) => {
    /** Operations (`post /api/probes`) whose body a request may leave out, as its schema says. */
    const optionalBodies = new Set<string>();
    app.addHook('onRoute', (route) => {
      if (!route.schema?.body && !route.schema?.multipartForm) return;
      if (bodyMayBeLeftOut(route.schema.body)) {
        for (const method of [route.method].flat()) {
          optionalBodies.add(operationKey(method, route.url));
        }
      }
      route.schema = {
        ...route.schema,
        response: {
          413: errorBodySchema,
          415: errorBodySchema,
          ...(route.schema.response as object | undefined),
        },
      };
    });
    await app.register(fastifySwagger, {
      openapi: {
        info: {
          title: 'vlogflow API',
          version: '0.1.0',
          description:
            'Durable AI media jobs. Every error body is `{ "error": { "code", "message", "details"? } }`.',
        },
        // Relative: the API is wherever this document was fetched from.
        servers: [{ url: '/', description: 'This API' }],
        components: {
          securitySchemes: {
            bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
            streamLink: { type: 'apiKey', in: 'query', name: 'access' },
          },
        },
      },
      transform: documentRoute,
      // fastify-swagger marks every request body required; a generated client would then
      // have to send one where the API takes none (a cancel without a reason).
      transformObject: (document) => {
        if (!('openapiObject' in document)) return document.swaggerObject;
        const { openapiObject } = document;
        for (const [url, operations] of Object.entries(openapiObject.paths ?? {})) {
          for (const [method, operation] of Object.entries(operations ?? {})) {
            const { requestBody } = (operation ?? {}) as { requestBody?: { required?: boolean } };
            if (requestBody && optionalBodies.has(operationKey(method, url))) {
              requestBody.required = false;
            }
          }
        }
        return openapiObject;
      },
    });
    await app.register(fastifySwaggerUi, { routePrefix: '/docs', staticCSP: docsCsp });
    app.get('/openapi.json', { schema: { hide: true } }, () => app.swagger());
  },
  { name: 'openapi' },
);

/**
 * Refuses a body with fields on a route that names no body (none, or `{}`, is fine); anything
 * but a JSON object is refused as a body the route does not take.
 */
async function refuseBodyFields(request: FastifyRequest): Promise<void> {
  const { body } = request;
  if (body === undefined) return;
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw validationFailed([{ field: 'body', message: 'this request takes no body' }]);
  const [first, ...rest] = Object.keys(body).map((key) => ({
    field: `body.${key}`,
    message: unknownFieldMessage,
  }));
  if (first) throw validationFailed([first, ...rest]);
}

/**
 * Documents every route of the scope it is registered in as needing the bearer token, and as
 * answering what authentication (a stream link elsewhere than its stream, keys that cannot be
 * fetched), the rate limit and validation can refuse any request with. A
 * route that names no query parameter takes none, and a POST that names no body takes none (or
 * `{}`): one sent anyway is refused as unknown, as on the routes that name theirs, instead of
 * being silently ignored.
 */
export const documentBearerAuth = fp(
  async (scope: FastifyInstance) => {
    scope.addHook('onRoute', (route) => {
      if (!route.schema?.body && !route.schema?.multipartForm)
        route.preValidation = [route.preValidation ?? []].flat().concat(refuseBodyFields);
      route.schema = {
        ...route.schema,
        querystring: route.schema?.querystring ?? z.strictObject({}),
        security: route.schema?.security ?? [{ bearerAuth: [] }],
        response: {
          400: errorBodySchema,
          401: errorBodySchema,
          // STREAM_LINK_INVALID: a stream link sent, without a token, to a route it does not open.
          403: errorBodySchema,
          429: errorBodySchema,
          // AUTH_UNAVAILABLE (the identity provider's keys), DATABASE_UNAVAILABLE.
          503: errorBodySchema,
          ...(route.schema?.response as object | undefined),
        },
      };
    });
  },
  { name: 'document-bearer-auth' },
);
