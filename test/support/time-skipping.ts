import type { WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Runtime, Worker } from '@temporalio/worker';
import { keepHeartbeating } from '../../src/activities/heartbeat.js';
import type * as workflows from '../../src/workflows/index.js';
import { jobSearchAttributeTypes } from '../../src/temporal-namespace.js';
import { testEnv } from './env.js';
import { sourceWorkflowBundle } from '../../src/worker/workflow-bundles.js';

/** The job workflows: those whose input carries the job they run. */
type WorkflowName = {
  [Name in keyof typeof workflows]: Parameters<(typeof workflows)[Name]>[0] extends {
    job: { id: string };
  }
    ? Name
    : never;
}[keyof typeof workflows];
type WorkflowOf<Name extends WorkflowName> = (typeof workflows)[Name];

/**
 * Temporal's time-skipping test server: durable timers of minutes or hours (and timeouts)
 * pass in a moment of wall time while the workflow waits.
 */
export async function startTimeSkipping(): Promise<TestWorkflowEnvironment> {
  // Its own runtime: the shared one may not exist yet in this process.
  Runtime.install({ shutdownSignals: [] });
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: testEnv.temporalTestServerPath } },
  });
  // The workflows keep custom search attributes current; the test server needs them defined.
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: jobSearchAttributeTypes(),
  });
  return env;
}

/**
 * Runs one job workflow with test activities on its own task queue; `during` may act on the
 * running workflow (skip time, send an Update) before its result is awaited.
 */
export async function runWithTestActivities<Name extends WorkflowName>(
  env: TestWorkflowEnvironment,
  workflowType: Name,
  input: Parameters<WorkflowOf<Name>>[0],
  activities: object,
  during: (
    handle: WorkflowHandleWithFirstExecutionRunId<WorkflowOf<Name>>,
  ) => Promise<void> = async () => undefined,
) {
  const taskQueue = `${workflowType}-${input.job.id}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await sourceWorkflowBundle(false),
    activities,
    // The production worker's heartbeats (src/worker/worker.ts).
    interceptors: { activity: [keepHeartbeating] },
    shutdownGraceTime: '1s',
  });
  return worker.runUntil(async () => {
    const started = Date.now();
    const handle = await env.client.workflow.start<WorkflowOf<Name>>(workflowType, {
      taskQueue,
      workflowId: input.job.id,
      args: [input] as Parameters<WorkflowOf<Name>>,
    });
    await during(handle);
    const result = await handle.result().then(
      (value) => ({ value, error: null }),
      (error: unknown) => ({ value: null, error }),
    );
    return { ...result, wallMs: Date.now() - started };
  });
}
