// The media lifecycle's deleting half: a vlog's uploads and outputs go once it has been over
// for MEDIA_RETENTION_MS (and, if it failed, can no longer be retried), and the uploads of
// requests that never became a job (their API died mid-request) once they are
// UPLOAD_ORPHAN_AGE_MS old. Run in batches by the `sweepExpiredMedia` workflow, which a
// Temporal Schedule starts.
import { Context, log } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Db } from '../db/database.js';
import type {
  DeleteExpiredMediaInput,
  DeleteExpiredMediaResult,
  DeleteOrphanUploadsInput,
  DeleteOrphanUploadsResult,
} from '../jobs/contracts.js';
import type { VlogInput } from '../kinds/vlog/declaration.js';
import { uploadFolder } from '../kinds/vlog/upload-rules.js';
import { findJobsWithExpiredMedia, markMediaDeleted } from '../db/media-retention.js';
import {
  findStaleUploadBatches,
  forgetUploadBatch,
  type StaleUploadBatch,
} from '../db/upload-batches.js';
import type { Providers } from '../providers/index.js';
import type { MediaStorage } from '../storage/object-storage.js';
import { deleteVlogOutputs } from '../kinds/vlog/activities/cleanup.js';
import { reportHeartbeat } from './heartbeat.js';

export interface MediaRetentionDependencies {
  db: Db;
  mediaStorage: MediaStorage;
  providers: Providers;
  /** Asked whether the job an upload was about to start has a workflow. */
  temporalClient?: Client | undefined;
}

/** Whether a job's input names files of the upload folder (a vlog's media). */
function usesFolder(jobInput: unknown, folder: string): boolean {
  const media = (jobInput as Partial<VlogInput> | null)?.media;
  return Array.isArray(media) && media.some(({ key }) => key.startsWith(folder));
}

/** Whether the job's workflow is running: its first activity is yet to write its row. */
async function workflowRunning(client: Client, jobId: string): Promise<boolean> {
  try {
    const { status } = await client.workflow.getHandle(jobId).describe();
    return status.name === 'RUNNING';
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return false;
    throw error;
  }
}

export function createMediaRetentionActivities(deps: MediaRetentionDependencies) {
  const { db, mediaStorage } = deps;
  return {
    /**
     * Deletes the media of up to `limit` vlogs whose retention has passed and marks each
     * `media_deleted_at`, one job at a time: a retry after a crash finds the jobs not yet
     * marked and deletes again what may already be gone, which changes nothing.
     */
    async deleteExpiredMedia(input: DeleteExpiredMediaInput): Promise<DeleteExpiredMediaResult> {
      const { cancellationSignal: signal } = Context.current();
      const jobs = await findJobsWithExpiredMedia(db, { kind: 'vlog', ...input });
      let deletedObjects = 0;
      // An abort stops it between two storage calls; the jobs not yet marked are found again.
      for (const job of jobs) {
        for (const { key } of (job.input as VlogInput).media) {
          signal.throwIfAborted();
          if (await mediaStorage.head(key)) deletedObjects += 1;
          await mediaStorage.delete(key);
        }
        deletedObjects += (await deleteVlogOutputs(deps, job.id, signal)).deletedObjects;
        await markMediaDeleted(db, job.id);
        reportHeartbeat({ jobId: job.id });
      }
      if (jobs.length > 0) log.info('expired media deleted', { jobs: jobs.length, deletedObjects });
      return { jobIds: jobs.map((job) => job.id), deletedObjects };
    },

    /**
     * Deletes the upload folders that no job uses and none can any more: the upload never got
     * as far as starting a job, or the job it was about to start has no workflow running and no
     * row (the API died before the start, or terminated the workflow when it could not record
     * the job), or its job replayed another request's (an Idempotency-Key sent again). A folder
     * a job's row uses is forgotten and kept (the job's own retention deletes it); one whose
     * job's workflow runs without a row yet is left to the next run.
     */
    async deleteOrphanUploads(input: DeleteOrphanUploadsInput): Promise<DeleteOrphanUploadsResult> {
      const { cancellationSignal: signal } = Context.current();
      const { temporalClient } = deps;
      if (!temporalClient) throw new Error('The upload sweep needs a Temporal client');
      const batches = await findStaleUploadBatches(db, input);
      let deletedBatches = 0;
      const orphaned = async ({ batchId, jobId, jobInput }: StaleUploadBatch) => {
        if (jobId === null) return true;
        if (jobInput !== null) return !usesFolder(jobInput, uploadFolder(batchId));
        return !(await workflowRunning(temporalClient, jobId));
      };
      for (const batch of batches) {
        signal.throwIfAborted();
        if (await orphaned(batch)) {
          await mediaStorage.deletePrefix(uploadFolder(batch.batchId));
          deletedBatches += 1;
          await forgetUploadBatch(db, batch.batchId);
        } else if (batch.jobInput !== null) {
          await forgetUploadBatch(db, batch.batchId);
        }
        reportHeartbeat({ batchId: batch.batchId });
      }
      if (deletedBatches > 0) log.info('orphaned uploads deleted', { deletedBatches });
      return {
        checked: batches.length,
        deletedBatches,
        lastBatchId: batches.at(-1)?.batchId ?? null,
      };
    },
  };
}
