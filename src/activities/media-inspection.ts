// Reads the size and length of each file of an upload with ffprobe (a photo ffprobe cannot read,
// HEIC or AVIF on npm's ffmpeg, with the photo decoder), for the API: it refuses an upload over
// the media limits before a job starts, and runs no media tools itself.
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Context } from '@temporalio/activity';
import type {
  InspectStoredMediaInput,
  MediaFileInspection,
  MediaInspectionResult,
} from '../jobs/contracts.js';
import { MediaProcessPool } from '../media/processes.js';
import { reportHeartbeat } from './heartbeat.js';
import {
  MediaToolError,
  MediaToolInterrupted,
  MediaToolTimeout,
  photoSize,
  probeStreams,
  type MediaTools,
} from '../media/tools.js';
import type { MediaStorage } from '../storage/object-storage.js';

export interface MediaInspectionDependencies {
  mediaStorage: MediaStorage;
  mediaTools: MediaTools | null;
  inspectionProbeTimeoutMs?: number | undefined;
}

/** ffprobe gets this long per file by default: reading a container's header is quick. */
const defaultProbeTimeoutMs = 15_000;

export function createMediaInspectionActivities({
  mediaStorage,
  mediaTools: shared,
  inspectionProbeTimeoutMs: probeTimeoutMs = defaultProbeTimeoutMs,
}: MediaInspectionDependencies) {
  // The user's upload waits for these reads: they must not queue behind the renders and
  // samplings holding the worker's media slots (minutes each). The inspection queue's slots bound
  // how many run at once; each is one short ffprobe, at the same low priority.
  const mediaTools = shared && {
    ...shared,
    processes: new MediaProcessPool({
      ...shared.processes.limits,
      maxConcurrent: Number.POSITIVE_INFINITY,
    }),
  };
  return {
    /**
     * Each file's picture size and duration, in order. A file ffprobe cannot read is reported
     * as such, not thrown: the upload passes and the vlog's analysis names it. One it cannot
     * read in time is the last reported: crafted to keep ffprobe busy, it could otherwise pass
     * over the limits.
     */
    async inspectStoredMedia(input: InspectStoredMediaInput): Promise<MediaInspectionResult> {
      if (!mediaTools)
        return { inspected: false, reason: `no ffmpeg or ffprobe on ${os.hostname()}` };
      const context = Context.current();
      const dir = await mkdtemp(path.join(os.tmpdir(), 'vlogflow-inspect-'));
      try {
        const files: MediaFileInspection[] = [];
        for (const [index, file] of input.files.entries()) {
          // ffprobe reads files, not streams: a clip's index may sit at its end.
          const copy = path.join(dir, String(index));
          await pipeline(await mediaStorage.getStream(file.key), createWriteStream(copy), {
            signal: context.cancellationSignal,
          });
          const inspection = await inspect(
            mediaTools,
            copy,
            file.kind,
            context.cancellationSignal,
            probeTimeoutMs,
          );
          files.push(inspection);
          reportHeartbeat({ inspected: files.length });
          // The upload is refused for it: the files after it would hold the slot for nothing.
          if (!inspection.readable && inspection.timedOut) break;
        }
        return { inspected: true, files };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

async function inspect(
  tools: MediaTools,
  file: string,
  kind: 'image' | 'video',
  signal: AbortSignal,
  probeTimeoutMs: number,
): Promise<MediaFileInspection> {
  try {
    const { width, height, durationSeconds } = await probeStreams(
      tools,
      file,
      kind,
      signal,
      probeTimeoutMs,
    ).catch(async (error: unknown) => {
      if (kind !== 'image' || !(error instanceof MediaToolError)) throw error;
      return { ...(await photoSize(tools, file, signal, probeTimeoutMs)), durationSeconds: null };
    });
    return { readable: true, width, height, durationSeconds };
  } catch (error) {
    const unread =
      error instanceof MediaToolError ||
      error instanceof MediaToolTimeout ||
      error instanceof MediaToolInterrupted;
    if (!unread) throw error;
    if (error instanceof MediaToolTimeout) {
      return { readable: false, reason: error.message, timedOut: true };
    }
    return { readable: false, reason: error.message };
  }
}
