// What a vlog leaves behind: removed when it is cancelled, and by the media sweep once expired.
import { Context, log } from '@temporalio/activity';
import { leaveProviderLines } from '../../../db/provider-quota.js';
import { vlogOutputPrefix } from '../../../jobs/storage-keys.js';
import { parseGcsUri } from '../../../storage/gcs-storage.js';
import { parseMediaUri } from '../../../storage/object-storage.js';
import type { VlogActivityDependencies } from './dependencies.js';

export interface CleanupVlogInput {
  jobId: string;
}

export function createCleanupActivities(
  deps: Pick<VlogActivityDependencies, 'db' | 'mediaStorage' | 'providers'>,
) {
  return {
    /**
     * Removes what a cancelled vlog left half-made: its place in line for Veo, open uploads,
     * partial videos, generated outputs.
     */
    async cleanupVlog(
      input: CleanupVlogInput,
    ): Promise<{ abortedUploads: number; deletedObjects: number }> {
      const { cancellationSignal } = Context.current();
      // First, so that a storage slow to delete (retried for minutes when it is out) does not
      // keep the vlogs behind it waiting: woken as a lease frees, it would never take the lease.
      await leaveProviderLines(deps.db, input.jobId);
      const removed = await deleteVlogOutputs(deps, input.jobId, cancellationSignal);
      log.info('vlog cleaned up', { jobId: input.jobId, ...removed });
      return removed;
    },
  };
}

/**
 * Deletes every output of a vlog: its delivered video and thumbnail, multipart uploads still
 * open under them, and what the generator wrote (Cloud Storage or local renders). Idempotent,
 * so an abort (the worker shutting down) stops it between two storage calls and a retry
 * finishes it.
 */
export async function deleteVlogOutputs(
  { mediaStorage, providers }: Pick<VlogActivityDependencies, 'mediaStorage' | 'providers'>,
  jobId: string,
  signal: AbortSignal,
): Promise<{ abortedUploads: number; deletedObjects: number }> {
  const prefix = vlogOutputPrefix(jobId);
  const uploads = await mediaStorage.listMultipartUploads(prefix);
  for (const upload of uploads) {
    signal.throwIfAborted();
    await mediaStorage.abortMultipartUpload(upload.key, upload.uploadId);
  }
  signal.throwIfAborted();
  let deletedObjects = await mediaStorage.deletePrefix(prefix);
  signal.throwIfAborted();
  if (providers.generationStorage && providers.generationOutputUri) {
    const uri = providers.generationOutputUri;
    const generated = parseMediaUri(uri) ?? parseGcsUri(uri).key;
    deletedObjects += await providers.generationStorage.deletePrefix(`${generated}${jobId}/`);
  }
  return { abortedUploads: uploads.length, deletedObjects };
}
