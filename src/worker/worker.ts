import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import { NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { parseCommandLine, UsageError } from '../command-line.js';
import { ActivitiesInFlight, type ActivityInFlight } from './activities-in-flight.js';
import { createActivities, type ActivityDependencies } from '../activities/index.js';
import { keepHeartbeating } from '../activities/heartbeat.js';
import {
  parseTaskQueueDomains,
  taskQueueDomains,
  taskQueueNames,
  type TaskQueueDomain,
} from '../capacity/task-queues.js';
import {
  ConfigError,
  loadConfig,
  queueCapacities,
  type Config,
  type QueueCapacity,
} from '../config.js';
import type { Logger } from '../logger.js';
import { connectAtStart, type TemporalEndpoint } from '../temporal-client.js';
import { namespaceProblem } from '../temporal-namespace.js';
import {
  ensureMediaSweepSchedule,
  mediaSweepBatchSize,
  mediaSweepScheduleId,
  type MediaSweepSettings,
} from './media-sweep-schedule.js';
import {
  ensureJobReconcileSchedule,
  jobReconcileBatchesPerRun,
  jobReconcileBatchSize,
  jobReconcileScheduleId,
  type JobReconcileSettings,
} from './job-reconcile-schedule.js';
import { taskQueueDomainsInUse } from '../kinds/index.js';
import { isNpmFfmpeg, mediaToolsVersion, type MediaTools } from '../media/tools.js';
import { mediaWorkerIdentity } from '../media/worker-identity.js';
import { tracingWorkflowModules, type Tracing } from '../tracing/index.js';
import { installWorkerRuntime } from './runtime.js';
import { sourceWorkflowBundle, workflowBundleFiles } from './workflow-bundles.js';

const { TaskQueueType } = proto.temporal.api.enums.v1;
const here = path.dirname(fileURLToPath(import.meta.url));
const runningFromSource = import.meta.url.endsWith('.ts');

/**
 * Where the prebuilt workflow bundles live, relative to the compiled worker (`npm run build`):
 * the plain one, and the one with the tracing interceptors in.
 */
export const workflowBundlePaths = {
  plain: path.resolve(here, '../..', workflowBundleFiles.plain),
  traced: path.resolve(here, '../..', workflowBundleFiles.traced),
};

/**
 * A worker loads the bundle `npm run build` made, with or without the tracing interceptors, so
 * it starts in milliseconds; from source (dev, tests) it loads the same bundle made from this
 * tree, once, and kept until the tree changes (`sourceWorkflowBundle`). `workflowsPath` (another
 * build's workflows, in tests) is bundled in place of either.
 */
async function workflowSource(
  traced: boolean,
  workflowsPath: string | undefined,
): Promise<
  Pick<WorkerOptions, 'workflowsPath' | 'workflowBundle'> & {
    workflowModules: string[];
  }
> {
  if (workflowsPath) {
    return { workflowsPath, workflowModules: traced ? tracingWorkflowModules() : [] };
  }
  if (runningFromSource) {
    return {
      workflowBundle: await sourceWorkflowBundle(traced, Runtime.instance().logger),
      workflowModules: [],
    };
  }
  const codePath = traced ? workflowBundlePaths.traced : workflowBundlePaths.plain;
  if (!existsSync(codePath)) {
    throw new Error(`No workflow bundle at ${codePath}: run \`npm run build\` first`);
  }
  return { workflowBundle: { codePath }, workflowModules: [] };
}

/**
 * The domains a worker process serves: `--queues media,transfer` on its command line, else
 * WORKER_QUEUES, else all. Anything else on the command line, or an unknown domain, is a
 * UsageError naming the flag.
 */
export function workerQueuesOf(args: string[], config: Config): TaskQueueDomain[] {
  const { queues } = parseCommandLine({ args, options: { queues: { type: 'string' } } }).values;
  if (queues === undefined) return config.workerQueues;
  try {
    return parseTaskQueueDomains(queues, '--queues');
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** How `npm run worker` is called, for `--help` and a refused flag. */
export const workerUsage = `usage: npm run worker -- [--queues <domain,domain…>]
  --queues  serve only these domains' task queues (default: WORKER_QUEUES, else every one):
            ${taskQueueDomains.join(', ')}`;

/** The worker's settings from the configuration, against the Temporal frontend at `endpoint`. */
export function workerSettings(
  config: Config,
  endpoint: TemporalEndpoint,
  queues: TaskQueueDomain[] = config.workerQueues,
): WorkerSettings {
  return {
    endpoint,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    queues,
    capacity: queueCapacities(config),
    shutdownGraceMs: config.WORKER_SHUTDOWN_GRACE_MS,
    maxCachedWorkflows: config.WORKER_MAX_CACHED_WORKFLOWS,
    mediaSweep: {
      intervalMs: config.MEDIA_SWEEP_INTERVAL_MS,
      retentionMs: config.MEDIA_RETENTION_MS,
      retryWindowMs: config.JOB_RETRY_WINDOW_MS,
      batchSize: mediaSweepBatchSize,
      orphanUploadAgeMs: config.UPLOAD_ORPHAN_AGE_MS,
    },
    jobReconcile: {
      intervalMs: config.JOB_RECONCILE_INTERVAL_MS,
      staleMs: config.JOB_RECONCILE_STALE_MS,
      reopenWindowMs: config.JOB_RETRY_WINDOW_MS,
      batchSize: jobReconcileBatchSize,
      maxBatchesPerRun: jobReconcileBatchesPerRun,
    },
  };
}

export interface WorkerSettings {
  /** The Temporal frontend (temporalEndpoint). */
  endpoint: TemporalEndpoint;
  namespace: string;
  /** TEMPORAL_TASK_QUEUE: the workflows' queue, which every domain's queue is named after. */
  taskQueue: string;
  /** The domains this process serves (WORKER_QUEUES or `--queues`); default: every one in use. */
  queues?: TaskQueueDomain[];
  /** Slots, pollers and rate of each domain's queue; default: an empty configuration's (embedded model). */
  capacity?: Record<TaskQueueDomain, QueueCapacity>;
  /** Time running activities get to finish or heartbeat their cancellation on shutdown. */
  shutdownGraceMs: number;
  /**
   * A workflows module to bundle instead of the project's own: how a test deploys a second
   * build whose workflow code differs.
   */
  workflowsPath?: string;
  /** Workflow runs kept in memory between their tasks (WORKER_MAX_CACHED_WORKFLOWS). */
  maxCachedWorkflows?: number;
  /**
   * The media sweep's schedule, created or updated as a worker serving `workflows` starts;
   * unset: left alone.
   */
  mediaSweep?: MediaSweepSettings;
  /**
   * The job reconciler's schedule, created or updated as a worker serving `workflows` starts;
   * unset: left alone.
   */
  jobReconcile?: JobReconcileSettings;
}

export interface RunningWorker {
  /** The domains it serves, each with its queue. */
  queues: { domain: TaskQueueDomain; taskQueue: string }[];
  /**
   * The connection of the worker polling the workflows' queue, when this process serves it: a
   * client of the same process starts workflows through it eagerly (createTemporalAccess).
   */
  workflowConnection: NativeConnection | undefined;
  /** Settles when the worker has stopped. */
  finished: Promise<void>;
  /** Stops polling, lets running activities wrap up within the grace time, and waits. */
  stop(): Promise<void>;
  /** The activities this process runs now, oldest first: what a shutdown logs it waits for. */
  activitiesInFlight(): ActivityInFlight[];
}

/** The version line of the worker's ffmpeg; null without one, or when it does not run. */
async function ffmpegVersion(tools: MediaTools | null, logger: Logger): Promise<string | null> {
  if (!tools) return null;
  if (isNpmFfmpeg(tools)) {
    logger.warn(
      { ffmpeg: tools.ffmpeg },
      "ffmpeg is npm's static 2018 build and reads every upload: put a maintained ffmpeg and ffprobe on PATH in production",
    );
  }
  try {
    return await mediaToolsVersion(tools);
  } catch (error) {
    logger.warn({ err: error, ffmpeg: tools.ffmpeg }, 'ffmpeg does not run: media steps will fail');
    return null;
  }
}

/**
 * A workflow task bound for a dead worker's sticky queue goes to the shared queue after this
 * long (the SDK's default is 10 s), so a job whose worker was killed moves on in seconds.
 */
const stickyQueueScheduleToStartTimeout = '3s';

/** The longest a start waits for the server to list its workers' polls. */
const pollingSeenWithinMs = 10_000;

/**
 * Waits until the server lists each worker among its queue's pollers, so that a worker (and an
 * `npm start` stack) reports itself started only once work can reach it: the API's readiness
 * reads the media queue's pollers.
 */
async function untilPolling(
  connection: NativeConnection,
  namespace: string,
  workers: { domain: TaskQueueDomain; worker: Worker }[],
  logger: Logger,
): Promise<void> {
  const deadline = Date.now() + pollingSeenWithinMs;
  for (const { domain, worker } of workers) {
    const { taskQueue, identity } = worker.options;
    const taskQueueType =
      domain === 'workflows'
        ? TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
        : TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY;
    for (;;) {
      const { pollers } = await connection.workflowService.describeTaskQueue({
        namespace,
        taskQueue: { name: taskQueue },
        taskQueueType,
      });
      if (pollers.some((poller) => poller.identity === identity)) break;
      if (Date.now() > deadline) {
        logger.warn({ taskQueue }, 'the server does not list this worker among the pollers yet');
        return;
      }
      await delay(50);
    }
  }
}

/** The media sweep's and the job reconciler's schedules, as the settings ask. */
async function ensureSchedules(
  client: Client,
  settings: WorkerSettings,
  storageQueue: string,
  logger: Logger,
): Promise<void> {
  if (settings.mediaSweep) {
    const outcome = await ensureMediaSweepSchedule(client, settings.taskQueue, {
      ...settings.mediaSweep,
      taskQueue: storageQueue,
    });
    logger.info(
      { scheduleId: mediaSweepScheduleId(settings.taskQueue), outcome, ...settings.mediaSweep },
      'media sweep scheduled',
    );
  }
  if (settings.jobReconcile) {
    const outcome = await ensureJobReconcileSchedule(
      client,
      settings.taskQueue,
      settings.jobReconcile,
    );
    logger.info(
      {
        scheduleId: jobReconcileScheduleId(settings.taskQueue),
        outcome,
        ...settings.jobReconcile,
      },
      'job reconciler scheduled',
    );
  }
}

/**
 * Runs one Temporal worker per domain this process serves, each on its domain's queue with the
 * domain's slots, pollers and queue-wide rate, sharing one connection. With `tracing`, workflows
 * and activities continue the trace their start carries, and export their spans.
 */
export async function startWorker(
  settings: WorkerSettings,
  deps: ActivityDependencies,
  logger: Logger,
  tracing?: Tracing | null,
): Promise<RunningWorker> {
  await installWorkerRuntime(logger);
  const inUse = taskQueueDomainsInUse();
  const domains = (settings.queues ?? inUse).filter((domain) => inUse.includes(domain));
  const capacity = settings.capacity ?? queueCapacities(loadConfig({}));
  const names = taskQueueNames(settings.taskQueue);
  const connection = await connectAtStart(settings.endpoint, (endpoint) =>
    NativeConnection.connect(endpoint),
  );
  // Refused at start rather than polling a namespace whose every job start fails.
  const problem = await namespaceProblem(connection, settings.namespace).catch(
    async (error: unknown) => {
      await connection.close();
      throw error;
    },
  );
  if (problem) {
    await connection.close();
    throw new ConfigError(`TEMPORAL_NAMESPACE: ${problem}`);
  }
  const client = new Client({ connection, namespace: settings.namespace });
  if (domains.includes('workflows')) {
    await ensureSchedules(client, settings, names.storage, logger).catch(async (error: unknown) => {
      await connection.close();
      throw error;
    });
  }
  const activities = createActivities({
    ...deps,
    temporalClient: client,
    chargeHandoff: { client, taskQueue: names.workflows },
  });
  const inFlight = new ActivitiesInFlight();
  // The API, which runs no media tools, reads the workers' ffmpeg from these queues' pollers.
  const identity =
    domains.includes('media') || domains.includes('inspection')
      ? mediaWorkerIdentity(await ffmpegVersion(deps.mediaTools, logger))
      : undefined;
  const optionsOf = async (domain: TaskQueueDomain): Promise<WorkerOptions> => {
    const { slots, pollers, ratePerSecond } = capacity[domain];
    const common = {
      connection,
      namespace: settings.namespace,
      taskQueue: names[domain],
      activities,
      shutdownGraceTime: settings.shutdownGraceMs,
      // A cancellation reaches an activity only in the answer to a heartbeat, which the SDK
      // otherwise sends at most every 80 % of the heartbeat timeout: a cancelled render,
      // transfer or model call would run on that long. One heartbeat a second is cheap.
      maxHeartbeatThrottleInterval: '1s',
      interceptors: {
        activity: [
          inFlight.interceptor,
          keepHeartbeating,
          ...(tracing?.activityInterceptors ?? []),
        ],
      },
    } satisfies WorkerOptions;
    if (domain === 'workflows') {
      const { workflowModules, ...source } = await workflowSource(
        Boolean(tracing),
        settings.workflowsPath,
      );
      // It also runs the activities of runs started before the queue map, on this queue.
      return {
        ...common,
        ...source,
        ...(tracing && {
          interceptors: { ...common.interceptors, workflowModules },
          sinks: tracing.workflowSinks,
        }),
        maxConcurrentWorkflowTaskExecutions: slots,
        ...(settings.maxCachedWorkflows !== undefined && {
          maxCachedWorkflows: settings.maxCachedWorkflows,
        }),
        workflowTaskPollerBehavior: { type: 'simple-maximum', maximum: pollers },
        stickyQueueScheduleToStartTimeout,
      };
    }
    return {
      ...common,
      ...((domain === 'media' || domain === 'inspection') && { identity }),
      maxConcurrentActivityTaskExecutions: slots,
      activityTaskPollerBehavior: { type: 'simple-maximum', maximum: pollers },
      ...(ratePerSecond !== undefined && { maxTaskQueueActivitiesPerSecond: ratePerSecond }),
    };
  };
  const workers: Worker[] = [];
  try {
    for (const domain of domains) workers.push(await Worker.create(await optionsOf(domain)));
  } catch (error) {
    await connection.close();
    throw error;
  }
  const shutdown = () => {
    for (const running of workers) if (running.getState() === 'RUNNING') running.shutdown();
  };
  // One worker stopping (or failing) stops the others; the connection closes after all.
  const finished = Promise.allSettled(workers.map((running) => running.run().finally(shutdown)))
    .then((results) => {
      for (const result of results) if (result.status === 'rejected') throw result.reason;
    })
    .finally(() => connection.close());
  await untilPolling(
    connection,
    settings.namespace,
    workers.map((worker, index) => ({ domain: domains[index]!, worker })),
    logger,
  );
  logger.info(
    {
      namespace: settings.namespace,
      queues: Object.fromEntries(
        domains.map((domain) => [domain, { taskQueue: names[domain], ...capacity[domain] }]),
      ),
    },
    `worker started: ${domains.join(', ')}`,
  );
  return {
    queues: domains.map((domain) => ({ domain, taskQueue: names[domain] })),
    workflowConnection: domains.includes('workflows') ? connection : undefined,
    finished,
    async stop() {
      logger.info(
        { graceMs: settings.shutdownGraceMs, activities: inFlight.list() },
        'worker draining: no new tasks; running activities get the grace time to finish',
      );
      inFlight.startDraining();
      const graceOver = setTimeout(() => {
        const left = inFlight.cutShort();
        if (left.length > 0)
          logger.warn({ activities: left }, 'grace time over: cancelling the running activities');
      }, settings.shutdownGraceMs);
      shutdown();
      try {
        await finished;
      } finally {
        clearTimeout(graceOver);
      }
    },
    activitiesInFlight: () => inFlight.list(),
  };
}
