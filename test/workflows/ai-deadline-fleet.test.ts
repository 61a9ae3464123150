// With every worker gone past an AI job's deadline, its model call stayed in its queue and the
// returning workers took it beside the workflow task that would have cancelled it: a paid answer
// no one got. Real time on the run's dev server: the time-skipping server holds time still
// while an activity waits in a queue no worker polls.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { SharedActivities } from '../../src/activities/index.js';
import { taskQueueNames } from '../../src/capacity/task-queues.js';
import type { JobUpdate } from '../../src/jobs/contracts.js';
import type { AiActivities } from '../../src/kinds/ai/activities.js';
import type { AiJobInput, AiJobRequest } from '../../src/kinds/ai/declaration.js';
import { sourceWorkflowBundle } from '../../src/worker/workflow-bundles.js';
import { testEnv } from '../support/env.js';
import { eventually } from '../support/eventually.js';
import { jobRecord } from '../support/jobs.js';
import { testTemporal, uniqueTaskQueue } from '../support/temporal.js';

describe('an AI job whose workers are all gone past its deadline', () => {
  const temporal = testTemporal();
  after(() => temporal.close());

  it('never makes the model call that waited for a worker past the deadline', async () => {
    const queues = taskQueueNames(uniqueTaskQueue('ai-fleet'));
    const job = jobRecord<AiJobRequest['input']>({
      id: `ai-${crypto.randomUUID()}`,
      kind: 'ai',
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Learn Portuguese', maxItems: 3, language: 'en' },
    });
    const input: AiJobInput = {
      job,
      attempt: 1,
      seq: 0,
      settings: {
        timeoutMs: 2_000,
        heartbeatTimeoutMs: 10_000,
        retryWindowMs: 60_000,
        providerRetry: { initialIntervalMs: 1_000, maximumIntervalMs: 10_000, maximumAttempts: 3 },
        taskQueues: queues,
      },
    };
    const updates: JobUpdate[] = [];
    let calls = 0;
    const projection: Partial<SharedActivities> = {
      registerJob: async () => undefined,
      recordJobUpdates: async (written) => {
        updates.push(...written.updates);
      },
    };
    const model: Partial<AiActivities> = {
      generateAiItems: async () => {
        calls += 1;
        return { items: [{ title: 'Take lessons', description: 'Twice a week.' }], model: 'test' };
      },
    };
    const connection = await NativeConnection.connect({ address: testEnv.temporalAddress });
    const workflowBundle = await sourceWorkflowBundle(false);
    const workflowWorker = () =>
      Worker.create({
        connection,
        namespace: testEnv.temporalNamespace,
        taskQueue: queues.workflows,
        workflowBundle,
        activities: projection,
        shutdownGraceTime: '1s',
      });
    const handle = temporal.client.workflow.getHandle(job.id);
    try {
      await (
        await workflowWorker()
      ).runUntil(async () => {
        await temporal.client.workflow.start('aiGenerationJob', {
          taskQueue: queues.workflows,
          workflowId: job.id,
          args: [input],
        });
        await eventually(
          async () => (await handle.describe()).raw.pendingActivities?.length ?? 0,
          (pending) => pending > 0,
          { what: 'the model call scheduled' },
        );
      });
      // No worker at all: the call's own time runs out in its queue, a little after the job's.
      await eventually(
        async () => (await handle.describe()).raw.pendingActivities?.length ?? 0,
        (pending) => pending === 0,
        { what: 'the model call given up in its queue', timeoutMs: 40_000, intervalMs: 500 },
      );
      const callWorker = await Worker.create({
        connection,
        namespace: testEnv.temporalNamespace,
        taskQueue: queues['text-generation'],
        activities: model,
        shutdownGraceTime: '1s',
      });
      const back = await workflowWorker();
      await callWorker.runUntil(
        back.runUntil(
          eventually(
            () => Promise.resolve(updates),
            (written) => written.some((update) => update.snapshot.status === 'timeout'),
            { what: 'the job ended by its deadline' },
          ),
        ),
      );
      const ended = updates.find((update) => update.snapshot.status === 'timeout');
      assert.equal(ended?.snapshot.error?.code, 'JOB_TIMEOUT');
      assert.equal(calls, 0, 'a model call made past the deadline');
    } finally {
      await handle.terminate('test over').catch(() => undefined);
      await connection.close();
    }
  });
});
