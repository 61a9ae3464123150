import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@temporalio/client';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDependencies } from '../activities/index.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import {
  ensureMediaSweepSchedule,
  mediaSweepBatchSize,
  mediaSweepScheduleId,
  type MediaSweepSettings,
} from './media-sweep-schedule.js';
import { kindsUsingTaskQueue } from '../kinds/index.js';
import { mediaTaskQueueOf } from '../media/processes.js';
import { mediaToolsVersion, type MediaTools } from '../media/tools.js';
import { mediaWorkerIdentity } from '../media/worker-identity.js';
import { installWorkerRuntime } from './runtime.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const runningFromSource = import.meta.url.endsWith('.ts');

/** Where the prebuilt workflow bundle lives, relative to the compiled worker (`npm run build`). */
export const workflowBundlePath = path.resolve(here, '../../workflow-bundle.js');

/**
 * From source (dev, tests) the worker bundles `src/workflows` itself; compiled (production)
 * it loads the bundle `npm run build` made, so a worker starts in milliseconds.
 */
function workflowSource(): Pick<WorkerOptions, 'workflowsPath' | 'workflowBundle'> {
  if (runningFromSource) return { workflowsPath: path.resolve(here, '../workflows/index.ts') };
  if (!existsSync(workflowBundlePath)) {
    throw new Error(`No workflow bundle at ${workflowBundlePath}: run \`npm run build\` first`);
  }
  return { workflowBundle: { codePath: workflowBundlePath } };
}

/** The worker's settings from the configuration, against the server at `address`. */
export function workerSettings(config: Config, address: string): WorkerSettings {
  return {
    address,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    shutdownGraceMs: config.WORKER_SHUTDOWN_GRACE_MS,
    mediaSweep: {
      intervalMs: config.MEDIA_SWEEP_INTERVAL_MS,
      retentionMs: config.MEDIA_RETENTION_MS,
      retryWindowMs: config.JOB_RETRY_WINDOW_MS,
      batchSize: mediaSweepBatchSize,
    },
  };
}

export interface WorkerSettings {
  address: string;
  namespace: string;
  taskQueue: string;
  /** Time running activities get to finish or heartbeat their cancellation on shutdown. */
  shutdownGraceMs: number;
  /** The media sweep's schedule, created or updated as the worker starts; unset: left alone. */
  mediaSweep?: MediaSweepSettings;
}

export interface RunningWorker {
  worker: Worker;
  /** Settles when the worker has stopped. */
  finished: Promise<void>;
  /** Stops polling, lets running activities wrap up within the grace time, and waits. */
  stop(): Promise<void>;
}

/** The version line of the worker's ffmpeg; null without one, or when it does not run. */
async function ffmpegVersion(tools: MediaTools | null, logger: Logger): Promise<string | null> {
  if (!tools) return null;
  try {
    return await mediaToolsVersion(tools);
  } catch (error) {
    logger.warn({ err: error, ffmpeg: tools.ffmpeg }, 'ffmpeg does not run: media steps will fail');
    return null;
  }
}

export async function startWorker(
  settings: WorkerSettings,
  deps: ActivityDependencies,
  logger: Logger,
): Promise<RunningWorker> {
  installWorkerRuntime(logger);
  const connection = await NativeConnection.connect({ address: settings.address });
  if (settings.mediaSweep) {
    const client = new Client({ connection, namespace: settings.namespace });
    const outcome = await ensureMediaSweepSchedule(
      client,
      settings.taskQueue,
      settings.mediaSweep,
    ).catch(async (error: unknown) => {
      await connection.close();
      throw error;
    });
    logger.info(
      { scheduleId: mediaSweepScheduleId(settings.taskQueue), outcome, ...settings.mediaSweep },
      'media sweep scheduled',
    );
  }
  const activities = createActivities(deps);
  const common = {
    connection,
    namespace: settings.namespace,
    activities,
    shutdownGraceTime: settings.shutdownGraceMs,
    // A cancellation reaches an activity only in the answer to a heartbeat, which the SDK
    // otherwise sends at most every 80 % of the heartbeat timeout (12 s for vlog steps, 48 s for AI
    // generations): a cancelled render, transfer or model call would run on that long. One heartbeat a second per running activity is cheap.
    maxHeartbeatThrottleInterval: '1s',
  } satisfies Partial<WorkerOptions>;
  const worker = await Worker.create({
    ...common,
    taskQueue: settings.taskQueue,
    ...workflowSource(),
  });
  // As many media steps as ffmpeg processes: more would only wait inside the worker, holding a
  // slot and heartbeating, while the API shares the CPU with them. A worker without ffmpeg polls
  // too, so a local vlog sent to it fails as it would on the main queue instead of waiting.
  const mediaKinds = kindsUsingTaskQueue('media');
  const mediaSlots = deps.mediaTools?.processes.limits.maxConcurrent ?? 1;
  const workers = [worker];
  if (mediaKinds.length > 0) {
    workers.push(
      await Worker.create({
        ...common,
        taskQueue: mediaTaskQueueOf(settings.taskQueue),
        // The API, which runs no media tools, reads the workers' ffmpeg from the queue's pollers.
        identity: mediaWorkerIdentity(await ffmpegVersion(deps.mediaTools, logger)),
        maxConcurrentActivityTaskExecutions: mediaSlots,
        activityTaskPollerBehavior: { type: 'simple-maximum', maximum: Math.min(mediaSlots, 2) },
      }),
    );
  }
  const shutdown = () => {
    for (const running of workers) if (running.getState() === 'RUNNING') running.shutdown();
  };
  // One worker stopping (or failing) stops the other; the connection closes after both.
  const finished = Promise.allSettled(workers.map((running) => running.run().finally(shutdown)))
    .then((results) => {
      for (const result of results) if (result.status === 'rejected') throw result.reason;
    })
    .finally(() => connection.close());
  logger.info(
    { taskQueue: settings.taskQueue, namespace: settings.namespace, mediaKinds, mediaSlots },
    'worker started',
  );
  return {
    worker,
    finished,
    async stop() {
      shutdown();
      await finished;
    },
  };
}
