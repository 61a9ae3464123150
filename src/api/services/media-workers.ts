// What the API knows of the workers' ffmpeg: it runs no media tools itself, so it reads which
// workers poll the media task queue, and the ffmpeg each names in its identity, from Temporal.
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import { ffmpegVersionOfIdentity } from '../../media/worker-identity.js';

const { TaskQueueType } = proto.temporal.api.enums.v1;

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

/**
 * A poller's last access is when its current long poll began, and a poll waits up to a minute
 * for a task: a worker that polled within this window is taken to be polling still. A worker
 * that stopped stays listed this long; a task sent to it waits out its schedule-to-start limit.
 */
export const recentPollMs = 90_000;

/** Reports are shared this long: readiness probes and uploads ask often, the fleet changes rarely. */
const cacheMs = 2_000;

/** DescribeTaskQueue gets this long; an upload does not wait longer to learn it cannot be inspected. */
const describeTimeoutMs = 2_000;

export function createMediaWorkers(client: Client, taskQueue: string): MediaWorkers {
  let cached: { at: number; report: MediaWorkersReport } | undefined;
  const describe = async (signal?: AbortSignal): Promise<MediaWorkersReport> => {
    const call = () =>
      client.workflowService.describeTaskQueue({
        namespace: client.options.namespace,
        taskQueue: { name: taskQueue },
        taskQueueType: TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
      });
    const answer = await client.withDeadline(Date.now() + describeTimeoutMs, () =>
      signal ? client.withAbortSignal(signal, call) : call(),
    );
    const now = Date.now();
    const recent = answer.pollers.filter(
      (poller) => now - Number(poller.lastAccessTime?.seconds ?? 0) * 1_000 < recentPollMs,
    );
    const versions = recent
      .map((poller) => ffmpegVersionOfIdentity(poller.identity ?? ''))
      .filter((version): version is string => typeof version === 'string');
    return { taskQueue, pollers: recent.length, ffmpegVersions: [...new Set(versions)].sort() };
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
