// The vlog's delivery stage: the generated video moves to its delivery key in media storage.
import { addAbortSignal } from 'node:stream';
import { ApplicationFailure, CancelledFailure, Context, log } from '@temporalio/activity';
import { reportHeartbeat } from '../../../activities/heartbeat.js';
import { FailureCode } from '../../../jobs/failures.js';
import { GcsObjectStorage, parseGcsUri } from '../../../storage/gcs-storage.js';
import {
  parseMediaUri,
  type ObjectStorage,
  type UploadedPart,
} from '../../../storage/object-storage.js';
import type { VlogActivityDependencies } from './dependencies.js';

/** R2 and S3 need parts of at least 5 MiB (all but the last); 8 MiB keeps memory small. */
export const transferPartBytes = 8 * 1024 * 1024;

export interface TransferVideoInput {
  jobId: string;
  sourceUri: string;
  destinationKey: string;
  mimeType: string;
}

/** Heartbeat details of a transfer: enough to resume from the last completed part. */
export interface TransferCheckpoint {
  uploadId: string;
  parts: UploadedPart[];
  bytes: number;
  totalBytes: number;
}

export interface TransferResult {
  bytes: number;
  parts: number;
  /** Parts already in place from an earlier attempt, not sent again. */
  resumedParts: number;
}

export function createTransferActivities({
  mediaStorage,
  providers,
  gcsApiEndpoint,
}: Pick<VlogActivityDependencies, 'mediaStorage' | 'providers' | 'gcsApiEndpoint'>) {
  const buckets = new Map<string, ObjectStorage>();
  /** Where a generated video is read from: media storage (`media:`) or a Cloud Storage bucket. */
  const sourceOf = (uri: string): { storage: ObjectStorage; key: string } => {
    const mediaKey = parseMediaUri(uri);
    if (mediaKey !== null) return { storage: mediaStorage, key: mediaKey };
    const { bucket, key } = parseGcsUri(uri);
    if (providers.generationStorage?.location === `gs://${bucket}`)
      return { storage: providers.generationStorage, key };
    let storage = buckets.get(bucket);
    if (!storage) {
      storage = new GcsObjectStorage(bucket, { apiEndpoint: gcsApiEndpoint });
      buckets.set(bucket, storage);
    }
    return { storage, key };
  };

  return {
    /**
     * Moves the generated video (Veo's, from Cloud Storage, or a local render, from media
     * storage) to its delivery key as a multipart upload, one part in memory at a time. Each
     * completed part is heartbeated; a retry continues the same upload from the parts the store
     * already holds, and the key is fixed per vlog, so a retry overwrites rather than
     * duplicates. Once the delivered copy has the source's size the source is deleted, so each
     * video is stored once; a retry that finds only the delivered copy succeeds without work,
     * and so does one whose checkpoint's upload was joined, the delivered copy whole, before the
     * source went (the upload id is this transfer's own: an earlier attempt of the vlog left a
     * copy of its own video, which a new transfer writes over).
     * A cancelled transfer aborts its upload, unless it was cancelled only to run again (its
     * worker shut down past its grace time, its attempt timed out): the retry goes on from its
     * parts.
     */
    async transferVideo(input: TransferVideoInput): Promise<TransferResult> {
      const context = Context.current();
      const source = sourceOf(input.sourceUri);
      const from = source.storage;
      const head = await from.head(source.key);
      if (!head) {
        // The source goes only once its delivered copy was verified: an earlier attempt whose
        // result was lost (a crashed worker) already moved it, and this one has nothing to do.
        const delivered = await mediaStorage.head(input.destinationKey);
        if (delivered) {
          log.info('transfer already complete', { jobId: input.jobId, bytes: delivered.size });
          const parts = Math.max(1, Math.ceil(delivered.size / transferPartBytes));
          return { bytes: delivered.size, parts, resumedParts: parts };
        }
        throw ApplicationFailure.nonRetryable(
          `The generated video ${input.sourceUri} does not exist`,
          FailureCode.TRANSFER_FAILED,
        );
      }
      const totalBytes = head.size;
      const partCount = Math.max(1, Math.ceil(totalBytes / transferPartBytes));
      const checkpoint = context.info.heartbeatDetails as TransferCheckpoint | undefined;
      const open = await mediaStorage.listMultipartUploads(input.destinationKey);
      // The upload an earlier attempt of this transfer made is no longer open: it was joined
      // (a cancel that aborts one ends the transfer for good). If the delivered copy is whole,
      // that attempt was lost after the join and before the generated video went: finish it.
      if (
        checkpoint?.totalBytes === totalBytes &&
        !open.some((upload) => upload.uploadId === checkpoint.uploadId) &&
        (await mediaStorage.head(input.destinationKey))?.size === totalBytes
      ) {
        await from.delete(source.key);
        log.info('transfer already joined', { jobId: input.jobId, bytes: totalBytes, partCount });
        return { bytes: totalBytes, parts: partCount, resumedParts: partCount };
      }
      const resumable =
        open.find(
          (upload) =>
            upload.key === input.destinationKey && upload.uploadId === checkpoint?.uploadId,
        ) ?? open.find((upload) => upload.key === input.destinationKey);
      const uploadId =
        resumable?.uploadId ??
        (await mediaStorage.createMultipartUpload(input.destinationKey, input.mimeType));
      for (const stale of open) {
        if (stale.uploadId !== uploadId)
          await mediaStorage.abortMultipartUpload(stale.key, stale.uploadId);
      }
      // The store, not the checkpoint, says which parts arrived: a heartbeat may not have.
      const stored = resumable ? await mediaStorage.listParts(input.destinationKey, uploadId) : [];
      const parts = new Map(
        stored
          .filter(
            (part) =>
              part.partNumber <= partCount && part.size === partLength(part.partNumber, totalBytes),
          )
          .map((part) => [part.partNumber, part]),
      );
      const resumedParts = parts.size;
      if (resumedParts > 0)
        log.info('resuming transfer', { jobId: input.jobId, uploadId, resumedParts, partCount });

      try {
        for (let partNumber = 1; partNumber <= partCount; partNumber += 1) {
          if (parts.has(partNumber)) continue;
          const start = (partNumber - 1) * transferPartBytes;
          const end = start + partLength(partNumber, totalBytes) - 1;
          const body = await readRange(from, source.key, start, end, context.cancellationSignal);
          parts.set(
            partNumber,
            await mediaStorage.uploadPart(
              input.destinationKey,
              uploadId,
              partNumber,
              body,
              context.cancellationSignal,
            ),
          );
          const done = [...parts.values()];
          reportHeartbeat({
            uploadId,
            parts: done,
            bytes: done.reduce((sum, part) => sum + part.size, 0),
            totalBytes,
          } satisfies TransferCheckpoint);
          if (context.cancellationSignal.aborted) throw new CancelledFailure('transfer cancelled');
        }
        await mediaStorage.completeMultipartUpload(input.destinationKey, uploadId, [
          ...parts.values(),
        ]);
        // A cancel that came while the parts were joined must not leave the joined video.
        context.cancellationSignal.throwIfAborted();
      } catch (error) {
        if (
          (error instanceof CancelledFailure || context.cancellationSignal.aborted) &&
          !cancelledForARetry(context)
        ) {
          await mediaStorage
            .abortMultipartUpload(input.destinationKey, uploadId)
            .catch(() => undefined);
          await mediaStorage.delete(input.destinationKey).catch(() => undefined);
        }
        throw error;
      }
      // One copy of each video: the generated one goes once the delivered one is in place whole.
      const delivered = await mediaStorage.head(input.destinationKey);
      if (delivered?.size !== totalBytes) {
        throw ApplicationFailure.retryable(
          `The delivered video ${input.destinationKey} has ${delivered?.size ?? 'no'} bytes, not ${totalBytes}`,
          FailureCode.TRANSFER_FAILED,
        );
      }
      await from.delete(source.key);
      log.info('transfer complete', {
        jobId: input.jobId,
        bytes: totalBytes,
        parts: partCount,
        resumedParts,
      });
      return { bytes: totalBytes, parts: partCount, resumedParts };
    },
  };
}

/**
 * Whether the activity was cancelled only to run again: its worker shutting down past its grace
 * time (a deploy), its attempt timed out (another may already be resuming its upload), or an
 * operator's pause or reset. Its parts stay for that retry; any other cancel (the vlog's, or
 * its workflow gone) aborts the upload.
 */
function cancelledForARetry(context: Context): boolean {
  const details = context.cancellationDetails;
  return Boolean(details?.workerShutdown || details?.timedOut || details?.paused || details?.reset);
}

function partLength(partNumber: number, totalBytes: number): number {
  return Math.max(
    0,
    Math.min(transferPartBytes, totalBytes - (partNumber - 1) * transferPartBytes),
  );
}

async function readRange(
  storage: ObjectStorage,
  key: string,
  start: number,
  end: number,
  signal: AbortSignal,
): Promise<Buffer> {
  if (end < start) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  const stream = addAbortSignal(signal, await storage.getStream(key, { start, end }));
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
