import {
  Client,
  Connection,
  isGrpcServiceError,
  ServiceError,
  type TLSConfig,
  type ClientInterceptors,
} from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { StartupError, type Config } from './config.js';
import { namespaceProblem } from './temporal-namespace.js';

/**
 * Where and how to reach the Temporal frontend: options that both the client's `Connection`
 * and the worker's `NativeConnection` accept, so every connection the service makes is the same.
 */
export interface TemporalEndpoint {
  /** `host:port`. */
  address: string;
  /** Unset: plaintext. */
  tls?: TLSConfig;
  /** Sent as `Authorization: Bearer …` on every call (Temporal Cloud API keys). */
  apiKey?: string;
}

/**
 * Connects with `connect` to `endpoint`; a failure names TEMPORAL_ADDRESS (a StartupError) where
 * the SDK's says only "Failed to connect before the deadline".
 */
export async function connectAtStart<T>(
  endpoint: TemporalEndpoint,
  connect: (endpoint: TemporalEndpoint) => Promise<T>,
): Promise<T> {
  try {
    return await connect(endpoint);
  } catch (error) {
    throw new StartupError(
      'TEMPORAL_ADDRESS',
      `cannot reach Temporal at ${endpoint.address}`,
      error,
    );
  }
}

/**
 * The endpoint the configuration names: TEMPORAL_ADDRESS with the TEMPORAL_TLS_* settings and
 * TEMPORAL_API_KEY. `address` stands in for an unset TEMPORAL_ADDRESS (the dev server `npm start`
 * runs); without either, the dev server's default address.
 */
export function temporalEndpoint(
  config: Pick<
    Config,
    'TEMPORAL_ADDRESS' | 'TEMPORAL_DEV_PORT' | 'TEMPORAL_API_KEY' | 'temporalTls'
  >,
  address?: string,
): TemporalEndpoint {
  return {
    address: config.TEMPORAL_ADDRESS ?? address ?? `127.0.0.1:${config.TEMPORAL_DEV_PORT}`,
    ...(config.temporalTls && { tls: config.temporalTls }),
    ...(config.TEMPORAL_API_KEY && { apiKey: config.TEMPORAL_API_KEY }),
  };
}

/**
 * gRPC waits longer and longer between tries to reconnect to a server that is gone, up to two
 * minutes: the API stayed unready and refused every start for up to that long after Temporal
 * was back. It tries again within 5 s.
 */
export const reconnectSoon = {
  'grpc.initial_reconnect_backoff_ms': 1_000,
  'grpc.max_reconnect_backoff_ms': 5_000,
};

/** The API's way to Temporal: a client for starting and reading workflows, and a readiness ping. */
export interface TemporalAccess {
  client: Client;
  /**
   * Whether starts ask for eager execution: the server hands a new workflow's first task back
   * in the start's answer to the worker on the same connection, sparing a trip through the
   * task queue (about half a short job's time on the dev server).
   */
  eagerStart: boolean;
  /**
   * Resolves if the frontend answers within `timeoutMs` and the namespace is set up for jobs
   * (it exists and has the job search attributes); never leaves a call running after it settles.
   */
  ping(signal: AbortSignal, timeoutMs: number): Promise<void>;
  /**
   * A client for lookups (the queues' pollers, a job's pending tasks) whose calls are not
   * retried: each fails fast when Temporal is out, and none is left retrying once the connection
   * closes (the retrying client's backoff then throws from a timer and stops the process).
   */
  lookups: Client;
  close(): Promise<void>;
}

/**
 * Both connections are made on first use, so the API boots (and answers /readyz with 503)
 * while Temporal is still unreachable instead of refusing to start.
 *
 * Where the API shares its process with the worker that polls the workflows' queue, it passes
 * that worker's connection: starts then go through it and run eagerly. The worker owns and
 * closes it. With tracing on, `interceptors` pass the active trace into what the client starts,
 * signals and updates.
 */
export function createTemporalAccess(
  endpoint: TemporalEndpoint,
  namespace: string,
  workflowWorkerConnection?: NativeConnection,
  interceptors?: ClientInterceptors,
): TemporalAccess {
  const owned = workflowWorkerConnection
    ? null
    : Connection.lazy({ ...endpoint, channelArgs: reconnectSoon });
  // The default connection retries an unavailable server in the background; a readiness probe
  // and the lookups must fail fast and leave nothing behind, so they have a connection without
  // retries.
  const probe = Connection.lazy({ ...endpoint, interceptors: [], channelArgs: reconnectSoon });
  // A namespace once set up stays so: asked until it is, then not again.
  let namespaceReady = false;
  return {
    client: new Client({
      connection: owned ?? workflowWorkerConnection,
      namespace,
      ...(interceptors && { interceptors }),
    }),
    eagerStart: workflowWorkerConnection !== undefined,
    lookups: new Client({ connection: probe, namespace }),
    async ping(signal, timeoutMs) {
      await probe.withAbortSignal(signal, () =>
        probe.withDeadline(Date.now() + timeoutMs, async () => {
          await probe.workflowService.getSystemInfo({});
          if (namespaceReady) return;
          const problem = await namespaceProblem(probe, namespace);
          if (problem) throw new Error(problem);
          namespaceReady = true;
        }),
      );
    },
    async close() {
      await Promise.all([owned?.close(), probe.close()]);
    },
  };
}

/** gRPC status codes of a frontend that cannot answer now: RESOURCE_EXHAUSTED, UNAVAILABLE. */
const unavailableStatuses = new Set([8, 14]);
const cancelled = 1;
const deadlineExceeded = 4;

/**
 * Whether a call failed because Temporal could not be reached or could not answer in time
 * (rather than because it refused the call): the caller may try again once it is back.
 */
export function isTemporalUnavailable(error: unknown): boolean {
  const grpcError = error instanceof ServiceError ? error.cause : error;
  return (
    isTemporalDeadlineExceeded(error) ||
    (isGrpcServiceError(grpcError) && unavailableStatuses.has(grpcError.code))
  );
}

/**
 * Whether Temporal answers a ping within `timeoutMs`: a call that ran out of time without
 * reaching it is TEMPORAL_UNAVAILABLE, not a worker slow to answer.
 */
export function temporalAnswers(
  temporal: Pick<TemporalAccess, 'ping'>,
  timeoutMs = 1_000,
): Promise<boolean> {
  return temporal.ping(AbortSignal.timeout(timeoutMs), timeoutMs).then(
    () => true,
    () => false,
  );
}

/**
 * gRPC FAILED_PRECONDITION from the server: an Update whose workflow task failed under it, or a
 * query of a closed run that no worker polls for.
 */
export function isFailedPrecondition(
  error: unknown,
): error is ServiceError & { cause: { details: string } } {
  return (
    error instanceof ServiceError &&
    isGrpcServiceError(error.cause) &&
    Number(error.cause.code) === 9
  );
}

/**
 * Whether a call ran out of its deadline (`withDeadline`). grpc-js ends it DEADLINE_EXCEEDED;
 * the native connection that eager start shares with the worker ends it CANCELLED, "Timeout
 * expired" (a frozen server answers neither way sooner).
 */
export function isTemporalDeadlineExceeded(error: unknown): boolean {
  const grpcError = error instanceof ServiceError ? error.cause : error;
  if (!isGrpcServiceError(grpcError)) return false;
  const code = Number(grpcError.code);
  return (
    code === deadlineExceeded || (code === cancelled && grpcError.message === 'Timeout expired')
  );
}
