import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type {
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  RouteOptions,
} from 'fastify';
import fp from 'fastify-plugin';
import {
  hasZodFastifySchemaValidationErrors,
  isResponseSerializationError,
} from 'fastify-type-provider-zod';
import { isDatabaseUnavailable } from '../../db/database.js';
import {
  ApiError,
  errorBody,
  errorStatuses,
  schemaIssues,
  validationFailed,
  unsupportedBodyTypeError,
  type ErrorBody,
  type ErrorCode,
} from '../errors.js';
import { refusedConnections } from '../../metrics/metrics.js';
import { observeRequest } from './metrics.js';

/** Fastify's own client errors, by their code. */
const fastifyErrorCodes: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
};

function answerApiError(error: ApiError, reply: FastifyReply) {
  return reply
    .code(error.statusCode)
    .headers(error.headers)
    .send(errorBody(error.code, error.message, error.details));
}

/** The codes that stand for a whole client-error status, for errors that carry only a status. */
const clientErrorCodes: Partial<Record<number, ErrorCode>> = {
  413: 'PAYLOAD_TOO_LARGE',
  414: 'URL_TOO_LONG',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  416: 'RANGE_NOT_SATISFIABLE',
  431: 'HEADERS_TOO_LARGE',
};

/** Any error a route or hook throws, as the envelope; details of a 5xx never leave the process. */
function answerError(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  if (error instanceof ApiError) return answerApiError(error, reply);
  if (hasZodFastifySchemaValidationErrors(error)) {
    const [first, ...rest] = error.validation.flatMap((issue) =>
      schemaIssues(error.validationContext ?? 'request', {
        path: issue.instancePath.split('/').filter(Boolean),
        code: issue.keyword,
        message: issue.message ?? 'is not valid',
        keys: issue.params['keys'],
      }),
    );
    return answerApiError(validationFailed([first!, ...rest]), reply);
  }
  if (isResponseSerializationError(error)) {
    request.log.error(
      { err: error, issues: error.cause.issues },
      'response did not match its schema',
    );
    return reply.code(500).send(errorBody('INTERNAL_ERROR', 'Internal server error'));
  }
  if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    const accepted = request.routeOptions.schema?.multipartForm
      ? 'multipart/form-data'
      : 'application/json';
    return answerApiError(
      unsupportedBodyTypeError(request.headers['content-type'], accepted),
      reply,
    );
  }
  const mapped = fastifyErrorCodes[error.code];
  if (mapped) return reply.code(errorStatuses[mapped]).send(errorBody(mapped, error.message));
  if (error.statusCode === 408) {
    return reply
      .code(408)
      .send(errorBody('REQUEST_TIMEOUT', 'The request was not received in time'));
  }
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    // Each code has one status: a client error of a plugin (the /docs assets' 416 or 412) is
    // answered as the code of its status, or as a 400 where the API has none.
    const code = clientErrorCodes[error.statusCode] ?? 'BAD_REQUEST';
    return reply.code(errorStatuses[code]).send(errorBody(code, error.message));
  }
  if (isDatabaseUnavailable(error)) {
    request.log.warn({ err: error }, 'database unavailable');
    return reply
      .code(503)
      .header('retry-after', '5')
      .send(errorBody('DATABASE_UNAVAILABLE', 'The database is unavailable; try again shortly'));
  }
  request.log.error({ err: error }, 'unhandled error');
  return reply.code(500).send(errorBody('INTERNAL_ERROR', 'Internal server error'));
}

/**
 * The routes an app serves, learnt as they are added (an `onRoute` hook added before any), to
 * tell a path that takes other methods (405, with `Allow`) from one no route takes (404).
 */
export class KnownRoutes {
  private readonly routes = new Map<string, { pattern: RegExp; methods: Set<string> }>();

  readonly learn = (route: RouteOptions): void => {
    const known = this.routes.get(route.url) ?? {
      // `:name` takes one segment and `*` the rest, as the router reads them.
      pattern: new RegExp(
        `^${route.url
          .split(/(:[A-Za-z0-9_]+|\*)/)
          .map((part) =>
            part === '*'
              ? '.*'
              : part.startsWith(':')
                ? '[^/]+'
                : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'),
          )
          .join('')}$`,
      ),
      methods: new Set<string>(),
    };
    for (const method of [route.method].flat()) known.methods.add(method);
    this.routes.set(route.url, known);
  };

  /** The methods some route takes at this path (no query), sorted; none when no route does. */
  methodsAt(path: string): string[] {
    const methods = new Set<string>();
    for (const { pattern, methods: taken } of this.routes.values()) {
      if (pattern.test(path)) for (const method of taken) methods.add(method);
    }
    return [...methods].sort();
  }
}

/** The answer to a path no route takes (or, for the web page, an asset it does not have). */
export function answerRouteNotFound(request: FastifyRequest, reply: FastifyReply) {
  return reply
    .code(404)
    .send(
      errorBody('ROUTE_NOT_FOUND', `No route for ${request.method} ${request.url.split('?')[0]}`),
    );
}

/**
 * The answer to a request no route takes: 405 where the path takes other methods, else 404.
 * A route of the request's own method that passes it on (a static file that is not there) is
 * a 404 too. Under `/api` it runs after the scope's hooks, so that a caller without a valid
 * token learns nothing of which routes exist.
 */
export function unroutedRequestAnswer(routes: KnownRoutes) {
  return (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0]!;
    const allowed = routes.methodsAt(path);
    if (allowed.length === 0 || allowed.includes(request.method)) {
      return answerRouteNotFound(request, reply);
    }
    return reply
      .code(405)
      .header('allow', allowed.join(', '))
      .send(
        errorBody(
          'METHOD_NOT_ALLOWED',
          `${request.method} is not taken by ${path}; it takes ${allowed.join(', ')}`,
        ),
      );
  };
}

/** The one error handler, for the whole app: every error leaves as `{ error: { code, message, details? } }`. */
export const errorHandler = fp<{ routes: KnownRoutes }>(
  async (app, { routes }) => {
    app.setNotFoundHandler(unroutedRequestAnswer(routes));
    app.setErrorHandler(answerError);
  },
  { name: 'error-handler' },
);

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
    answer = errorBody('INVALID_URL', 'The URL path is not valid: it has a malformed %-escape');
  } else if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    answer = errorBody(
      'URL_TOO_LONG',
      'A path parameter of the URL is longer than the API accepts',
    );
  } else {
    request.log.error({ err: error }, 'router error');
    answer = errorBody('INTERNAL_ERROR', 'Internal server error');
  }
  const status = errorStatuses[answer.error.code as ErrorCode];
  void reply.code(status).header('x-content-type-options', 'nosniff').send(answer);
  // The router refused it before any route's context, so no onResponse hook counts it.
  observeRequest(request.method, undefined, status, reply.elapsedTime);
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
 * Answers a request whose Expect header asks for anything but `100-continue` (which Node meets
 * itself) with the envelope: Node's own 417 has no body. Its body is not read: the connection
 * closes.
 */
export function answerUnmetExpectation(request: IncomingMessage, response: ServerResponse): void {
  refusedConnections.inc({ code: 'EXPECTATION_FAILED' });
  const expectation = String(request.headers.expect).slice(0, 100);
  const payload = JSON.stringify(
    errorBody(
      'EXPECTATION_FAILED',
      `The expectation "${expectation}" cannot be met: the API meets only 100-continue`,
    ),
  );
  response.writeHead(417, {
    'content-type': 'application/json; charset=utf-8',
    'x-content-type-options': 'nosniff',
    'content-length': Buffer.byteLength(payload),
    connection: 'close',
  });
  response.end(payload);
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
    refusedConnections.inc({ code });
    log.info({ err: error, code, remoteAddress: socket.remoteAddress }, 'connection refused');
    if (socket.writable) {
      const payload = JSON.stringify(errorBody(code, message));
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
          'X-Content-Type-Options: nosniff\r\n' +
          `Content-Length: ${Buffer.byteLength(payload)}\r\nConnection: close\r\n\r\n${payload}`,
      );
    }
    socket.destroy();
  };
}
