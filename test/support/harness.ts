// The one way API tests start what they need: the full app as production builds it, over a
// fresh database and the run's Temporal dev server, with clients that act as a given user.
// Tests that send bad tokens, no token or raw bytes use `api.app` (inject) or a socket
// themselves; everything else goes through `user(id)`.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import type { ActivityDependencies } from '../../src/activities/index.js';
import { buildApp } from '../../src/api/app.js';
import { mintToken } from '../../src/auth.js';
import { loadConfig } from '../../src/config.js';
import type { Db } from '../../src/db/database.js';
import type { Logger } from '../../src/logger.js';
import { createMediaStorage } from '../../src/storage/index.js';
import type { MediaStorage } from '../../src/storage/object-storage.js';
import type { TemporalAccess, TemporalEndpoint } from '../../src/temporal-client.js';
import {
  jobReconcileScheduleId,
  type JobReconcileSettings,
} from '../../src/worker/job-reconcile-schedule.js';
import type { MediaSweepSettings } from '../../src/worker/media-sweep-schedule.js';
import { multipartBody, pngBytes } from '../fixtures/media.js';
import { createTestDatabase } from './database.js';
import { testEnv } from './env.js';
import { eventually } from './eventually.js';
import { testLogger } from './logs.js';
import { startTestWorker, testTemporal, uniqueTaskQueue } from './temporal.js';

export const testJwtSecret = 'test-secret-that-is-long-enough-for-hs256!';

/**
 * The environment of the production API and worker processes (startReadyService) on the
 * suite's Temporal server: a data folder, database and task queue of the test's own, tokens
 * signed with testJwtSecret, and a worker that drains for a second when stopped.
 */
export function serviceEnv(own: {
  dataDir: string;
  databaseUrl: string;
  taskQueue: string;
}): Record<string, string> {
  return {
    DATA_DIR: own.dataDir,
    AUTH_JWT_SECRET: testJwtSecret,
    DATABASE_URL: own.databaseUrl,
    TEMPORAL_ADDRESS: testEnv.temporalAddress,
    TEMPORAL_NAMESPACE: testEnv.temporalNamespace,
    TEMPORAL_TASK_QUEUE: own.taskQueue,
    WORKER_SHUTDOWN_GRACE_MS: '1000',
  };
}

/** What `app.inject` answers: status, headers, body and `json()`. */
export type ApiResponse = LightMyRequestResponse;

/** A body and the headers that describe it, as `multipartBody` (test/fixtures) builds one. */
export interface FormBody {
  payload: Buffer | string;
  headers: Record<string, string>;
}

/** The job kinds the API starts: where a job of each is created and read. */
const kinds = {
  probe: { create: '/api/probes', view: (id: string) => `/api/jobs/${id}` },
  ai: { create: '/api/ai/jobs', view: (id: string) => `/api/ai/jobs/${id}` },
  vlog: { create: '/api/vlogs', view: (id: string) => `/api/vlogs/${id}` },
} as const;

export type JobKind = keyof typeof kinds;

/** A valid request of each kind: what `startJob` sends when given no body. */
const validBodies = {
  probe: () => ({ steps: 1, stepDelayMs: 0 }),
  ai: () => ({ type: 'SUBGOAL_GENERATION', input: { goal: 'Learn to sail' } }),
  vlog: () =>
    multipartBody({ title: 'Control' }, [
      { field: 'media', filename: 'control.png', contentType: 'image/png', bytes: pngBytes() },
    ]),
};

export interface AwaitJobOptions {
  /** What is awaited, for the failure message. */
  what?: string;
  /** Default 60 s. */
  timeoutMs?: number;
  /** Default 50 ms. */
  intervalMs?: number;
  /** Query string of each read, e.g. `?live=true`. */
  query?: string;
  /** Receives every view read, in order, to check what was seen on the way. */
  seen?: unknown[];
}

/** Requests as one user: each carries a valid token of theirs. */
export interface UserClient {
  id: string;
  /** The `Authorization` header value, for requests over a real socket. */
  authorization(): Promise<string>;
  /** Any request; `headers` are added to the user's Authorization header. */
  request(options: InjectOptions): Promise<ApiResponse>;
  get(url: string, headers?: Record<string, string>): Promise<ApiResponse>;
  /** A POST; an object payload is sent as JSON, a string or Buffer as it is. */
  post(
    url: string,
    payload?: InjectOptions['payload'],
    headers?: Record<string, string>,
  ): Promise<ApiResponse>;
  postForm(url: string, form: FormBody, headers?: Record<string, string>): Promise<ApiResponse>;
  cancel(kind: 'ai' | 'vlog', id: string, body?: object): Promise<ApiResponse>;
  retry(kind: 'ai' | 'vlog', id: string): Promise<ApiResponse>;
  /** Starts a job of `kind` (a valid one when no body is given); asserts 202, returns the view. */
  startJob<View extends { id: string } = { id: string }>(
    kind: JobKind,
    body?: object | FormBody,
  ): Promise<View>;
  /** The job's view; asserts 200. */
  view<View>(kind: JobKind, id: string, query?: string): Promise<View>;
  /** Polls the job's view until `done` accepts it, or fails past the deadline. */
  awaitJob<View>(
    kind: JobKind,
    id: string,
    done: (view: View) => boolean,
    options?: AwaitJobOptions,
  ): Promise<View>;
}

export interface TestApi {
  /** The Fastify app, for requests a user client must not make (no token, a bad one). */
  app: FastifyInstance;
  user(id: string): UserClient;
  /** A client acting as `id` whose token carries the admin claim (the default AUTH_ADMIN_CLAIM). */
  admin(id: string): UserClient;
  /** Listens on a free local port and returns the base URL, for tests over real sockets. */
  listen(): Promise<string>;
}

export interface ApiOptions {
  /** Environment overrides on top of the test defaults. */
  env?: Record<string, string>;
  /** Default: the harness's task queue. */
  taskQueue?: string;
  logger?: Logger;
  mediaStorage?: MediaStorage;
}

async function createTestApi(
  db: Db,
  temporal: TemporalAccess,
  taskQueue: string,
  options: ApiOptions,
): Promise<TestApi> {
  const config = loadConfig({
    TEMPORAL_TASK_QUEUE: taskQueue,
    API_BODY_LIMIT_BYTES: String(64 * 1024),
    API_PUBLIC_URL: 'http://api.test',
    DATA_DIR: path.join(os.tmpdir(), `vlogflow-api-${randomUUID()}`),
    // Tests poll a job every 100 ms for minutes; the read limit has tests of its own.
    USER_READ_RATE_LIMIT_REQUESTS: '100000',
    // Tests read a gauge right after what moves it, and poll /metrics; the ration has its own.
    API_METRICS_RENDERS_PER_SECOND: '100000',
    ...options.env,
  });
  const app = await buildApp({
    config,
    db,
    temporal,
    mediaStorage: options.mediaStorage ?? createMediaStorage(config, testJwtSecret),
    jwtSecret: testJwtSecret,
    logger: options.logger ?? testLogger(),
  });
  await app.ready();
  return {
    app,
    user: (id) => userClient(app, id),
    admin: (id) =>
      userClient(app, id, { [config.AUTH_ADMIN_CLAIM]: [config.AUTH_ADMIN_CLAIM_VALUE] }),
    listen: () => app.listen({ host: '127.0.0.1', port: 0 }),
  };
}

function userClient(
  app: FastifyInstance,
  id: string,
  claims: Record<string, unknown> = {},
): UserClient {
  let token: Promise<string> | undefined;
  const authorization = async () =>
    `Bearer ${await (token ??= mintToken(testJwtSecret, id, { claims }))}`;
  const request = async (options: InjectOptions) =>
    app.inject({
      ...options,
      headers: { authorization: await authorization(), ...options.headers },
    });
  const post = (url: string, payload?: InjectOptions['payload'], headers = {}) =>
    request({ method: 'POST', url, headers, ...(payload === undefined ? {} : { payload }) });
  const postForm = (url: string, form: FormBody, headers = {}) =>
    post(url, form.payload, { ...form.headers, ...headers });
  const view = async <View>(kind: JobKind, jobId: string, query = '') => {
    const response = await request({ method: 'GET', url: `${kinds[kind].view(jobId)}${query}` });
    assert.equal(response.statusCode, 200, response.body);
    return response.json<View>();
  };
  return {
    id,
    authorization,
    request,
    get: (url, headers = {}) => request({ method: 'GET', url, headers }),
    post,
    postForm,
    cancel: (kind, jobId, body) => post(`${kinds[kind].view(jobId)}/cancel`, body),
    retry: (kind, jobId) => post(`${kinds[kind].view(jobId)}/retry`),
    async startJob<View extends { id: string }>(kind: JobKind, body?: object | FormBody) {
      const sent = body ?? validBodies[kind]();
      const response =
        kind === 'vlog'
          ? await postForm(kinds[kind].create, sent as FormBody)
          : await post(kinds[kind].create, sent);
      assert.equal(response.statusCode, 202, response.body);
      return response.json<View>();
    },
    view,
    awaitJob: (kind, jobId, done, options = {}) =>
      eventually(
        async () => {
          const current = await view<Parameters<typeof done>[0]>(kind, jobId, options.query);
          options.seen?.push(current);
          return current;
        },
        done,
        {
          what: options.what ?? `${kind} job ${jobId}`,
          timeoutMs: options.timeoutMs ?? 60_000,
          intervalMs: options.intervalMs ?? 50,
        },
      ),
  };
}

export interface HarnessOptions extends ApiOptions {
  /** Default: a fresh copy of the run's migrated database, dropped by `stop()`. */
  db?: Db;
  /** Default: a client of `temporalEndpoint`, closed by `stop()`. */
  temporal?: TemporalAccess;
  /**
   * Where the default client and the worker reach Temporal (a TLS proxy in front of the dev
   * server, say). Default: the run's dev server, in plaintext.
   */
  temporalEndpoint?: TemporalEndpoint;
  /**
   * Default: a task queue of its own, which only the harness's worker polls: without one,
   * accepted jobs stay pending.
   */
  taskQueue?: string;
  /**
   * With it, a real worker polls the task queue until `stop()`: `true` for the embedded
   * defaults of `startTestWorker`, or a function giving its dependencies.
   */
  worker?: true | ((db: Db) => Promise<Partial<ActivityDependencies>>);
  /** With a worker: it schedules the media sweep as production workers do. */
  mediaSweep?: MediaSweepSettings;
  /** With a worker: it schedules the job reconciler as production workers do; `stop()` deletes the schedule. */
  jobReconcile?: JobReconcileSettings;
}

export interface Harness {
  db: Db;
  temporal: TemporalAccess;
  taskQueue: string;
  /** The API the harness started. */
  api: TestApi;
  /** A client of `api` acting as `id`. */
  user(id: string): UserClient;
  /** A client of `api` acting as operator `id` (the admin claim). */
  admin(id: string): UserClient;
  /** Another API process over the same database and Temporal (other settings, say). */
  startApi(options?: ApiOptions): Promise<TestApi>;
  /** Workflows to terminate at `stop()`: jobs no worker will ever end. */
  terminateOnStop(...workflowIds: string[]): void;
  /** Stops the worker, closes every API, terminates the listed workflows, drops the database. */
  stop(): Promise<void>;
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  // Undone last to first, by `stop()` or by a failed start.
  const cleanups: (() => Promise<unknown>)[] = [];
  const undo = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  };
  try {
    return await start(options, cleanups, undo);
  } catch (error) {
    await undo();
    throw error;
  }
}

async function start(
  options: HarnessOptions,
  cleanups: (() => Promise<unknown>)[],
  undo: () => Promise<void>,
): Promise<Harness> {
  const temporal = options.temporal ?? testTemporal(options.temporalEndpoint);
  if (!options.temporal) cleanups.push(() => temporal.close());
  let db = options.db;
  if (!db) {
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    db = database.db;
  }
  const taskQueue = options.taskQueue ?? uniqueTaskQueue('harness');
  const toTerminate: string[] = [];
  cleanups.push(async () => {
    for (const id of toTerminate) {
      await temporal.client.workflow
        .getHandle(id)
        .terminate('test over')
        .catch(() => undefined);
    }
  });
  const startApi = async (apiOptions: ApiOptions = {}) => {
    const api = await createTestApi(db, temporal, apiOptions.taskQueue ?? taskQueue, apiOptions);
    cleanups.push(() => api.app.close());
    return api;
  };
  const api = await startApi(options);
  if (options.worker) {
    const worker = await startTestWorker(
      taskQueue,
      { ...(options.worker === true ? {} : await options.worker(db)), db },
      options.logger,
      options.mediaSweep,
      options.jobReconcile,
      options.temporalEndpoint,
    );
    cleanups.push(() => worker.stop());
    const { jobReconcile } = options;
    if (jobReconcile) {
      // The schedule outlives the worker that made it: gone first, it starts no run on a
      // stopped queue.
      cleanups.push(() =>
        temporal.client.schedule
          .getHandle(jobReconcileScheduleId(taskQueue))
          .delete()
          .catch(() => undefined),
      );
    }
  }
  return {
    db,
    temporal,
    taskQueue,
    api,
    user: (id) => api.user(id),
    admin: (id) => api.admin(id),
    startApi,
    terminateOnStop: (...ids) => toTerminate.push(...ids),
    stop: undo,
  };
}
