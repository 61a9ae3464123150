/**
 * What an uploaded photo or clip may be, read with ffprobe while the upload is received, so an
 * oversized file is refused before any job starts instead of failing minutes into its analysis.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../../config.js';
import type { MediaRef } from '../../jobs/contracts.js';
import {
  MediaToolError,
  MediaToolTimeout,
  probeMedia,
  type MediaTools,
} from '../../media/tools.js';
import { ApiError } from '../errors.js';
import { mediaFieldName, type MediaInspector } from './media-upload.js';

export interface MediaLimits {
  /** Longest clip, in seconds. */
  maxVideoSeconds: number;
  /** Longest side of a clip, in pixels (as displayed). */
  maxVideoSide: number;
  /** Most pixels in a photo. */
  maxImagePixels: number;
}

export function mediaLimitsOf(config: Config): MediaLimits {
  return {
    maxVideoSeconds: config.VLOG_MAX_VIDEO_SECONDS,
    maxVideoSide: config.VLOG_MAX_VIDEO_SIDE,
    maxImagePixels: config.VLOG_MAX_IMAGE_PIXELS,
  };
}

/** ffprobe gets this long per file here: reading a container's header is quick. */
const probeTimeoutMs = 15_000;

/**
 * Refuses a file over the limits with a 422 naming it. A file ffprobe cannot read (or not in
 * time) passes: its analysis reports it with the job's other failures (MEDIA_UNREADABLE).
 */
export function mediaLimitInspector(
  tools: MediaTools,
  limits: MediaLimits,
  log: Pick<FastifyBaseLogger, 'info'>,
): MediaInspector {
  return async (file: string, ref: Pick<MediaRef, 'name' | 'kind'>) => {
    let width: number;
    let height: number;
    let durationSeconds: number | null;
    try {
      ({ width, height, durationSeconds } = await probeMedia(
        tools,
        file,
        ref.kind,
        undefined,
        probeTimeoutMs,
      ));
    } catch (error) {
      if (!(error instanceof MediaToolError || error instanceof MediaToolTimeout)) throw error;
      log.info({ file: ref.name, reason: error.message }, 'upload not probed; limits unchecked');
      return;
    }
    const name = ref.name;
    const size = `${width}×${height}`;
    if (ref.kind === 'image' && width * height > limits.maxImagePixels) {
      throw new ApiError(
        'MEDIA_RESOLUTION_TOO_HIGH',
        `${mediaFieldName}: ${name} is ${size} (${width * height} pixels), over the limit of ${limits.maxImagePixels} pixels for a photo`,
        { file: name, width, height, limit: limits.maxImagePixels },
      );
    }
    if (ref.kind === 'video' && Math.max(width, height) > limits.maxVideoSide) {
      throw new ApiError(
        'MEDIA_RESOLUTION_TOO_HIGH',
        `${mediaFieldName}: ${name} is ${size}, over the limit of ${limits.maxVideoSide} pixels on a clip's longest side`,
        { file: name, width, height, limit: limits.maxVideoSide },
      );
    }
    if (durationSeconds !== null && durationSeconds > limits.maxVideoSeconds) {
      throw new ApiError(
        'MEDIA_TOO_LONG',
        `${mediaFieldName}: ${name} lasts ${Math.round(durationSeconds * 10) / 10} s, over the limit of ${limits.maxVideoSeconds} s for a clip`,
        { file: name, durationSeconds, limit: limits.maxVideoSeconds },
      );
    }
  };
}
