// What the API knows of the workers' ffmpeg: it runs no media tools itself, so it reads which
// workers poll the media task queue, and the ffmpeg each names in its identity, from Temporal.
import type { Client } from '@temporalio/client';
import { ffmpegVersionOfIdentity } from '../../media/worker-identity.js';
import { describeTaskQueue } from '../../task-queue-status.js';

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
  /** The report, at most `cacheMs` old; rejects when Temporal does not answer in time. */
  report(signal?: AbortSignal): Promise<MediaWorkersReport>;
  /**
   * True only when workers poll the media queue and none has ffmpeg. With no worker polling
   * (a job then waits for one), or no answer from Temporal, nothing is known to be missing.
   */
  lackFfmpeg(): Promise<boolean>;
}

/** Reports are shared this long: readiness probes and uploads ask often, the fleet changes rarely. */
const cacheMs = 2_000;

/** DescribeTaskQueue gets this long; an upload does not wait longer to learn it cannot be inspected. */
const describeTimeoutMs = 2_000;

export function createMediaWorkers(client: Client, taskQueue: string): MediaWorkers {
  let cached: { at: number; report: MediaWorkersReport } | undefined;
  const describe = async (signal?: AbortSignal): Promise<MediaWorkersReport> => {
    const { pollers } = await describeTaskQueue(client, taskQueue, 'activity', {
      ...(signal && { signal }),
      deadlineMs: describeTimeoutMs,
    });
    const versions = pollers
      .map((poller) => ffmpegVersionOfIdentity(poller.identity ?? ''))
      .filter((version): version is string => typeof version === 'string');
    return { taskQueue, pollers: pollers.length, ffmpegVersions: [...new Set(versions)].sort() };
  };
  const report = async (signal?: AbortSignal) => {
    if (cached && Date.now() - cached.at < cacheMs) return cached.report;
    const fresh = await describe(signal);
    cached = { at: Date.now(), report: fresh };
    return fresh;
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
