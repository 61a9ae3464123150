import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { Client, ScheduleOverlapPolicy, type WorkflowClientInterceptor } from '@temporalio/client';
import type { ActivityDependencies } from '../../src/activities/index.js';
import { loadConfig, queueCapacities } from '../../src/config.js';
import type { Logger } from '../../src/logger.js';
import { createProviders } from '../../src/providers/index.js';
import { LocalMediaStorage } from '../../src/storage/local-storage.js';
import {
  createTemporalAccess,
  type TemporalAccess,
  type TemporalEndpoint,
} from '../../src/temporal-client.js';
import type { JobReconcileSettings } from '../../src/worker/job-reconcile-schedule.js';
import type { MediaSweepSettings } from '../../src/worker/media-sweep-schedule.js';
import { startWorker, type RunningWorker } from '../../src/worker/worker.js';
import { testEnv } from './env.js';
import { eventually } from './eventually.js';
import { testLogger } from './logs.js';

/** The run's dev server, in plaintext. */
export function testEndpoint(): TemporalEndpoint {
  return { address: testEnv.temporalAddress };
}

/** A client (and readiness ping) of the run's dev server, or of `endpoint` in front of it. */
export function testTemporal(endpoint = testEndpoint()): TemporalAccess {
  return createTemporalAccess(endpoint, testEnv.temporalNamespace);
}

/**
 * `temporal` with a client whose workflow calls go through `interceptor` (on the same
 * connection): how a test counts, or holds back, what the API asks of Temporal.
 */
export function interceptedTemporal(
  temporal: TemporalAccess,
  interceptor: WorkflowClientInterceptor,
): TemporalAccess {
  return {
    ...temporal,
    client: new Client({
      connection: temporal.client.connection,
      namespace: temporal.client.options.namespace,
      interceptors: { workflow: [interceptor] },
    }),
  };
}

/**
 * Asserts that Temporal's visibility counts `expected` workflows of the owner, polling: it is
 * updated after a start returns (eventually consistent), so a count read at once can be short
 * under load. Fails with the last count seen after the deadline.
 */
export async function expectOwnerWorkflows(
  client: Client,
  ownerId: string,
  expected: number,
  timeoutMs = 15_000,
): Promise<void> {
  await eventually(
    async () => (await client.workflow.count(`UserId = "${ownerId}"`)).count,
    (count) => count === expected,
    { what: `${expected} workflows of ${ownerId} in visibility`, timeoutMs, intervalMs: 200 },
  );
}

/** Each test gets its own task queue so workers of parallel test files never steal its tasks. */
export function uniqueTaskQueue(name: string): string {
  return `${name}-${randomUUID().slice(0, 8)}`;
}

/**
 * Runs `fn` while a real worker (the production startWorker) polls `taskQueue`. Dependencies
 * not given are the embedded defaults: local media storage in a temporary folder and no
 * working provider (the local one without ffmpeg).
 */
export async function withWorker<T>(
  taskQueue: string,
  given: Pick<ActivityDependencies, 'db'> & Partial<ActivityDependencies>,
  fn: () => Promise<T>,
  logger: Logger = testLogger(),
): Promise<T> {
  const running = await startTestWorker(taskQueue, given, logger);
  try {
    return await fn();
  } finally {
    await running.stop();
  }
}

/**
 * A real worker polling `taskQueue` until its `stop()`; for suites that share one worker. With
 * `mediaSweep` or `jobReconcile`, it schedules the media sweep or the job reconciler as
 * production workers do. It connects to `endpoint` (default: the run's dev server); with
 * `workflowsPath`, it runs that workflows module instead of the project's (a next build).
 */
export async function startTestWorker(
  taskQueue: string,
  given: Pick<ActivityDependencies, 'db'> & Partial<ActivityDependencies>,
  logger: Logger = testLogger(),
  mediaSweep?: MediaSweepSettings,
  jobReconcile?: JobReconcileSettings,
  endpoint = testEndpoint(),
  workflowsPath?: string,
): Promise<RunningWorker> {
  const mediaStorage =
    given.mediaStorage ??
    new LocalMediaStorage(path.join(os.tmpdir(), `vlogflow-media-${randomUUID()}`), {
      publicUrl: 'http://127.0.0.1',
      secret: 'test',
    });
  const deps: ActivityDependencies = {
    mediaStorage,
    providers: createProviders(loadConfig({}), { mediaStorage, mediaTools: null }),
    mediaTools: null,
    ...given,
  };
  return startWorker(
    {
      endpoint,
      namespace: testEnv.temporalNamespace,
      taskQueue,
      shutdownGraceMs: 2_000,
      // The providers are the test's (a fake Gemini, mostly), not the embedded model whose
      // two requests at once the text-generation queue takes by default without a key.
      capacity: queueCapacities(loadConfig({ QUEUE_TEXT_GENERATION_SLOTS: '50' })),
      ...(mediaSweep ? { mediaSweep } : {}),
      ...(jobReconcile ? { jobReconcile } : {}),
      ...(workflowsPath ? { workflowsPath } : {}),
    },
    deps,
    logger,
  );
}

/**
 * Triggers one run of a schedule as its interval would start it (overlap SKIP, as `temporal
 * schedule trigger` does: the server keeps the run's result for the next run) and answers the
 * run's workflow id and result once the schedule has seen it close, so that a next trigger is
 * neither skipped as an overlap nor started without that result.
 */
export async function runScheduledOnce<Result>(
  client: Client,
  scheduleId: string,
): Promise<{ workflowId: string; result: Result }> {
  const schedule = client.schedule.getHandle(scheduleId);
  const taken = (await schedule.describe()).info.numActionsTaken;
  await schedule.trigger(ScheduleOverlapPolicy.SKIP);
  const { info } = await eventually(
    () => schedule.describe(),
    (described) => described.info.numActionsTaken > taken,
    { what: `${scheduleId} started a run`, timeoutMs: 30_000, intervalMs: 100 },
  );
  const { workflowId, firstExecutionRunId } = info.recentActions.at(-1)!.action.workflow;
  const result = (await client.workflow
    .getHandle(workflowId, firstExecutionRunId)
    .result()) as Result;
  await eventually(
    async () => (await schedule.describe()).info.runningActions.length,
    (count) => count === 0,
    { what: `${scheduleId} saw its run close`, timeoutMs: 30_000, intervalMs: 100 },
  );
  return { workflowId, result };
}
