import { Socket } from 'node:net';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import '../validation-messages.js';

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
  BUDGET_EXCEEDED: 402,
  MEDIA_LINK_INVALID: 403,
  STREAM_LINK_INVALID: 403,
  ADMIN_REQUIRED: 403,
  NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  REQUEST_TIMEOUT: 408,
  JOB_NOT_CANCELLABLE: 409,
  JOB_NOT_RETRYABLE: 409,
  JOB_NOT_REDRIVABLE: 409,
  IDEMPOTENCY_KEY_IN_USE: 409,
  MEDIA_EXPIRED: 410,
  PAYLOAD_TOO_LARGE: 413,
  FILE_TOO_LARGE: 413,
  URL_TOO_LONG: 414,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RANGE_NOT_SATISFIABLE: 416,
  EXPECTATION_FAILED: 417,
  IDEMPOTENCY_KEY_REUSED: 422,
  MEDIA_TOO_LONG: 422,
  MEDIA_RESOLUTION_TOO_HIGH: 422,
  MEDIA_INSPECTION_TIMEOUT: 422,
  TOO_MANY_REQUESTS: 429,
  TOO_MANY_JOBS_IN_FLIGHT: 429,
  TOO_MANY_STREAMS: 429,
  TOO_MANY_UPLOADS: 429,
  HEADERS_TOO_LARGE: 431,
  CLIENT_CLOSED_REQUEST: 499,
  INTERNAL_ERROR: 500,
  NOT_READY: 503,
  SHUTTING_DOWN: 503,
  TEMPORAL_UNAVAILABLE: 503,
  JOB_CONTROL_TIMEOUT: 503,
  DATABASE_UNAVAILABLE: 503,
  VIDEO_PROVIDER_NOT_CONFIGURED: 503,
  AI_PROVIDER_NOT_CONFIGURED: 503,
  AUTH_UNAVAILABLE: 503,
  STREAM_CAPACITY_REACHED: 503,
  MEDIA_INSPECTION_UNAVAILABLE: 503,
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

/**
 * Stops a request whose client has closed its connection, before the next step that would keep
 * something or start work no one will hear of (the answer, 499, is logged, never received).
 */
export function refuseIfClientLeft(request: FastifyRequest): void {
  // A real connection's: an injected request has none to close.
  const { socket } = request.raw;
  if (socket instanceof Socket && socket.destroyed) {
    throw new ApiError(
      'CLIENT_CLOSED_REQUEST',
      'The client closed the connection before the answer; the request was stopped',
    );
  }
}

/** One thing a request was refused for: where (`body.title`, `querystring.to`) and why. */
export interface ValidationIssue {
  field: string;
  message: string;
}

/** An error the API answers with as is: its code decides the status. */
export class ApiError extends Error {
  readonly statusCode: number;
  readonly code: ErrorCode;
  readonly details: unknown;
  /** Response headers that go with it, e.g. Retry-After. */
  readonly headers: Record<string, string>;

  /** VALIDATION_FAILED always names each field in `details.issues`: see `validationFailed`. */
  constructor(code: 'VALIDATION_FAILED', message: string, details: { issues: ValidationIssue[] });
  constructor(
    code: Exclude<ErrorCode, 'VALIDATION_FAILED'>,
    message: string,
    details?: unknown,
    headers?: Record<string, string>,
  );
  constructor(
    code: ErrorCode,
    message: string,
    details?: unknown,
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.code = code;
    this.details = details;
    this.headers = headers;
    this.statusCode = errorStatuses[code];
  }
}

/** What a field a request may not carry is refused with. */
export const unknownFieldMessage = 'unknown field: this request does not take it';

/**
 * A schema's issue as the issues of the fields it names under `root` (`body`, `querystring`):
 * an unknown key is an issue of that key's own field (`body.colour`), one a key.
 */
export function schemaIssues(
  root: string,
  issue: { path: readonly PropertyKey[]; code: string; message: string; keys?: unknown },
): ValidationIssue[] {
  const field = [root, ...issue.path.map(String)].join('.');
  if (issue.code === 'unrecognized_keys' && Array.isArray(issue.keys) && issue.keys.length > 0) {
    return issue.keys.map((key) => ({
      field: `${field}.${String(key)}`,
      message: unknownFieldMessage,
    }));
  }
  return [{ field, message: issue.message }];
}

/** The longest client's text (a field's name, an id) an answer shows back, in characters. */
const shownTextLength = 128;

/**
 * Text of the client's own (an unknown key, a parameter given twice, the id in a path) as an
 * answer shows it back: every character but printable ASCII escaped (`\u202e`: a direction
 * override would make the message read otherwise than it is), and cut when long.
 */
export function shownBack(text: string): string {
  const cut = text.length > shownTextLength ? `${text.slice(0, shownTextLength)}…` : text;
  return cut.replace(
    /[^\x20-\x7e…]/g,
    (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** The 404 for a `noun` the caller has no such `id` of (another user's is not theirs to know of). */
export function jobNotFound(noun: string, id: string): ApiError {
  return new ApiError('NOT_FOUND', `No ${noun} with id ${shownBack(id)}`);
}

/** The most issues one VALIDATION_FAILED lists: a request with thousands of wrong keys is told of the first. */
export const maxListedIssues = 20;

/**
 * The 400 VALIDATION_FAILED for the issues found: the message names each field (shownBack), as
 * does `details.issues`, which every VALIDATION_FAILED carries; past `maxListedIssues`, the
 * first of them and how many more there are.
 */
export function validationFailed(
  issues: [ValidationIssue, ...ValidationIssue[]],
  /** More details: `file`, the uploaded file refused, as it was sent. */
  more: { file?: string } = {},
): ApiError {
  const listed = issues
    .slice(0, maxListedIssues)
    .map((issue) => ({ ...issue, field: shownBack(issue.field) }));
  const unlisted = issues.length - listed.length;
  return new ApiError(
    'VALIDATION_FAILED',
    listed.map((issue) => `${issue.field}: ${issue.message}`).join('; ') +
      (unlisted > 0 ? `; and ${unlisted} more` : ''),
    { issues: listed, ...more },
  );
}

/**
 * UNSUPPORTED_MEDIA_TYPE for a body of a type the route does not read (`received`, the request's
 * Content-Type), naming the type it does.
 */
export function unsupportedBodyTypeError(
  received: string | undefined,
  accepted: 'application/json' | 'multipart/form-data',
): ApiError {
  const type = received?.split(';')[0]?.trim().slice(0, 100);
  const sent = type ? `A body of type ${type}` : 'A body without a Content-Type';
  return new ApiError(
    'UNSUPPORTED_MEDIA_TYPE',
    `${sent} is not accepted here: expected ${accepted}`,
  );
}

/** The error envelope every error answer carries. */
export function errorBody(code: ErrorCode, message: string, details?: unknown): ErrorBody {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}
