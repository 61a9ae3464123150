import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TaskQueueDomain } from '../../src/capacity/task-queues.js';
import { loadConfig } from '../../src/config.js';
import type { ActivityDependencies } from '../../src/activities/index.js';
import { createActivityDependencies } from '../../src/worker/dependencies.js';
import { startWorker, type RunningWorker } from '../../src/worker/worker.js';
import { FakeGoogle } from '../fakes/fake-google.js';
import { eventually } from '../support/eventually.js';
import { startHarness, testJwtSecret, type Harness } from '../support/harness.js';
import { testEnv } from '../support/env.js';
import { testLogger } from '../support/logs.js';

interface AiJobView {
  id: string;
  status: string;
  phase: string | null;
  waitingForWorker?: { queue: string; taskQueue: string; message: string };
}

// Honest status with workers missing: an API started alone, or workers that leave a domain of
// the queue map out. The job's own read says which queue has no worker, and stops saying it
// once a worker serves that queue.
describe('a job waiting for a worker that is not there', () => {
  let google: FakeGoogle;
  let h: Harness;
  let deps: ActivityDependencies;
  let api: string;
  const running: RunningWorker[] = [];

  before(async () => {
    google = new FakeGoogle(async () => undefined);
    await google.start();
    const env = {
      AUTH_JWT_SECRET: testJwtSecret,
      DATA_DIR: path.join(os.tmpdir(), `vlogflow-waits-${randomUUID()}`),
      GEMINI_API_KEY: 'test-key',
      GEMINI_BASE_URL: google.url,
    };
    // Keep-alives every half second, so the stream's say what the job waits for at once.
    h = await startHarness({ env: { ...env, EVENT_STREAM_KEEPALIVE_MS: '500' } });
    api = await h.api.listen();
    deps = await createActivityDependencies(loadConfig(env), h.db);
  });
  after(async () => {
    for (const worker of running) await worker.stop();
    await h.stop();
    await google.stop();
  });

  async function serve(queues: TaskQueueDomain[]): Promise<void> {
    running.push(
      await startWorker(
        {
          endpoint: { address: testEnv.temporalAddress },
          namespace: testEnv.temporalNamespace,
          taskQueue: h.taskQueue,
          queues,
          shutdownGraceMs: 2_000,
        },
        deps,
        testLogger(),
      ),
    );
  }

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
    // The generic read is a job view too.
    const generic = (await ada.get(`/api/jobs/${job.id}`)).json<AiJobView>();
    assert.equal(generic.waitingForWorker?.queue, 'workflows');
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
    const done = await ada.awaitJob<AiJobView>(
      'ai',
      job.id,
      (view) => ['completed', 'failed'].includes(view.status),
      { what: 'the AI job done' },
    );
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
