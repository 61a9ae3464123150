import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Context } from '@temporalio/activity';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { AiJobInput, AiJobRequest } from '../../src/kinds/ai/declaration.js';
import { findOwnedJob } from '../../src/db/jobs.js';
import type { aiGenerationJob } from '../../src/workflows/index.js';
import { FakeGoogle } from '../fakes/fake-google.js';
import { aiActivitiesOnFakeGoogle } from '../support/ai-activities.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { testEnv } from '../support/env.js';
import { jobRecord } from '../support/jobs.js';
import { testTemporal, uniqueTaskQueue } from '../support/temporal.js';
import { sourceWorkflowBundle } from '../../src/worker/workflow-bundles.js';

// A worker that freezes mid-call (a stuck event loop, a paused VM) sends no heartbeats: after
// the job's heartbeat timeout Temporal gives the call to another attempt, which completes.
describe('AI job with a frozen generation', () => {
  let test: TestDatabase;
  let google: FakeGoogle;
  const temporal = testTemporal();

  before(async () => {
    test = await createTestDatabase();
    google = new FakeGoogle(async () => undefined);
    await google.start();
  });
  after(async () => {
    await temporal.close();
    await test.drop();
    await google.stop();
  });

  it('retries the call once the heartbeat timeout passes without a heartbeat, and completes', async () => {
    const { activities, attempts } = aiActivitiesOnFakeGoogle(
      test.db,
      google,
      async (attempt, generate) => {
        // Frozen: neither answers nor heartbeats, until the worker shuts down.
        if (attempt === 1) await Context.current().cancelled;
        return generate();
      },
    );
    const taskQueue = uniqueTaskQueue('ai-heartbeat');
    const connection = await NativeConnection.connect({ address: testEnv.temporalAddress });
    const worker = await Worker.create({
      connection,
      namespace: testEnv.temporalNamespace,
      taskQueue,
      workflowBundle: await sourceWorkflowBundle(false),
      activities,
      shutdownGraceTime: '1s',
    });
    const input: AiJobInput = {
      job: jobRecord<AiJobRequest['input']>({
        id: `ai-${crypto.randomUUID()}`,
        kind: 'ai',
        type: 'TASK_GENERATION',
        input: {
          goal: 'Move abroad',
          subGoal: 'Find a flat',
          action: 'Visit flats',
          maxItems: 2,
          language: 'en',
        },
      }),
      attempt: 1,
      seq: 0,
      settings: {
        timeoutMs: 60_000,
        heartbeatTimeoutMs: 2_000,
        retryWindowMs: 60_000,
        providerRetry: { initialIntervalMs: 100, maximumIntervalMs: 1_000, maximumAttempts: 3 },
      },
    };
    const started = Date.now();
    const result = await worker.runUntil(async () =>
      temporal.client.workflow.execute<typeof aiGenerationJob>('aiGenerationJob', {
        taskQueue,
        workflowId: input.job.id,
        args: [input],
      }),
    );
    await connection.close();
    assert.deepEqual(attempts, [1, 2]);
    assert.ok(Date.now() - started >= 2_000, 'the retry waited for the heartbeat timeout');
    assert.equal(result.items.length, 2);
    assert.ok(result.items.every((item) => typeof item.estimatedMinutes === 'number'));
    const row = await findOwnedJob(test.db, input.job.ownerId, input.job.id);
    assert.equal(row?.status, 'completed');
    assert.equal(row?.progress, 100);
    assert.equal(
      google.calls.streamGenerateContent,
      1,
      'only the second attempt reached the model',
    );
  });
});
