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
import { createActivityDependencies } from '../../src/worker/dependencies.js';
import { startWorker, type RunningWorker } from '../../src/worker/worker.js';
import { FakeGoogle } from '../fakes/fake-google.js';
import { eventually } from '../support/eventually.js';
import { startHarness, testJwtSecret, type Harness, type UserClient } from '../support/harness.js';
import { testEnv } from '../support/env.js';
import { testLogger } from '../support/logs.js';

const { TaskQueueType, PendingActivityState } = proto.temporal.api.enums.v1;

interface AiJobView {
  id: string;
  status: string;
  waitingForWorker?: { queue: string; taskQueue: string; message: string };
}

/** The AI job's view once it has completed or failed. */
function aiJobEnded(user: UserClient, id: string): Promise<AiJobView> {
  return user.awaitJob<AiJobView>(
    'ai',
    id,
    (view) => ['completed', 'failed'].includes(view.status),
    { what: 'the AI job done' },
  );
}

/** An API on a task queue of its own, no worker, and workers started on demand for some domains. */
interface SplitStack {
  h: Harness;
  google: FakeGoogle;
  /** Starts a worker serving `queues` (stopped with the stack). */
  serve(queues: TaskQueueDomain[]): Promise<RunningWorker>;
  /** Stops a worker `serve` started. */
  stopWorker(worker: RunningWorker): Promise<void>;
  stop(): Promise<void>;
}

async function startSplitStack(env: Record<string, string> = {}): Promise<SplitStack> {
  const google = new FakeGoogle(async () => undefined);
  await google.start();
  const settings = {
    AUTH_JWT_SECRET: testJwtSecret,
    DATA_DIR: path.join(os.tmpdir(), `vlogflow-split-${randomUUID()}`),
    GEMINI_API_KEY: 'test-key',
    GEMINI_BASE_URL: google.url,
    ...env,
  };
  const h = await startHarness({ env: settings });
  const deps = await createActivityDependencies(loadConfig(settings), h.db);
  const running: RunningWorker[] = [];
  return {
    h,
    google,
    async serve(queues) {
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
    },
    async stopWorker(worker) {
      running.splice(running.indexOf(worker), 1);
      await worker.stop();
    },
    async stop() {
      for (const worker of running) await worker.stop();
      await h.stop();
      await google.stop();
    },
  };
}

// The queue map in practice: each worker serves the domains it is given and polls no other
// queue, and a job whose domains are served by different workers completes across them.
describe('workers serving parts of the queue map', () => {
  let stack: SplitStack;
  let h: Harness;
  let google: FakeGoogle;
  const serve = (queues: TaskQueueDomain[]) => stack.serve(queues);

  before(async () => {
    stack = await startSplitStack();
    ({ h, google } = stack);
  });
  after(() => stack.stop());

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
    await stack.stopWorker(worker);
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
    const done = await aiJobEnded(ada, job.id);
    assert.equal(done.status, 'completed');
    assert.equal(google.calls.streamGenerateContent, 1);
  });
});

// Honest status with workers missing: an API started alone, or workers that leave a domain of
// the queue map out. The job's own read says which queue has no worker, and stops saying it
// once a worker serves that queue.
// A stack of its own: a worker stopped in the tests above counts as polling for 90 s after.
describe('a job waiting for a worker that is not there', () => {
  let stack: SplitStack;
  let h: Harness;
  let google: FakeGoogle;
  let api: string;
  const serve = (queues: TaskQueueDomain[]) => stack.serve(queues);

  before(async () => {
    // Keep-alives every half second, so the stream's say what the job waits for at once.
    stack = await startSplitStack({ EVENT_STREAM_KEEPALIVE_MS: '500' });
    ({ h, google } = stack);
    api = await h.api.listen();
  });
  after(() => stack.stop());

  /** The `waitingForWorker` of the first keep-alive of the job's stream that has one. */
  async function keepAliveWaiting(id: string): Promise<unknown> {
    const response = await fetch(`${api}/api/ai/jobs/${id}/events`, {
      headers: { authorization: await h.user('ada').authorization() },
      signal: AbortSignal.timeout(30_000),
    });
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    try {
      for (;;) {
        for (const [, data] of text.matchAll(/event: keepalive\ndata: (.*)\n\n/g)) {
          const { waitingForWorker } = JSON.parse(data!) as { waitingForWorker?: unknown };
          if (waitingForWorker) return waitingForWorker;
        }
        const chunk = await reader.read();
        assert.ok(!chunk.done, `the stream ended: ${text}`);
        text += chunk.value;
      }
    } finally {
      await reader.cancel();
    }
  }

  it('names the queue without a worker in the job read, from no worker at all to a missing domain to none missing', async () => {
    const ada = h.user('ada');
    const job = await ada.startJob<AiJobView>('ai', {
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Learn to juggle', maxItems: 2 },
    });
    const read = async () => {
      const response = await ada.get(`/api/ai/jobs/${job.id}`);
      assert.equal(response.statusCode, 200, response.body);
      return response.json<AiJobView>();
    };

    const alone = await eventually(read, (view) => view.waitingForWorker !== undefined, {
      what: 'the read naming the workflows queue',
    });
    assert.equal(alone.status, 'pending');
    assert.deepEqual(alone.waitingForWorker, {
      queue: 'workflows',
      taskQueue: h.taskQueue,
      message: `No worker polls the workflows queue (${h.taskQueue}): this job does not move until one does`,
    });
    // The generic read is a job view too, and so is each job of a list.
    const generic = (await ada.get(`/api/jobs/${job.id}`)).json<AiJobView>();
    assert.equal(generic.waitingForWorker?.queue, 'workflows');
    for (const list of ['/api/jobs', '/api/ai/jobs']) {
      const { jobs } = (await ada.get(list)).json<{ jobs: AiJobView[] }>();
      const listed = jobs.find((each) => each.id === job.id);
      assert.deepEqual(listed?.waitingForWorker, alone.waitingForWorker, list);
    }
    // A stream sends such a job no event: its keep-alives say why.
    assert.deepEqual(await keepAliveWaiting(job.id), alone.waitingForWorker);

    // A worker of workflows only: the job starts its model call, which waits on text-generation.
    await serve(['workflows']);
    const missingDomain = await eventually(
      read,
      (view) => view.waitingForWorker?.queue === 'text-generation',
      { what: 'the read naming the text-generation queue' },
    );
    assert.equal(missingDomain.status, 'processing');
    assert.deepEqual(missingDomain.waitingForWorker, {
      queue: 'text-generation',
      taskQueue: `${h.taskQueue}-text-generation`,
      message: `No worker polls the text-generation queue (${h.taskQueue}-text-generation), where this job's next task waits: it does not move until one does`,
    });
    assert.equal(google.calls.streamGenerateContent, 0);

    await serve(['text-generation']);
    const done = await aiJobEnded(ada, job.id);
    assert.equal(done.status, 'completed');
    assert.equal(done.waitingForWorker, undefined);

    // With every queue served, a job in flight reads without the field.
    const next = await ada.startJob<AiJobView>('ai', {
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Learn to cook', maxItems: 2 },
    });
    assert.equal(next.waitingForWorker, undefined);
  });
});
