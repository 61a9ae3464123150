// The media lifecycle's deleting half: a vlog's uploads and outputs go once it has been over
// for MEDIA_RETENTION_MS (and, if it failed, can no longer be retried). Run in batches by the
// `sweepExpiredMedia` workflow, which a Temporal Schedule starts.
import { Context, log } from '@temporalio/activity';
import type { Db } from '../db/database.js';
import type { DeleteExpiredMediaInput, DeleteExpiredMediaResult } from '../jobs/contracts.js';
import type { VlogInput } from '../kinds/vlog/declaration.js';
import { findJobsWithExpiredMedia, markMediaDeleted } from '../db/media-retention.js';
import type { Providers } from '../providers/index.js';
import type { MediaStorage } from '../storage/object-storage.js';
import { deleteVlogOutputs } from '../kinds/vlog/activities/cleanup.js';
import { reportHeartbeat } from './heartbeat.js';

export interface MediaRetentionDependencies {
  db: Db;
  mediaStorage: MediaStorage;
  providers: Providers;
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
  };
}
