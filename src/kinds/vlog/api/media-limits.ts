/**
 * What an uploaded photo or clip may be, read with ffprobe once the upload is stored, so an
 * oversized file is refused before any job starts instead of failing minutes into its analysis.
 * A worker reads the files (the `inspectUploadedMedia` workflow): the API runs no media tools.
 */
import type { Client } from '@temporalio/client';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../../../config.js';
import type {
  MediaFileInspection,
  MediaInspectionInput,
  MediaInspectionResult,
  MediaRef,
} from '../../../jobs/contracts.js';
import { ApiError } from '../../../api/errors.js';
import type { MediaInspector } from './media-upload.js';
import { overLimit, type UploadLimits } from '../upload-rules.js';
import type { MediaWorkers } from '../../../api/services/media-workers.js';

/** The limits ffprobe checks, once a file is stored. */
export type MediaLimits = Pick<UploadLimits, 'maxVideoSeconds' | 'maxVideoSide' | 'maxImagePixels'>;

export function mediaLimitsOf(config: Config): MediaLimits {
  return {
    maxVideoSeconds: config.VLOG_MAX_VIDEO_SECONDS,
    maxVideoSide: config.VLOG_MAX_VIDEO_SIDE,
    maxImagePixels: config.VLOG_MAX_IMAGE_PIXELS,
  };
}

/**
 * The longest an upload waits for its inspection; the workflow gives a worker 10 s to take it
 * and a minute to finish, so this is reached only when the workflow itself is not run.
 */
const inspectionTimeoutMs = 90_000;

export interface MediaLimitDependencies {
  temporal: Client;
  /** The task queue workflows run on. */
  taskQueue: string;
  /** The workers of the upload inspection queue, where the inspection's activity runs. */
  workers: MediaWorkers;
  limits: MediaLimits;
}

/** Seconds a client waits before sending an upload the busy inspection could not check. */
const inspectionRetryAfterSeconds = 10;

/**
 * Refuses a file over the limits with a 422 naming it. The upload passes with its limits
 * unchecked (and a log line) when no worker with ffmpeg polls, and a file ffprobe cannot read
 * passes: its analysis reports it with the job's other failures (MEDIA_UNREADABLE). One ffprobe
 * could not read in time is refused (422 MEDIA_INSPECTION_TIMEOUT): a file crafted to keep it
 * busy past its time would pass over the limits. When
 * workers with ffmpeg poll but none inspects the upload in time, it is refused (503
 * MEDIA_INSPECTION_UNAVAILABLE): passing it let anyone skip the limits by keeping the
 * inspection queue busy with a burst of uploads.
 */
export function mediaLimitInspector(
  deps: MediaLimitDependencies,
  log: Pick<FastifyBaseLogger, 'info' | 'warn'>,
): MediaInspector {
  const { temporal, workers, limits } = deps;
  return async (batchId, media) => {
    const files = media.map((ref) => ref.name);
    let result: MediaInspectionResult;
    try {
      const report = await workers.report();
      if (report.ffmpegVersions.length === 0) {
        log.info(
          { files, reason: `no worker with ffmpeg polls ${report.taskQueue}` },
          'upload not inspected; limits unchecked',
        );
        return;
      }
      const input: MediaInspectionInput = {
        taskQueue: workers.taskQueue,
        files: media.map(({ key, kind }) => ({ key, kind })),
      };
      result = await temporal.withDeadline(Date.now() + inspectionTimeoutMs, () =>
        temporal.workflow.execute<(input: MediaInspectionInput) => Promise<MediaInspectionResult>>(
          'inspectUploadedMedia',
          {
            taskQueue: deps.taskQueue,
            // One inspection per upload: a start sent twice finds the first.
            workflowId: `inspect-upload-${batchId}`,
            workflowIdConflictPolicy: 'USE_EXISTING',
            workflowExecutionTimeout: inspectionTimeoutMs,
            args: [input],
          },
        ),
      );
    } catch (error) {
      log.warn({ files, err: error }, 'upload not inspected; refused');
      throw new ApiError(
        'MEDIA_INSPECTION_UNAVAILABLE',
        'The upload could not be checked against the media limits in time; send it again shortly',
        undefined,
        { 'retry-after': String(inspectionRetryAfterSeconds) },
      );
    }
    if (!result.inspected) {
      log.warn({ files, reason: result.reason }, 'upload not inspected; limits unchecked');
      return;
    }
    media.forEach((ref, index) => {
      const inspection = result.files[index];
      if (inspection?.readable) refuseOverLimits(ref, inspection, limits);
      else if (inspection?.timedOut) {
        throw new ApiError(
          'MEDIA_INSPECTION_TIMEOUT',
          `media: ${ref.name} could not be read in time to check it against the media limits (${inspection.reason}); the size and length of a photo or clip take well under a second to read`,
          { file: ref.name },
        );
      } else
        log.info(
          { file: ref.name, reason: inspection?.reason },
          'upload not probed; limits unchecked',
        );
    });
  };
}

function refuseOverLimits(
  ref: Pick<MediaRef, 'name' | 'kind'>,
  inspection: Extract<MediaFileInspection, { readable: true }>,
  limits: MediaLimits,
): void {
  const over = overLimit(ref, inspection, limits);
  if (over) throw new ApiError(over.code, over.message, over.details);
}
