import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import proto from '@temporalio/proto';
import {
  taskQueueDomains,
  taskQueueNames,
  type TaskQueueDomain,
} from '../../src/capacity/task-queues.js';
import { loadConfig } from '../../src/config.js';
import type { ActivityDependencies } from '../../src/activities/index.js';
import { createActivityDependencies } from '../../src/worker/dependencies.js';
import { startWorker, type RunningWorker } from '../../src/worker/worker.js';
import { FakeGoogle } from '../fakes/fake-google.js';
import { eventually } from '../support/eventually.js';
import { startHarness, testJwtSecret, type Harness } from '../support/harness.js';
import { testEnv } from '../support/env.js';
import { testLogger } from '../support/logs.js';

const { TaskQueueType, PendingActivityState } = proto.temporal.api.enums.v1;

interface AiJobView {
  id: string;
  status: string;
}

// The queue map in practice: each worker serves the domains it is given and polls no other
// queue, and a job whose domains are served by different workers completes across them.
describe('workers serving parts of the queue map', () => {
  let google: FakeGoogle;
  let h: Harness;
  let deps: ActivityDependencies;
  const running: RunningWorker[] = [];

  before(async () => {
    google = new FakeGoogle(async () => undefined);
    await google.start();
    const env = {
      AUTH_JWT_SECRET: testJwtSecret,
      DATA_DIR: path.join(os.tmpdir(), `vlogflow-split-${randomUUID()}`),
      GEMINI_API_KEY: 'test-key',
      GEMINI_BASE_URL: google.url,
    };
    h = await startHarness({ env });
    deps = await createActivityDependencies(loadConfig(env), h.db);
  });
  after(async () => {
    for (const worker of running) await worker.stop();
    await h.stop();
    await google.stop();
  });

  async function serve(queues: TaskQueueDomain[]): Promise<RunningWorker> {
    const worker = await startWorker(
      {
        endpoint: { address: testEnv.temporalAddress },
        namespace: testEnv.temporalNamespace,
        taskQueue: h.taskQueue,
        queues,
        shutdownGraceMs: 2_000,
      },
      deps,
      testLogger(),
    );
    running.push(worker);
    return worker;
  }

  async function stop(worker: RunningWorker): Promise<void> {
    running.splice(running.indexOf(worker), 1);
    await worker.stop();
  }

  /** The domains whose queue lists a poller of the given type. */
  async function polled(type: 'workflow' | 'activity'): Promise<TaskQueueDomain[]> {
    const names = taskQueueNames(h.taskQueue);
    const found: TaskQueueDomain[] = [];
    for (const domain of taskQueueDomains) {
      const answer = await h.temporal.client.workflowService.describeTaskQueue({
        namespace: testEnv.temporalNamespace,
        taskQueue: { name: names[domain] },
        taskQueueType:
          type === 'workflow'
            ? TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
            : TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
      });
      if (answer.pollers.length > 0) found.push(domain);
    }
    return found;
  }

  it('a worker given some domains polls their queues and no other', async () => {
    const worker = await serve(['text-generation', 'transfer']);
    assert.deepEqual(worker.queues, [
      { domain: 'text-generation', taskQueue: `${h.taskQueue}-text-generation` },
      { domain: 'transfer', taskQueue: `${h.taskQueue}-transfer` },
    ]);
    const activityQueues = await eventually(
      () => polled('activity'),
      (domains) => domains.length >= 2,
      { what: 'the worker polling its queues' },
    );
    assert.deepEqual(activityQueues, ['text-generation', 'transfer']);
    assert.deepEqual(await polled('workflow'), []);
    await stop(worker);
  });

  it('a job completes with its workflow on one worker and its model call on another', async () => {
    await serve(['workflows']);
    const ada = h.user('ada');
    const job = await ada.startJob<AiJobView>('ai', {
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Learn to juggle', maxItems: 2 },
    });
    // Only a worker serving text-generation runs the model call: it waits on that queue.
    const pending = await eventually(
      async () =>
        (await h.temporal.client.workflow.getHandle(job.id).describe()).raw.pendingActivities ?? [],
      (activities) =>
        activities.some((activity) => activity.activityType?.name === 'generateAiItems'),
      { what: 'the model call scheduled' },
    );
    assert.equal(pending[0]?.state, PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED);
    assert.equal(google.calls.streamGenerateContent, 0);

    await serve(['text-generation']);
    const done = await ada.awaitJob<AiJobView>(
      'ai',
      job.id,
      (view) => ['completed', 'failed'].includes(view.status),
      { what: 'the AI job done' },
    );
    assert.equal(done.status, 'completed');
    assert.equal(google.calls.streamGenerateContent, 1);
  });
});
