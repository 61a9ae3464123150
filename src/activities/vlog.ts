import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { ApplicationFailure, CancelledFailure, Context, log } from '@temporalio/activity';
import type { Db } from '../db/database.js';
import { findProviderOperation, recordProviderOperation } from '../db/provider-operations.js';
import { FailureCode } from '../jobs/failures.js';
import type { GeneratedVideo, MediaRef, VlogAnalysis } from '../jobs/messages.js';
import { vlogOutputPrefix, vlogThumbnailKey } from '../jobs/storage-keys.js';
import { extractThumbnail, probeDurationSeconds, type MediaTools } from '../media/tools.js';
import type { Providers } from '../providers/index.js';
import { vlogAnalysisSchema, type AnalysisBrief } from '../providers/types.js';
import { GcsObjectStorage, parseGcsUri } from '../storage/gcs-storage.js';
import {
  parseMediaUri,
  type MediaStorage,
  type ObjectStorage,
  type UploadedPart,
} from '../storage/object-storage.js';
import { whileHeartbeating } from './heartbeat.js';
import {
  askUntilValid,
  readJsonAnswer,
  required,
  toFailure,
  type Reading,
} from './provider-calls.js';

/** R2 and S3 need parts of at least 5 MiB (all but the last); 8 MiB keeps memory small. */
export const transferPartBytes = 8 * 1024 * 1024;

export interface VlogActivityDependencies {
  db: Db;
  mediaStorage: MediaStorage;
  providers: Providers;
  /** ffmpeg and ffprobe, for the thumbnail and the measured duration; null: provider metadata only. */
  mediaTools: MediaTools | null;
  gcsApiEndpoint?: string | undefined;
}

export interface AnalyzeMediaInput {
  jobId: string;
  media: MediaRef[];
  brief: AnalysisBrief;
}

export interface StartVideoGenerationInput {
  jobId: string;
  attempt: number;
  prompt: string;
  aspectRatio: '16:9' | '9:16';
  durationSeconds: number;
  /** What a generator that composes the uploads itself (local) renders from. */
  title: string;
  media: MediaRef[];
  analysis: VlogAnalysis | null;
}

export interface StartedGeneration {
  operationName: string;
  outputUri: string;
}

export type GenerationCheck = { done: false } | { done: true; video: GeneratedVideo };

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

export interface DescribeVideoInput {
  jobId: string;
  videoKey: string;
  /** What the provider was asked to render, used when the video cannot be measured. */
  requestedDurationSeconds: number;
}

export interface VideoDescription {
  durationSeconds: number;
  thumbnailKey: string | null;
  /** `ffprobe` when measured, `provider` when taken from the request. */
  durationSource: 'ffprobe' | 'provider';
}

export interface CleanupVlogInput {
  jobId: string;
}

/** A model's answer as a valid analysis of this many media, or why it is unusable. */
function readAnalysis(json: unknown, mediaCount: number): Reading<VlogAnalysis> {
  const parsed = vlogAnalysisSchema.safeParse(json);
  if (!parsed.success) {
    return {
      problem: parsed.error.issues
        .map((issue) => `${issue.path.join('.')}: ${issue.message}`)
        .join('; '),
    };
  }
  const indexes = [
    ...parsed.data.scenes.map((scene) => ({ what: 'a scene', index: scene.mediaIndex })),
    ...(parsed.data.plan?.items ?? []).map((item) => ({
      what: 'a plan item',
      index: item.mediaIndex,
    })),
    ...(parsed.data.media ?? []).map((facts) => ({ what: 'media facts', index: facts.mediaIndex })),
  ];
  const outOfRange = indexes.find(({ index }) => index >= mediaCount);
  return outOfRange
    ? {
        problem: `${outOfRange.what} refers to media ${outOfRange.index}, but there are ${mediaCount}`,
      }
    : { value: parsed.data };
}

/** The idempotency key of a paid generation: one per vlog and attempt, never random. */
export function generationKey(jobId: string, attempt: number): string {
  return `${jobId}:video-generation:${attempt}`;
}

export function createVlogActivities(deps: VlogActivityDependencies) {
  const { db, mediaStorage, providers } = deps;
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
      storage = new GcsObjectStorage(bucket, { apiEndpoint: deps.gcsApiEndpoint });
      buckets.set(bucket, storage);
    }
    return { storage, key };
  };

  return {
    /** Gemini looks at the media; its JSON is validated, and the model is asked again if it is off. */
    async analyzeMedia(input: AnalyzeMediaInput): Promise<VlogAnalysis> {
      const analyzer = required(providers.analyzer, 'Media analysis');
      const context = Context.current();
      return whileHeartbeating((beat) =>
        askUntilValid({
          jobId: input.jobId,
          what: 'media analysis',
          ask: (round) =>
            analyzer.analyze({
              jobId: input.jobId,
              media: input.media,
              brief: input.brief,
              openMedia: (ref) => mediaStorage.getStream(ref.key),
              progress: (detail) => beat({ detail, round }),
              signal: context.cancellationSignal,
            }),
          read: (text) => readJsonAnswer(text, (json) => readAnalysis(json, input.media.length)),
        }),
      );
    },

    /**
     * Submits the paid generation at most once per vlog attempt. The operation name is written
     * to the database the moment the provider accepts it (and heartbeated), so a retried
     * activity or a crashed worker re-attaches to it instead of submitting again.
     *
     * A local generator renders inside this call, heartbeating ffmpeg's progress (so a cancel
     * lands and stops ffmpeg); its operation is recorded only once the video is stored, so a
     * retry after a lost worker renders again from scratch.
     */
    async startVideoGeneration(input: StartVideoGenerationInput): Promise<StartedGeneration> {
      const generator = required(providers.videoGenerator, 'Video generation');
      const outputBase = required(providers.generationOutputUri, 'VEO_OUTPUT_GCS_URI');
      const outputUri = `${outputBase}${input.jobId}/attempt-${input.attempt}/`;
      const key = generationKey(input.jobId, input.attempt);
      const context = Context.current();

      const recorded =
        (context.info.heartbeatDetails as { operationName?: string } | undefined)?.operationName ??
        (await findProviderOperation(db, key));
      if (recorded) {
        log.info('re-attaching to the submitted generation', {
          jobId: input.jobId,
          operationName: recorded,
        });
        await recordOperation(db, key, input.jobId, recorded, context);
        return { operationName: recorded, outputUri };
      }

      let operationName: string;
      try {
        operationName = await whileHeartbeating((beat) =>
          generator.start(
            {
              prompt: input.prompt,
              aspectRatio: input.aspectRatio,
              durationSeconds: input.durationSeconds,
              outputUri,
              title: input.title,
              media: input.media,
              analysis: input.analysis,
            },
            {
              signal: context.cancellationSignal,
              openMedia: (ref) => mediaStorage.getStream(ref.key),
              progress: (progress) => beat({ render: progress }),
            },
          ),
        );
      } catch (error) {
        throw toFailure(error, context);
      }
      context.heartbeat({ operationName });
      await recordOperation(db, key, input.jobId, operationName, context);
      log.info('video generation submitted', {
        jobId: input.jobId,
        operationName,
        provider: generator.name,
      });
      return { operationName, outputUri };
    },

    /** One look at the generation; the workflow waits between looks on a durable timer. */
    async checkVideoGeneration(input: {
      jobId: string;
      operationName: string;
    }): Promise<GenerationCheck> {
      const generator = required(providers.videoGenerator, 'Video generation');
      let status;
      try {
        status = await generator.check(input.operationName);
      } catch (error) {
        throw toFailure(error, Context.current());
      }
      switch (status.state) {
        case 'running':
          return { done: false };
        case 'succeeded':
          return { done: true, video: { sourceUri: status.videoUri, mimeType: status.mimeType } };
        case 'filtered':
          throw ApplicationFailure.nonRetryable(
            `The generated video was removed by the provider's safety filters: ${status.reasons.join('; ')}`,
            FailureCode.CONTENT_FILTERED,
          );
        case 'failed':
          throw ApplicationFailure.nonRetryable(
            `The video generation failed: ${status.message}`,
            FailureCode.GENERATION_FAILED,
          );
      }
    },

    /**
     * Moves the generated video (Veo's, from Cloud Storage, or a local render, from media
     * storage) to its delivery key as a multipart upload, one part in memory at a time. Each
     * completed part is heartbeated; a retry continues the same upload from the parts the store
     * already holds, and the key is fixed per vlog, so a retry overwrites rather than
     * duplicates. Once the delivered copy has the source's size the source is deleted, so each
     * video is stored once; a retry that finds only the delivered copy succeeds without work.
     * A cancelled transfer aborts its upload.
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
      const checkpoint = context.info.heartbeatDetails as TransferCheckpoint | undefined;
      const open = await mediaStorage.listMultipartUploads(input.destinationKey);
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
      const partCount = Math.max(1, Math.ceil(totalBytes / transferPartBytes));
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
          const body = await readRange(from, source.key, start, end);
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
          context.heartbeat({
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
      } catch (error) {
        if (error instanceof CancelledFailure || context.cancellationSignal.aborted) {
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

    /**
     * Measures the delivered video and cuts a thumbnail from it with ffprobe/ffmpeg. Without
     * the tools, or for a file they cannot read, the duration is the one Veo was asked for
     * and there is no thumbnail: a missing thumbnail never fails a finished vlog.
     */
    async describeVideo(input: DescribeVideoInput): Promise<VideoDescription> {
      const fallback: VideoDescription = {
        durationSeconds: input.requestedDurationSeconds,
        thumbnailKey: null,
        durationSource: 'provider',
      };
      const tools = deps.mediaTools;
      if (!tools) return fallback;
      const context = Context.current();
      // Heartbeats while it downloads and measures: a lost worker is noticed in seconds.
      return whileHeartbeating(async () => {
        const dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-describe-'));
        try {
          const video = path.join(dir, 'video');
          await pipeline(await mediaStorage.getStream(input.videoKey), createWriteStream(video));
          const durationSeconds = await probeDurationSeconds(
            tools,
            video,
            context.cancellationSignal,
          );
          const thumbnail = path.join(dir, 'thumbnail.jpg');
          await extractThumbnail(
            tools,
            video,
            thumbnail,
            Math.min(1, durationSeconds / 2),
            context.cancellationSignal,
          );
          const thumbnailKey = vlogThumbnailKey(input.jobId);
          await mediaStorage.putStream(thumbnailKey, createReadStream(thumbnail), 'image/jpeg');
          return {
            durationSeconds: Math.round(durationSeconds * 100) / 100,
            thumbnailKey,
            durationSource: 'ffprobe',
          };
        } catch (error) {
          if (context.cancellationSignal.aborted) throw error;
          log.warn('could not measure the video; using the provider metadata', {
            jobId: input.jobId,
            error: String(error),
          });
          return fallback;
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      });
    },

    /** Removes what a cancelled vlog left half-made: open uploads, partial videos, generated outputs. */
    async cleanupVlog(
      input: CleanupVlogInput,
    ): Promise<{ abortedUploads: number; deletedObjects: number }> {
      return whileHeartbeating(async () => {
        const removed = await deleteVlogOutputs(deps, input.jobId);
        log.info('vlog cleaned up', { jobId: input.jobId, ...removed });
        return removed;
      });
    },
  };
}

/**
 * Deletes every output of a vlog: its delivered video and thumbnail, multipart uploads still
 * open under them, and what the generator wrote (Cloud Storage or local renders). Idempotent.
 */
export async function deleteVlogOutputs(
  { mediaStorage, providers }: Pick<VlogActivityDependencies, 'mediaStorage' | 'providers'>,
  jobId: string,
): Promise<{ abortedUploads: number; deletedObjects: number }> {
  const prefix = vlogOutputPrefix(jobId);
  const uploads = await mediaStorage.listMultipartUploads(prefix);
  for (const upload of uploads)
    await mediaStorage.abortMultipartUpload(upload.key, upload.uploadId);
  let deletedObjects = await mediaStorage.deletePrefix(prefix);
  if (providers.generationStorage && providers.generationOutputUri) {
    const uri = providers.generationOutputUri;
    const generated = parseMediaUri(uri) ?? parseGcsUri(uri).key;
    deletedObjects += await providers.generationStorage.deletePrefix(`${generated}${jobId}/`);
  }
  return { abortedUploads: uploads.length, deletedObjects };
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
): Promise<Buffer> {
  if (end < start) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  for await (const chunk of await storage.getStream(key, { start, end }))
    chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function recordOperation(
  db: Db,
  key: string,
  jobId: string,
  operationName: string,
  context: Context,
) {
  // The provider already took the request: keep trying to write it down rather than fail and
  // let a retry pay for a second generation.
  for (let attempt = 1; ; attempt += 1) {
    try {
      await recordProviderOperation(db, { idempotencyKey: key, jobId, operationName });
      return;
    } catch (error) {
      log.warn('could not record the generation yet', {
        jobId,
        operationName,
        attempt,
        error: String(error),
      });
      context.heartbeat({ operationName });
      await delay(Math.min(30_000, 500 * 2 ** attempt), undefined, {
        signal: context.cancellationSignal,
      });
    }
  }
}
