import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  isResponseSerializationError,
} from 'fastify-type-provider-zod';
import { z } from 'zod';
import { isDatabaseUnavailable } from '../db/database.js';

/**
 * Stable error codes: clients branch on these, so a code never changes meaning once shipped.
 * Each maps to exactly one HTTP status.
 */
export const errorStatuses = {
  VALIDATION_FAILED: 400,
  INVALID_JSON: 400,
  INVALID_MULTIPART: 400,
  NO_MEDIA: 400,
  TOO_MANY_FILES: 400,
  BAD_REQUEST: 400,
  INVALID_URL: 400,
  MEDIA_KEY_INVALID: 400,
  TOKEN_MISSING: 401,
  TOKEN_INVALID: 401,
  TOKEN_EXPIRED: 401,
  TOKEN_NOT_YET_VALID: 401,
  TOKEN_EXPIRY_MISSING: 401,
  TOKEN_LIFETIME_TOO_LONG: 401,
  TOKEN_SUBJECT_INVALID: 401,
  TOKEN_CLAIM_INVALID: 401,
  MEDIA_LINK_INVALID: 403,
  NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  REQUEST_TIMEOUT: 408,
  JOB_NOT_CANCELLABLE: 409,
  JOB_NOT_RETRYABLE: 409,
  IDEMPOTENCY_KEY_IN_USE: 409,
  MEDIA_EXPIRED: 410,
  PAYLOAD_TOO_LARGE: 413,
  FILE_TOO_LARGE: 413,
  URL_TOO_LONG: 414,
  UNSUPPORTED_MEDIA_TYPE: 415,
  IDEMPOTENCY_KEY_REUSED: 422,
  MEDIA_TOO_LONG: 422,
  MEDIA_RESOLUTION_TOO_HIGH: 422,
  TOO_MANY_REQUESTS: 429,
  TOO_MANY_JOBS_IN_FLIGHT: 429,
  HEADERS_TOO_LARGE: 431,
  INTERNAL_ERROR: 500,
  NOT_READY: 503,
  TEMPORAL_UNAVAILABLE: 503,
  JOB_CONTROL_TIMEOUT: 503,
  DATABASE_UNAVAILABLE: 503,
  VIDEO_PROVIDER_NOT_CONFIGURED: 503,
  AI_PROVIDER_NOT_CONFIGURED: 503,
  AUTH_UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof errorStatuses;

export const errorBodySchema = z
  .object({
    error: z.object({
      code: z.string().describe('Stable machine-readable code'),
      message: z.string().describe('What went wrong, naming the field where there is one'),
      details: z.unknown().optional(),
    }),
  })
  .describe('Error');

export type ErrorBody = z.infer<typeof errorBodySchema>;

/** An error the API answers with as is: its code decides the status. */
export class ApiError extends Error {
  readonly statusCode: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    /** Response headers that go with it, e.g. Retry-After. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.statusCode = errorStatuses[code];
  }
}

/** Fastify's own client errors, by their code. */
const fastifyErrorCodes: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
};

function body(code: ErrorCode, message: string, details?: unknown): ErrorBody {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

/** The one error handler: every error leaves as `{ error: { code, message, details? } }`. */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .send(body('ROUTE_NOT_FOUND', `No route for ${request.method} ${request.url.split('?')[0]}`)),
  );

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof ApiError) {
      return reply
        .code(error.statusCode)
        .headers(error.headers)
        .send(body(error.code, error.message, error.details));
    }
    if (hasZodFastifySchemaValidationErrors(error)) {
      const issues = error.validation.map((issue) => {
        const where = [
          error.validationContext,
          ...issue.instancePath.split('/').filter(Boolean),
        ].join('.');
        return { field: where, message: issue.message };
      });
      const message = issues.map((issue) => `${issue.field}: ${issue.message}`).join('; ');
      return reply.code(400).send(body('VALIDATION_FAILED', message, { issues }));
    }
    if (isResponseSerializationError(error)) {
      request.log.error(
        { err: error, issues: error.cause.issues },
        'response did not match its schema',
      );
      return reply.code(500).send(body('INTERNAL_ERROR', 'Internal server error'));
    }
    const mapped = fastifyErrorCodes[error.code];
    if (mapped) return reply.code(errorStatuses[mapped]).send(body(mapped, error.message));
    if (error instanceof SyntaxError && error.statusCode === 400) {
      return reply.code(400).send(body('INVALID_JSON', `Body is not valid JSON: ${error.message}`));
    }
    if (error.statusCode === 408) {
      return reply.code(408).send(body('REQUEST_TIMEOUT', 'The request was not received in time'));
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return reply.code(error.statusCode).send(body('BAD_REQUEST', error.message));
    }
    if (isDatabaseUnavailable(error)) {
      request.log.warn({ err: error }, 'database unavailable');
      return reply
        .code(503)
        .header('retry-after', '5')
        .send(body('DATABASE_UNAVAILABLE', 'The database is unavailable; try again shortly'));
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply.code(500).send(body('INTERNAL_ERROR', 'Internal server error'));
  });
}

/**
 * Errors of Fastify's router, raised before any route or hook runs: a path that does not
 * percent-decode, or a path parameter longer than the router's `maxParamLength`.
 */
export function answerRouterError(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  let answer: ErrorBody;
  if (error.code === 'FST_ERR_BAD_URL') {
    answer = body('INVALID_URL', 'The URL path is not valid: it has a malformed %-escape');
  } else if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    answer = body('URL_TOO_LONG', 'A path parameter of the URL is longer than the API accepts');
  } else {
    request.log.error({ err: error }, 'router error');
    answer = body('INTERNAL_ERROR', 'Internal server error');
  }
  void reply
    .code(errorStatuses[answer.error.code as ErrorCode])
    .header('x-content-type-options', 'nosniff')
    .send(answer);
}

/** Node's HTTP parser and timers, before Fastify sees a request, as `[status, code, message]`. */
function connectionErrorAnswer(code: string | undefined): [number, ErrorCode, string] {
  switch (code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return [408, 'REQUEST_TIMEOUT', 'The request was not received in time'];
    case 'HPE_HEADER_OVERFLOW':
      return [431, 'HEADERS_TOO_LARGE', 'The request headers are larger than the API accepts'];
    default:
      return [400, 'BAD_REQUEST', 'The request is not valid HTTP'];
  }
}

/**
 * Answers what Node's HTTP server refuses on its own (headers too large, a request that was not
 * received in time, bytes that are not HTTP) with the error envelope, then closes the connection.
 */
export function answerConnectionError(
  log: Pick<FastifyInstance['log'], 'info'>,
): (error: Error & { code?: string }, socket: Socket) => void {
  return (error, socket) => {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const [status, code, message] = connectionErrorAnswer(error.code);
    log.info({ err: error, code, remoteAddress: socket.remoteAddress }, 'connection refused');
    if (socket.writable) {
      const payload = JSON.stringify(body(code, message));
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
          'X-Content-Type-Options: nosniff\r\n' +
          `Content-Length: ${Buffer.byteLength(payload)}\r\nConnection: close\r\n\r\n${payload}`,
      );
    }
    socket.destroy();
  };
}
