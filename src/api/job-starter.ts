import type { Client } from '@temporalio/client';
import type { Db } from '../db/database.js';
import type { JobRow } from '../db/schema.js';
import { newJobId } from '../jobs/ids.js';
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
  ownerId: string;
  input: Input;
  /** Shown in the Web UI's list and header so operators can tell jobs apart. */
  summary: string;
}

export type StartJob = <Input>(request: StartJobRequest<Input>) => Promise<JobRow>;

export interface JobStarterDependencies {
  db: Db;
  temporal: Client;
  taskQueue: string;
  logger: Logger;
}

/**
 * Accepts a job: starts its workflow first, then writes its row. A row therefore never exists
 * without a workflow; if the row write fails the workflow is terminated, and if the API dies
 * in between, the workflow's first activity writes the row itself.
 */
export function createJobStarter({
  db,
  temporal,
  taskQueue,
  logger,
}: JobStarterDependencies): StartJob {
  return async (request) => {
    const job: JobRecord = {
      id: newJobId(request.kind),
      kind: request.kind,
      type: request.type,
      ownerId: request.ownerId,
      input: request.input,
      idempotencyKey: null,
      createdAt: new Date().toISOString(),
    };
    const log = logger.child({ jobId: job.id });
    let handle;
    try {
      handle = await temporal.workflow.start(request.workflowType, {
        taskQueue,
        workflowId: job.id,
        args: [{ job }],
        typedSearchAttributes: [
          { key: JobKindKey, value: job.kind },
          { key: JobStatusKey, value: 'pending' },
          { key: UserIdKey, value: job.ownerId },
          { key: JobAttemptKey, value: 1 },
        ],
        staticSummary: request.summary,
      });
    } catch (error) {
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
      return row;
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
