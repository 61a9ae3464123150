// What the API knows of the workers' ffmpeg: it runs no media tools itself, so it reads which
// workers poll the media task queue, and the ffmpeg each names in its identity, from Temporal.
import { ffmpegVersionOfIdentity } from '../../media/worker-identity.js';
import type { TaskQueueWatch } from '../../task-queue-status.js';

/** The media task queue's recent pollers, as DescribeTaskQueue lists them. */
export interface MediaWorkersReport {
  taskQueue: string;
  /** Workers that polled recently. */
  pollers: number;
  /** The distinct ffmpeg version lines those workers run; empty when none has ffmpeg. */
  ffmpegVersions: string[];
}

export interface MediaWorkers {
  taskQueue: string;
  /** The report, from the queues' watch; rejects when Temporal does not answer in time. */
  report(): Promise<MediaWorkersReport>;
  /**
   * True only when workers poll the media queue and none has ffmpeg. With no worker polling
   * (a job then waits for one), or no answer from Temporal, nothing is known to be missing.
   */
  lackFfmpeg(): Promise<boolean>;
}

/** The workers of the media or the inspection queue, as the queues' watch last saw them. */
export function createMediaWorkers(
  queues: TaskQueueWatch,
  domain: 'media' | 'inspection',
): MediaWorkers {
  const taskQueue = queues.names[domain];
  const report = async (): Promise<MediaWorkersReport> => {
    const pollers = (await queues.statuses()).get(domain)?.pollers ?? [];
    const versions = pollers
      .map((poller) => ffmpegVersionOfIdentity(poller.identity ?? ''))
      .filter((version): version is string => typeof version === 'string');
    return { taskQueue, pollers: pollers.length, ffmpegVersions: [...new Set(versions)].sort() };
  };
  return {
    taskQueue,
    report,
    async lackFfmpeg() {
      const known = await report().catch(() => null);
      return known !== null && known.pollers > 0 && known.ffmpegVersions.length === 0;
    },
  };
}
