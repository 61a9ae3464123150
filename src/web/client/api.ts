/**
 * The page's API client: typed by the OpenAPI document (api-types.ts, generated), so a change
 * of a route the page calls fails the page's typecheck and build.
 */
import createClient, { type Middleware } from 'openapi-fetch';
import type { operations, paths } from './api-types.js';
import { isJobIdOf } from '../../jobs/job-id-shape.js';
import { sentenceFor } from './error-sentences.js';

type Json<Operation, Status extends number> = Operation extends {
  responses: { [S in Status]: { content: { 'application/json': infer Body } } };
}
  ? Body
  : never;

export type Vlog = Json<operations['getVlog'], 200>;
export type AiJob = Json<operations['getAiJob'], 200>;
export type Job = Json<operations['getJob'], 200>;
export type UploadLimits = Json<operations['getVlogUploadLimits'], 200>;
export type ListJobsQuery = NonNullable<operations['listJobs']['parameters']['query']>;
export type AiJobRequest = NonNullable<
  operations['startAiJob']['requestBody']
>['content']['application/json'];

/** A refusal or failure, with the sentence the page shows and the API's own message. */
export class ApiFailure extends Error {
  readonly sentence: string;
  constructor(
    readonly code: string,
    /** The API's message (naming the field or file), or what went wrong on the way. */
    readonly detail: string,
    readonly status: number | null,
    /** The uploaded file the API refused, as its answer names it (`details.file`). */
    readonly file?: string,
  ) {
    super(`${code}: ${detail}`);
    this.sentence = sentenceFor(code);
  }
}

/** An error answer's code and message, or UNEXPECTED_ANSWER for a body that is not one. */
export function failureOf(status: number, body: unknown): ApiFailure {
  const error = (
    body as { error?: { code?: unknown; message?: unknown; details?: { file?: unknown } } } | null
  )?.error;
  if (typeof error?.code === 'string') {
    const file = error.details?.file;
    return new ApiFailure(
      error.code,
      typeof error.message === 'string' ? error.message : '',
      status,
      typeof file === 'string' ? file : undefined,
    );
  }
  return new ApiFailure('UNEXPECTED_ANSWER', `HTTP ${status}`, status);
}

export interface ApiClientOptions {
  token: () => string | null;
  /** Called on a 401: the token is no longer accepted. */
  onUnauthorized: (failure: ApiFailure) => void;
  /** Called on any other answer: the service accepted the token. */
  onAuthorized?: () => void;
}

export function createApi({ token, onUnauthorized, onAuthorized }: ApiClientOptions) {
  const client = createClient<paths>({ baseUrl: '' });
  const auth: Middleware = {
    onRequest({ request }) {
      const current = token();
      if (current) request.headers.set('authorization', `Bearer ${current}`);
      return request;
    },
  };
  client.use(auth);

  /** The body of a successful answer, or an ApiFailure (a 401 also signs the page out). */
  async function call<T>(
    request: Promise<{ data?: T; error?: unknown; response: Response }>,
  ): Promise<T> {
    let result: Awaited<typeof request>;
    try {
      result = await request;
    } catch (error) {
      throw new ApiFailure('NETWORK_ERROR', (error as Error).message, null);
    }
    const { data, error, response } = result;
    if (response.status !== 401) onAuthorized?.();
    if (response.ok) return data as T;
    const failure = failureOf(response.status, error);
    if (response.status === 401) onUnauthorized(failure);
    throw failure;
  }

  const id = (value: string) => ({ params: { path: { id: value } } });
  return {
    uploadLimits: () => call(client.GET('/api/vlogs/upload-limits')),
    vlog: (vlogId: string) =>
      isJobIdOf('vlog', vlogId)
        ? call(client.GET('/api/vlogs/{id}', id(vlogId)))
        : Promise.reject(noSuchJob('vlog', vlogId)),
    cancelVlog: (vlogId: string) =>
      call(client.POST('/api/vlogs/{id}/cancel', { ...id(vlogId), body: {} })),
    /** Of the attempt shown failed: sent again after a lost answer, it gets that retry's. */
    retryVlog: (vlogId: string, attempt: number) =>
      call(client.POST('/api/vlogs/{id}/retry', { ...id(vlogId), body: { attempt } })),
    vlogStreamLink: (vlogId: string) =>
      call(client.POST('/api/vlogs/{id}/events/link', id(vlogId))),
    /** Sent again with the same key (a retry after a network error), it makes no second job. */
    startAiJob: (body: AiJobRequest, idempotencyKey: string) =>
      call(
        client.POST('/api/ai/jobs', {
          body,
          params: { header: { 'idempotency-key': idempotencyKey } },
        }),
      ),
    aiJob: (jobId: string) =>
      isJobIdOf('ai', jobId)
        ? call(client.GET('/api/ai/jobs/{id}', id(jobId)))
        : Promise.reject(noSuchJob('AI job', jobId)),
    cancelAiJob: (jobId: string) =>
      call(client.POST('/api/ai/jobs/{id}/cancel', { ...id(jobId), body: {} })),
    retryAiJob: (jobId: string, attempt: number) =>
      call(client.POST('/api/ai/jobs/{id}/retry', { ...id(jobId), body: { attempt } })),
    aiJobStreamLink: (jobId: string) =>
      call(client.POST('/api/ai/jobs/{id}/events/link', id(jobId))),
    jobs: (query: ListJobsQuery) => call(client.GET('/api/jobs', { params: { query } })),

    /**
     * `POST /api/vlogs` through XMLHttpRequest, the one browser API that reports upload
     * progress. Resolves with the accepted vlog; `abort` stops the upload.
     */
    createVlog(
      form: FormData,
      onProgress: (sent: number, total: number) => void,
      idempotencyKey: string,
    ): { done: Promise<Vlog>; abort: () => void } {
      const xhr = new XMLHttpRequest();
      const done = new Promise<Vlog>((resolve, reject) => {
        xhr.open('POST', '/api/vlogs');
        const current = token();
        if (current) xhr.setRequestHeader('authorization', `Bearer ${current}`);
        xhr.setRequestHeader('idempotency-key', idempotencyKey);
        xhr.responseType = 'json';
        xhr.upload.addEventListener('progress', (event) => {
          if (event.lengthComputable) onProgress(event.loaded, event.total);
        });
        xhr.addEventListener('load', () => {
          if (xhr.status === 202) return resolve(xhr.response as Vlog);
          const failure = failureOf(xhr.status, xhr.response);
          if (xhr.status === 401) onUnauthorized(failure);
          reject(failure);
        });
        xhr.addEventListener('error', () =>
          reject(
            new ApiFailure(
              'NETWORK_ERROR',
              'The upload was cut off. Send it again once you are back online: the vlog will not be made twice.',
              null,
            ),
          ),
        );
        xhr.addEventListener('abort', () =>
          reject(new ApiFailure('CANCELLED', 'You stopped the upload', null)),
        );
        xhr.send(form);
      });
      return { done, abort: () => xhr.abort() };
    },
  };
}

export type Api = ReturnType<typeof createApi>;

/**
 * The answer to an address naming no id the service makes, found without asking: a path would
 * read some (`.`, `..`, `upload-limits`) as another route.
 */
function noSuchJob(noun: string, id: string): ApiFailure {
  const shown = JSON.stringify(id.length > 128 ? `${id.slice(0, 128)}…` : id);
  return new ApiFailure('NOT_FOUND', `No ${noun} with id ${shown}`, 404);
}

/**
 * Calls `read` until it is answered, every 3 s while the service cannot be reached or fails on
 * its side (what a view needs before it can show anything, whose failure says the page keeps
 * trying); a refusal stops it. Returns what stops it (the view is gone).
 */
export function readUntilAnswered<T>(
  read: () => Promise<T>,
  onAnswer: (value: T) => void,
  onFailure: (failure: unknown) => void,
): () => void {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const attempt = () => {
    read().then(
      (value) => {
        if (!stopped) onAnswer(value);
      },
      (error: unknown) => {
        if (stopped) return;
        // No answer at all (null), or the service's own trouble, which passes.
        const status = error instanceof ApiFailure ? error.status : 0;
        // The browser's own words for no answer ('Failed to fetch') tell a person nothing.
        onFailure(
          status === null
            ? new ApiFailure('NETWORK_ERROR', 'The page tries again every 3 seconds.', null)
            : error,
        );
        if (status === null || status >= 500 || status === 429) timer = setTimeout(attempt, 3_000);
      },
    );
  };
  attempt();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** A request's Idempotency-Key: 128 random bits in hex (crypto.randomUUID needs HTTPS, which a local service lacks). */
export function newIdempotencyKey(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) =>
    byte.toString(16).padStart(2, '0'),
  ).join('');
}
