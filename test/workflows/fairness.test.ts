// Fairness: the API starts every job with its owner's fairness key, which its activities
// inherit on whichever domain queue they run, and the dev server runs the fair matcher
// (temporal/dev-server.ts). When one user's backlog of model calls waits on a text-generation
// queue served one call at a time, another user's call must not wait behind all of it.
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import proto from '@temporalio/proto';
import type { ActivityDependencies } from '../../src/activities/index.js';
import { taskQueueNames } from '../../src/capacity/task-queues.js';
import { loadConfig, queueCapacities } from '../../src/config.js';
import { createActivityDependencies } from '../../src/worker/dependencies.js';
import { startWorker, type RunningWorker } from '../../src/worker/worker.js';
import { FakeGoogle } from '../fakes/fake-google.js';
import { eventually } from '../support/eventually.js';
import { startHarness, testJwtSecret, type Harness } from '../support/harness.js';
import { testEnv } from '../support/env.js';
import { testLogger } from '../support/logs.js';

const { TaskQueueType } = proto.temporal.api.enums.v1;

describe('fairness between users', () => {
  let google: FakeGoogle;
  let h: Harness;
  let env: Record<string, string>;
  let deps: ActivityDependencies;
  const running: RunningWorker[] = [];

  before(async () => {
    google = new FakeGoogle(async () => undefined);
    await google.start();
    env = {
      AUTH_JWT_SECRET: testJwtSecret,
      DATA_DIR: path.join(os.tmpdir(), `vlogflow-fairness-${randomUUID()}`),
      GEMINI_API_KEY: 'test-key',
      GEMINI_BASE_URL: google.url,
      USER_MAX_JOBS_IN_FLIGHT: '100',
      // One model call at a time: every other call waits in the server's backlog for it.
      QUEUE_TEXT_GENERATION_SLOTS: '1',
      QUEUE_TEXT_GENERATION_POLLERS: '1',
    };
    h = await startHarness({ env });
    deps = await createActivityDependencies(loadConfig(env), h.db);
  });
  after(async () => {
    for (const worker of running) await worker.stop();
    await h.stop();
    await google.stop();
  });

  async function serve(queues: ('workflows' | 'text-generation')[]): Promise<void> {
    running.push(
      await startWorker(
        {
          endpoint: { address: testEnv.temporalAddress },
          namespace: testEnv.temporalNamespace,
          taskQueue: h.taskQueue,
          queues,
          capacity: queueCapacities(loadConfig(env)),
          shutdownGraceMs: 2_000,
        },
        deps,
        testLogger(),
      ),
    );
  }

  /** Model calls waiting on the text-generation queue, as the server counts them. */
  async function textGenerationBacklog(): Promise<number> {
    const { stats } = await h.temporal.client.workflowService.describeTaskQueue({
      namespace: testEnv.temporalNamespace,
      taskQueue: { name: taskQueueNames(h.taskQueue)['text-generation'] },
      taskQueueType: TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
      reportStats: true,
    });
    return Number(stats?.approximateBacklogCount ?? 0);
  }

  it("runs another user's model call before one user's backlog drains", async () => {
    const backlog = 12;
    const alice = h.user(`alice-${randomUUID()}`);
    const bob = h.user(`bob-${randomUUID()}`);
    const goal = (user: string, index: number) => `Goal ${index} of ${user}`;
    const start = (user: typeof alice, index: number) =>
      user.startJob('ai', {
        type: 'SUBGOAL_GENERATION',
        input: { goal: goal(user.id, index), maxItems: 2 },
      });

    // Workflows run at once; their model calls queue up, as under load, until a worker serves
    // text generation.
    await serve(['workflows']);
    for (let i = 0; i < backlog; i += 1) await start(alice, i);
    await eventually(textGenerationBacklog, (count) => count >= backlog, {
      what: "Alice's model calls waiting on the text-generation queue",
      timeoutMs: 60_000,
      intervalMs: 200,
    });
    await start(bob, 0);
    await eventually(textGenerationBacklog, (count) => count >= backlog + 1, {
      what: "Bob's model call waiting behind Alice's",
      timeoutMs: 60_000,
      intervalMs: 200,
    });

    await serve(['text-generation']);
    await eventually(
      async () => google.paidCalls.length,
      (calls) => calls >= backlog + 1,
      { what: 'every model call made', timeoutMs: 120_000, intervalMs: 200 },
    );

    const owners = google.paidCalls.map(({ subject }) =>
      subject.includes(`of ${bob.id}`) ? 'Bob' : subject.includes(`of ${alice.id}`) ? 'Alice' : '?',
    );
    const calls = (owner: string) => owners.filter((made) => made === owner).length;
    assert.deepEqual([calls('Alice'), calls('Bob')], [backlog, 1], `calls: ${owners.join(', ')}`);
    // In arrival order (no fairness), all of Alice's calls go before Bob's. The fair matcher
    // gives each key its turn: Bob's, the only one of his key, comes among the first.
    const aliceBefore = owners.indexOf('Bob');
    assert.ok(
      aliceBefore <= backlog / 4,
      `Bob's model call was made after ${aliceBefore} of Alice's ${backlog}: ${owners.join(', ')}`,
    );
  });
});
