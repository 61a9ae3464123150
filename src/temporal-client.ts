import { Client, Connection, isGrpcServiceError, ServiceError } from '@temporalio/client';

/** The API's way to Temporal: a client for starting and reading workflows, and a readiness ping. */
export interface TemporalAccess {
  client: Client;
  /** Resolves if the frontend answers within `timeoutMs`; never leaves a call running after it settles. */
  ping(signal: AbortSignal, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Both connections are made on first use, so the API boots (and answers /readyz with 503)
 * while Temporal is still unreachable instead of refusing to start.
 */
export function createTemporalAccess(address: string, namespace: string): TemporalAccess {
  const connection = Connection.lazy({ address });
  // The default connection retries an unavailable server in the background; a readiness probe
  // must fail fast and leave nothing behind, so it has a connection without retries.
  const probe = Connection.lazy({ address, interceptors: [] });
  return {
    client: new Client({ connection, namespace }),
    async ping(signal, timeoutMs) {
      await probe.withAbortSignal(signal, () =>
        probe.withDeadline(Date.now() + timeoutMs, () => probe.workflowService.getSystemInfo({})),
      );
    },
    async close() {
      await Promise.all([connection.close(), probe.close()]);
    },
  };
}

/** gRPC status codes of a frontend that cannot answer now: DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, UNAVAILABLE. */
const unavailableStatuses = new Set([4, 8, 14]);

/**
 * Whether a call failed because Temporal could not be reached or could not answer in time
 * (rather than because it refused the call): the caller may try again once it is back.
 */
export function isTemporalUnavailable(error: unknown): boolean {
  const grpcError = error instanceof ServiceError ? error.cause : error;
  return isGrpcServiceError(grpcError) && unavailableStatuses.has(grpcError.code);
}
