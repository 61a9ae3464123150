// The vlog's last stage: the delivered video is measured and a thumbnail cut from it.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import { FailureCode } from '../../../jobs/failures.js';
import { vlogThumbnailKey } from '../../../jobs/storage-keys.js';
import {
  extractThumbnail,
  MediaToolInterrupted,
  probeDurationSeconds,
} from '../../../media/tools.js';
import { putStreamUnlessAborted } from '../../../storage/object-storage.js';
import type { VlogActivityDependencies } from './dependencies.js';

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

export function createDescribeActivities({
  mediaStorage,
  mediaTools,
}: Pick<VlogActivityDependencies, 'mediaStorage' | 'mediaTools'>) {
  return {
    /**
     * Measures the delivered video and cuts a thumbnail from it with ffprobe/ffmpeg. Without
     * the tools, or for a file they cannot read, the duration is the one Veo was asked for
     * and there is no thumbnail: a missing thumbnail never fails a finished vlog. A tool
     * stopped from outside says nothing about the file: the step is retried.
     */
    async describeVideo(input: DescribeVideoInput): Promise<VideoDescription> {
      const fallback: VideoDescription = {
        durationSeconds: input.requestedDurationSeconds,
        thumbnailKey: null,
        durationSource: 'provider',
      };
      const tools = mediaTools;
      if (!tools) return fallback;
      const context = Context.current();
      const dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-describe-'));
      try {
        const video = path.join(dir, 'video');
        await pipeline(await mediaStorage.getStream(input.videoKey), createWriteStream(video), {
          signal: context.cancellationSignal,
        });
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
        await putStreamUnlessAborted(
          mediaStorage,
          thumbnailKey,
          createReadStream(thumbnail),
          'image/jpeg',
          context.cancellationSignal,
        );
        return {
          durationSeconds: Math.round(durationSeconds * 100) / 100,
          thumbnailKey,
          durationSource: 'ffprobe',
        };
      } catch (error) {
        if (context.cancellationSignal.aborted) throw error;
        if (error instanceof MediaToolInterrupted)
          throw ApplicationFailure.retryable(
            error.message,
            FailureCode.MEDIA_PROCESSING_INTERRUPTED,
          );
        log.warn('could not measure the video; using the provider metadata', {
          jobId: input.jobId,
          error: String(error),
        });
        return fallback;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
