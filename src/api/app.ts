import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import {
  serializerCompiler,
  validatorCompiler,
  type FastifyPluginAsyncZod,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { Db } from '../db/database.js';
import type { Config } from '../config.js';
import { mediaDeletedAt } from '../db/media-retention.js';
import { jobKindRegistry } from '../kinds/index.js';
import { jobRunSettings, type KindRouteDependencies } from '../kinds/registration.js';
import { vlogIdOfKey } from '../jobs/storage-keys.js';
import type { Logger } from '../logger.js';
import { selectVlogProvider } from '../providers/index.js';
import { LocalMediaStorage } from '../storage/local-storage.js';
import type { MediaStorage } from '../storage/object-storage.js';
import type { TemporalAccess } from '../temporal-client.js';
import type { Tracing } from '../tracing/index.js';
import { createTokenVerifier } from '../auth.js';
import { ApiError } from './errors.js';
import { createSharedStateMetrics } from '../metrics/shared-state.js';
import {
  answerConnectionError,
  answerRouterError,
  answerUnmetExpectation,
  errorHandler,
  KnownRoutes,
  unroutedRequestAnswer,
} from './plugins/error-handler.js';
import { bearerAuth } from './plugins/auth.js';
import { createStreamLinks } from './services/stream-links.js';
import { documentBearerAuth, openApi } from './plugins/openapi.js';
import { conditionalReads } from './plugins/conditional-reads.js';
import { jsonBody } from './plugins/json-body.js';
import { rateLimit } from './plugins/rate-limit.js';
import { metrics } from './plugins/metrics.js';
import { jobEventStreams } from './plugins/sse.js';
import { refuseRepeatedParameters } from './plugins/repeated-parameters.js';
import { refuseUnstorableText } from './plugins/storable-text.js';
import { adminRoutes } from './routes/admin.js';
import { healthRoutes } from './routes/health.js';
import { jobRoutes } from './routes/jobs.js';
import { mediaRoutes } from './routes/media.js';
import { jobStartRoutes } from './routes/job-starts.js';
import { webPageRoutes } from './routes/web-page.js';
import { loadWebPage } from '../web/build.js';
import { createJobActions } from './services/job-actions.js';
import { createJobStarter } from './services/job-starter.js';
import { budgetDefaults } from './services/budgets.js';
import { createUsageService } from './services/usage.js';
import { usageRoutes } from './routes/usage.js';
import { createMediaWorkers } from './services/media-workers.js';
import { createReadiness } from './services/readiness.js';
import { watchTaskQueues } from '../task-queue-status.js';
import { createWorkerWaits, type WorkerWaits } from './services/worker-waits.js';
import { createRedrives } from './services/redrives.js';
import { jobIdOf, requestLogFields } from './request-log.js';

export interface AppDependencies {
  db: Db;
  config: Config;
  temporal: TemporalAccess;
  mediaStorage: MediaStorage;
  jwtSecret: string;
  logger: Logger;
  /** Set when tracing is on: each request gets a span, which the job's trace starts from. */
  tracing?: Tracing | null;
}

/**
 * Fastify's `trustProxy` for API_TRUST_PROXY: a count of hops trusts that many addresses from
 * the connection's end of X-Forwarded-For (as Fastify does with a number, which its types omit).
 */
function trustProxyOption(
  trusted: Config['API_TRUST_PROXY'],
): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (trusted === undefined) return false;
  if (typeof trusted === 'number') return (_address, hop) => hop < trusted;
  return trusted;
}

/** The HTTP API. It starts and reads jobs; it never runs them. */
export async function buildApp(deps: AppDependencies): Promise<FastifyInstance> {
  const app = Fastify<Server, IncomingMessage, ServerResponse, FastifyBaseLogger>({
    loggerInstance: deps.logger.child({}, { serializers: { req: requestLogFields } }),
    // Every limit of the HTTP server, explicit (docs/api.md, "Request limits"): what a client may send and
    // how long it may take before the connection is cut.
    bodyLimit: deps.config.API_BODY_LIMIT_BYTES,
    http: {
      maxHeaderSize: deps.config.API_MAX_HEADER_BYTES,
      headersTimeout: deps.config.API_HEADERS_TIMEOUT_MS,
      requestTimeout: deps.config.API_REQUEST_TIMEOUT_MS,
      // How often Node enforces the two timeouts above (its default, 30 s, would let a client
      // outlive a 10 s headers timeout by up to 30 s).
      connectionsCheckingInterval: Math.min(1_000, deps.config.API_HEADERS_TIMEOUT_MS),
      // Node would answer an HTTP/1.1 request without Host with a bare 400; a hook below
      // refuses it in the error envelope.
      requireHostHeader: false,
    },
    requestTimeout: deps.config.API_REQUEST_TIMEOUT_MS,
    connectionTimeout: deps.config.API_IDLE_TIMEOUT_MS,
    keepAliveTimeout: deps.config.API_KEEP_ALIVE_TIMEOUT_MS,
    // A path parameter may be as long as the request head allows: the URL limit (an onRequest
    // hook below) and the route's schema decide, each with its own answer.
    routerOptions: { maxParamLength: deps.config.API_MAX_HEADER_BYTES },
    frameworkErrors: answerRouterError,
    clientErrorHandler: answerConnectionError(deps.logger),
    // Which forwarded client address to believe (`request.ip`, in the request logs).
    trustProxy: trustProxyOption(deps.config.API_TRUST_PROXY),
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    // Refused by a hook below, in the error envelope (Fastify's own 503 body has another shape).
    return503OnClosing: false,
    forceCloseConnections: 'idle',
  }).withTypeProvider<ZodTypeProvider>();
  const routes = new KnownRoutes();
  app.addHook('onRoute', routes.learn);

  // Only JSON (and, per route, multipart) bodies are accepted: anything else is a 415.
  app.removeContentTypeParser('text/plain');
  await app.register(jsonBody);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  if (deps.tracing) {
    const { requestSpans } = await import('./plugins/request-spans.js');
    await app.register(requestSpans, { tracer: deps.tracing.tracer });
  }
  await app.register(errorHandler, { routes });
  // The task queues as Temporal describes them, read once for all the API's readers of them.
  const queues = watchTaskQueues(deps.temporal.lookups, deps.config.TEMPORAL_TASK_QUEUE);
  app.addHook('onClose', async () => queues.close());
  await app.register(metrics, {
    logger: deps.logger,
    rendersPerSecond: deps.config.API_METRICS_RENDERS_PER_SECOND,
    sharedState: createSharedStateMetrics({ db: deps.db, queues, logger: deps.logger }),
  });
  // A job's id is in its routes' path: every line of a request about a job carries it as
  // `jobId`, as the worker's lines do, so one grep finds the job in both processes (the first
  // line, logged before any hook, carries it in `req`: requestLogFields).
  app.addHook('onRequest', async (request, reply) => {
    const jobId = jobIdOf(request);
    if (jobId === undefined) return;
    request.log = request.log.child({ jobId });
    reply.log = request.log;
  });
  // Browsers must take every answer for its declared type: a stored image is never run as HTML.
  // No page of ours is meant to be framed (the API docs had no guard, unlike the web page):
  // another site cannot dress one up to take a click.
  app.addHook('onRequest', async (_request, reply) => {
    reply.header('x-content-type-options', 'nosniff').header('x-frame-options', 'DENY');
  });
  // API_IDLE_TIMEOUT_MS is for a client gone silent: once its request has arrived whole (an
  // upload's once its handler has read it), the wait is the server's, and the idle timer cut the
  // connection under a request still being worked on (an upload's inspection may take longer).
  // Node sets it again for the connection's next request.
  app.addHook('preHandler', (request, reply, done) => {
    const received = () => {
      // A real connection's: an injected request has none.
      const { socket } = request.raw;
      if (socket instanceof Socket && !reply.raw.writableEnded) socket.setTimeout(0);
    };
    if (request.raw.complete) received();
    else request.raw.once('end', received);
    done();
  });
  app.server.on('checkExpectation', answerUnmetExpectation);
  // RFC 9112, 3.2: an HTTP/1.1 request must name its host.
  app.addHook('onRequest', async (request) => {
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      throw new ApiError('BAD_REQUEST', 'An HTTP/1.1 request must have a Host header');
    }
  });
  // Below the header limit, so an over-long URL gets its own answer rather than a 431.
  app.addHook('onRequest', async (request) => {
    const bytes = Buffer.byteLength(request.raw.url ?? '');
    if (bytes > deps.config.API_MAX_URL_BYTES) {
      throw new ApiError(
        'URL_TOO_LONG',
        `The URL is ${bytes} bytes long; the API accepts at most ${deps.config.API_MAX_URL_BYTES}`,
      );
    }
  });
  // A stopping process still reads requests on connections that were busy when it began to
  // stop; it refuses them (Fastify closes each such connection after its answer), so a client
  // sends them again to another process.
  let stopping = false;
  app.addHook('preClose', async () => {
    stopping = true;
  });
  app.addHook('onRequest', async () => {
    if (stopping) {
      throw new ApiError(
        'SHUTTING_DOWN',
        'This API process is stopping; send the request again',
        undefined,
        { 'retry-after': '1' },
      );
    }
  });
  // A request refused before its body was read (rate limit, in-flight cap, authentication) ends
  // its connection: otherwise Node would read and discard the rest of the body, gigabytes
  // perhaps, to keep the connection alive for the next request.
  app.addHook('onSend', async (request, reply) => {
    if (reply.statusCode >= 400 && request.raw.complete === false) {
      reply.header('connection', 'close');
    }
  });
  await app.register(refuseRepeatedParameters);
  await app.register(refuseUnstorableText);
  await app.register(openApi);
  const waits = createWorkerWaits({
    client: deps.temporal.lookups,
    queues,
    logger: deps.logger,
  });
  app.addHook('onClose', async () => waits.close());
  await app.register(jobEventStreams, {
    db: deps.db,
    waits,
    pollMs: deps.config.EVENT_STREAM_POLL_MS,
    keepAliveMs: deps.config.EVENT_STREAM_KEEPALIVE_MS,
    limits: {
      maxPerUser: deps.config.EVENT_STREAM_MAX_PER_USER,
      maxOpen: deps.config.EVENT_STREAM_MAX_OPEN,
    },
  });

  // The API runs no media tools: it asks the workers polling the media and inspection queues.
  const mediaWorkers = createMediaWorkers(queues, 'media');
  const inspectionWorkers = createMediaWorkers(queues, 'inspection');
  await app.register(
    healthRoutes(
      createReadiness(deps.temporal, deps.db, {
        workers: mediaWorkers,
        required: selectVlogProvider(deps.config) === 'local',
      }),
    ),
  );
  if (deps.mediaStorage instanceof LocalMediaStorage) {
    await app.register(
      mediaRoutes(deps.mediaStorage, deps.jwtSecret, async (key) => {
        const vlogId = vlogIdOfKey(key);
        return vlogId ? mediaDeletedAt(deps.db, vlogId) : null;
      }),
    );
  }
  await app.register(
    webPageRoutes({ load: loadWebPage, mediaOrigins: [new URL(deps.config.apiPublicUrl).origin] }),
  );
  await app.register(apiRoutes(deps, { mediaWorkers, inspectionWorkers }, waits, routes), {
    prefix: '/api',
  });
  return app;
}

/** Everything under `/api`: authenticated, rate limited, and documented as such. */
function apiRoutes(
  deps: AppDependencies,
  workers: Pick<KindRouteDependencies, 'mediaWorkers' | 'inspectionWorkers'>,
  waits: WorkerWaits,
  routes: KnownRoutes,
): FastifyPluginAsyncZod {
  const { config, db } = deps;
  const startJob = createJobStarter({
    db,
    temporal: deps.temporal.client,
    eagerStart: deps.temporal.eagerStart,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    logger: deps.logger,
    maxJobsInFlight: config.USER_MAX_JOBS_IN_FLIGHT,
    budgets: budgetDefaults(config),
  });
  const actions = createJobActions(
    deps.temporal,
    { timeoutMs: config.JOB_CONTROL_TIMEOUT_MS },
    { db, budgets: budgetDefaults(config), maxJobsInFlight: config.USER_MAX_JOBS_IN_FLIGHT },
  );
  const redrives = createRedrives({
    db,
    budgets: budgetDefaults(config),
    temporal: deps.temporal,
    actions,
    maxJobsInFlight: config.USER_MAX_JOBS_IN_FLIGHT,
    timeoutMs: config.JOB_CONTROL_TIMEOUT_MS,
    logger: deps.logger,
  });
  return async (api) => {
    await api.register(bearerAuth, {
      verifyToken: createTokenVerifier(config, deps.jwtSecret),
      streamLinks: createStreamLinks(deps.jwtSecret, config.EVENT_STREAM_LINK_TTL_SECONDS),
    });
    await api.register(rateLimit, {
      db,
      reads: { limit: config.USER_READ_RATE_LIMIT_REQUESTS, windowMs: config.RATE_LIMIT_WINDOW_MS },
      submissions: {
        limit: config.USER_RATE_LIMIT_REQUESTS,
        windowMs: config.RATE_LIMIT_WINDOW_MS,
      },
    });
    await api.register(conditionalReads, {
      intervals: {
        runningSeconds: config.JOB_POLL_INTERVAL_SECONDS,
        pendingSeconds: config.JOB_PENDING_POLL_INTERVAL_SECONDS,
        waitingSeconds: config.JOB_WAITING_POLL_INTERVAL_SECONDS,
      },
      waits,
    });
    await api.register(documentBearerAuth);
    api.setNotFoundHandler(unroutedRequestAnswer(routes));
    const kinds = jobKindRegistry.map(({ declaration }) => declaration);
    await api.register(jobRoutes(db, kinds));
    await api.register(
      adminRoutes(
        db,
        redrives,
        budgetDefaults(config),
        kinds.map(({ kind }) => kind),
      ),
    );
    await api.register(usageRoutes(createUsageService({ db, budgets: budgetDefaults(config) })));
    await api.register(
      jobStartRoutes(jobKindRegistry, {
        db,
        startJob,
        actions,
        runSettings: jobRunSettings(config),
      }),
    );
    for (const { routes } of jobKindRegistry) {
      if (routes) await api.register(routes({ ...deps, ...workers, startJob, actions }));
    }
  };
}
