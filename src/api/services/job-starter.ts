import { createHash } from 'node:crypto';
import {
  WorkflowExecutionAlreadyStartedError,
  type Client,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import { isDatabaseUnavailable, type Db } from '../../db/database.js';
import type { JobRow } from '../../db/schema.js';
import { idempotentJobId, newJobId } from '../../jobs/ids.js';
import type { JobRecord } from '../../jobs/contracts.js';
import {
  countJobsInFlight,
  findJobIdByIdempotencyKey,
  findOwnedJob,
  insertJob,
  lockOwner,
} from '../../db/jobs.js';
import type { JobKind } from '../../jobs/model.js';
import type { JobKindDeclaration } from '../../kinds/declaration.js';
import type { Logger } from '../../logger.js';
import { isTemporalUnavailable } from '../../temporal-client.js';
import {
  JobAttemptKey,
  JobKindKey,
  JobStatusKey,
  JobTypeKey,
  UserIdKey,
} from '../../jobs/search-attributes.js';
import { ApiError } from '../errors.js';

export interface StartJobRequest<Input> {
  /** The kind's declaration: its name, workflow type and Web UI summary. */
  kind: JobKindDeclaration<string, Input> & { kind: JobKind };
  type: string;
  /** The workflow's arguments, built around the accepted job record. */
  workflowArgs: (job: JobRecord<Input>) => unknown[];
  ownerId: string;
  input: Input;
  /** The client's Idempotency-Key header, if it sent one. */
  idempotencyKey: string | null;
  /** Hash of everything the request asked for, to recognise a replay of the key. */
  requestFingerprint: string | null;
  memo?: Record<string, unknown>;
}

export interface StartedJob {
  row: JobRow;
  /** True when an Idempotency-Key replay returned the job made by an earlier request. */
  replayed: boolean;
}

export type StartJob = <Input>(request: StartJobRequest<Input>) => Promise<StartedJob>;

export interface JobStarterDependencies {
  db: Db;
  temporal: Client;
  taskQueue: string;
  logger: Logger;
  /** Most jobs one owner may have in flight; more are refused with 429. */
  maxJobsInFlight: number;
}

/** Hash of what a request asked for, to tell a replay of an Idempotency-Key from a new request. */
export function requestFingerprint(request: unknown): string {
  return createHash('sha256').update(JSON.stringify(request)).digest('hex');
}

/** Seconds a client refused for having too many jobs in flight is told to wait. */
const inFlightRetryAfterSeconds = 15;

/**
 * Refuses with 429 TOO_MANY_JOBS_IN_FLIGHT an owner who has `maxJobsInFlight` jobs in flight.
 * Exact under the owner's lock (job start); without it, an early check that spares the API an
 * upload it would refuse anyway.
 */
export async function refuseOwnerAtJobCap(
  db: Db,
  ownerId: string,
  maxJobsInFlight: number,
): Promise<void> {
  const inFlight = await countJobsInFlight(db, ownerId);
  if (inFlight >= maxJobsInFlight) {
    throw new ApiError(
      'TOO_MANY_JOBS_IN_FLIGHT',
      `You have ${inFlight} jobs in flight, the most allowed (${maxJobsInFlight}); wait for some to finish`,
      { inFlight, limit: maxJobsInFlight },
      { 'retry-after': String(inFlightRetryAfterSeconds) },
    );
  }
}

/**
 * What the client is told when a job could not be accepted: a refusal as it is, a database
 * that cannot be reached as a 503 to retry, anything else (a query or a workflow start the
 * servers reject) as a 500 whose cause only the log shows.
 */
function startFailure(error: unknown, log: Logger): ApiError {
  if (error instanceof ApiError) return error;
  if (isDatabaseUnavailable(error)) {
    log.error({ err: error }, 'could not record the job');
    return new ApiError(
      'DATABASE_UNAVAILABLE',
      'The job could not be recorded: the database is unavailable',
    );
  }
  log.error({ err: error }, 'could not accept the job');
  return new ApiError('INTERNAL_ERROR', 'Internal server error');
}

/**
 * Accepts a job: starts its workflow first, then writes its row. A row therefore never exists
 * without a workflow; if the row write fails the workflow is terminated, and if the API dies
 * in between, the workflow's first activity writes the row itself.
 *
 * Both happen under a per-owner lock in one transaction: the in-flight cap is exact, and
 * requests with one Idempotency-Key (whose job id is derived from the owner and the key) queue
 * behind each other, so the first starts the job and the others return it.
 */
export function createJobStarter({
  db,
  temporal,
  taskQueue,
  logger,
  maxJobsInFlight,
}: JobStarterDependencies): StartJob {
  async function replay(
    tx: Db,
    ownerId: string,
    job: { id: string; idempotencyKey: string },
    fingerprint: string | null,
  ): Promise<StartedJob | null> {
    const row = await findOwnedJob(tx, ownerId, job.id);
    // A key names one job per owner whatever its kind, so the key may be taken by a job of
    // another kind (another id): that is another request too.
    const takenByAnotherJob =
      !row && (await findJobIdByIdempotencyKey(tx, ownerId, job.idempotencyKey)) !== undefined;
    if (!row && !takenByAnotherJob) return null;
    if (!row || row.request_fingerprint !== fingerprint) {
      throw new ApiError(
        'IDEMPOTENCY_KEY_REUSED',
        'Idempotency-Key was already used for a different request; use a new key for a new request',
      );
    }
    return { row, replayed: true };
  }

  return async (request) => {
    const { ownerId, idempotencyKey } = request;
    const { kind } = request.kind;
    const job: JobRecord<(typeof request)['input']> = {
      id: idempotencyKey ? idempotentJobId(kind, ownerId, idempotencyKey) : newJobId(kind),
      kind,
      type: request.type,
      ownerId,
      input: request.input,
      idempotencyKey,
      requestFingerprint: request.requestFingerprint,
      createdAt: new Date().toISOString(),
    };
    const log = logger.child({ jobId: job.id });
    let handle: WorkflowHandleWithFirstExecutionRunId | undefined;
    try {
      return await db.transaction().execute(async (tx) => {
        await lockOwner(tx, ownerId);
        if (idempotencyKey) {
          const earlier = await replay(
            tx,
            ownerId,
            { id: job.id, idempotencyKey },
            request.requestFingerprint,
          );
          if (earlier) return earlier;
        }
        await refuseOwnerAtJobCap(tx, ownerId, maxJobsInFlight);
        handle = await startWorkflow(request, job, log);
        await insertJob(tx, job, 'pending');
        const row = await findOwnedJob(tx, job.ownerId, job.id);
        if (!row) throw new Error('job row missing right after insert');
        log.info(
          { kind: job.kind, type: job.type, runId: handle.firstExecutionRunId },
          'job accepted',
        );
        return { row, replayed: false };
      });
    } catch (error) {
      if (handle) {
        await handle
          .terminate('the API could not record the job')
          .catch((terminateError: unknown) => {
            log.error(
              { err: terminateError },
              'could not terminate the workflow; it will record the job itself',
            );
          });
      }
      throw startFailure(error, log);
    }
  };

  async function startWorkflow<Input>(
    request: StartJobRequest<Input>,
    job: JobRecord<Input>,
    log: Logger,
  ) {
    try {
      return await temporal.workflow.start(request.kind.workflowType, {
        taskQueue,
        workflowId: job.id,
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        args: request.workflowArgs(job) as never,
        typedSearchAttributes: [
          { key: JobKindKey, value: job.kind },
          { key: JobTypeKey, value: job.type },
          { key: JobStatusKey, value: 'pending' },
          { key: UserIdKey, value: job.ownerId },
          { key: JobAttemptKey, value: 1 },
        ],
        staticSummary: request.kind.summary({ type: job.type, input: job.input }),
        ...(request.memo ? { memo: request.memo } : {}),
      });
    } catch (error) {
      if (error instanceof WorkflowExecutionAlreadyStartedError) {
        // The workflow exists but its row does not: an earlier request with this key started
        // it and its API died before the row was written; the workflow writes it shortly.
        throw new ApiError(
          'IDEMPOTENCY_KEY_IN_USE',
          'A request with this Idempotency-Key is still being processed; repeat it in a moment',
          undefined,
          { 'retry-after': '1' },
        );
      }
      if (!isTemporalUnavailable(error)) throw error;
      log.error({ err: error }, 'could not start the job workflow');
      throw new ApiError(
        'TEMPORAL_UNAVAILABLE',
        'The job could not be started: Temporal is unavailable',
      );
    }
  }
}
