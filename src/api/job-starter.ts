import { setTimeout as delay } from 'node:timers/promises';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import type { Db } from '../db/database.js';
import type { JobRow } from '../db/schema.js';
import { idempotentJobId, newJobId } from '../jobs/ids.js';
import type { JobRecord } from '../jobs/messages.js';
import type { JobKind } from '../jobs/model.js';
import { findOwnedJob, insertJob } from '../jobs/repository.js';
import type { Logger } from '../logger.js';
import {
  JobAttemptKey,
  JobKindKey,
  JobStatusKey,
  UserIdKey,
} from '../temporal/search-attributes.js';
import type * as workflows from '../workflows/index.js';
import { ApiError } from './errors.js';

export interface StartJobRequest<Input> {
  kind: JobKind;
  type: string;
  workflowType: keyof typeof workflows;
  /** The workflow's arguments, built around the accepted job record. */
  workflowArgs: (job: JobRecord<Input>) => unknown[];
  ownerId: string;
  input: Input;
  /** The client's Idempotency-Key header, if it sent one. */
  idempotencyKey: string | null;
  /** Hash of everything the request asked for, to recognise a replay of the key. */
  requestFingerprint: string | null;
  /** Shown in the Web UI's list and header so operators can tell jobs apart. */
  summary: string;
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
}

/** How long a request waits for a concurrent request with the same key to record its job. */
const concurrentStartWaitMs = 5_000;

/**
 * Accepts a job: starts its workflow first, then writes its row. A row therefore never exists
 * without a workflow; if the row write fails the workflow is terminated, and if the API dies
 * in between, the workflow's first activity writes the row itself.
 *
 * With an Idempotency-Key the job id is derived from the owner and the key, so Temporal's
 * workflow id uniqueness makes concurrent requests with one key start exactly one job.
 */
export function createJobStarter({
  db,
  temporal,
  taskQueue,
  logger,
}: JobStarterDependencies): StartJob {
  async function replay(
    ownerId: string,
    jobId: string,
    fingerprint: string | null,
  ): Promise<StartedJob | null> {
    const row = await findOwnedJob(db, ownerId, jobId);
    if (!row) return null;
    if (row.request_fingerprint !== fingerprint) {
      throw new ApiError(
        'IDEMPOTENCY_KEY_REUSED',
        'Idempotency-Key was already used for a different request; use a new key for a new request',
      );
    }
    return { row, replayed: true };
  }

  return async (request) => {
    const { kind, ownerId, idempotencyKey } = request;
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
    if (idempotencyKey) {
      const earlier = await replay(ownerId, job.id, request.requestFingerprint);
      if (earlier) return earlier;
    }

    let handle;
    try {
      handle = await temporal.workflow.start(request.workflowType, {
        taskQueue,
        workflowId: job.id,
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        args: request.workflowArgs(job) as never,
        typedSearchAttributes: [
          { key: JobKindKey, value: job.kind },
          { key: JobStatusKey, value: 'pending' },
          { key: UserIdKey, value: job.ownerId },
          { key: JobAttemptKey, value: 1 },
        ],
        staticSummary: request.summary,
        ...(request.memo ? { memo: request.memo } : {}),
      });
    } catch (error) {
      if (error instanceof WorkflowExecutionAlreadyStartedError && idempotencyKey) {
        // Another request with the same key won the start; its row follows in a moment.
        const deadline = Date.now() + concurrentStartWaitMs;
        while (Date.now() < deadline) {
          const earlier = await replay(ownerId, job.id, request.requestFingerprint);
          if (earlier) return earlier;
          await delay(50);
        }
        throw new ApiError(
          'IDEMPOTENCY_KEY_IN_USE',
          'A request with this Idempotency-Key is still being processed',
        );
      }
      log.error({ err: error }, 'could not start the job workflow');
      throw new ApiError(
        'TEMPORAL_UNAVAILABLE',
        'The job could not be started: Temporal is unavailable',
      );
    }
    try {
      await insertJob(db, job, 'pending');
      const row = await findOwnedJob(db, job.ownerId, job.id);
      if (!row) throw new Error('job row missing right after insert');
      log.info(
        { kind: job.kind, type: job.type, runId: handle.firstExecutionRunId },
        'job accepted',
      );
      return { row, replayed: false };
    } catch (error) {
      log.error({ err: error }, 'could not record the job; terminating its workflow');
      await handle
        .terminate('the API could not record the job')
        .catch((terminateError: unknown) => {
          log.error(
            { err: terminateError },
            'could not terminate the workflow; it will record the job itself',
          );
        });
      throw new ApiError(
        'DATABASE_UNAVAILABLE',
        'The job could not be recorded: the database is unavailable',
      );
    }
  };
}
