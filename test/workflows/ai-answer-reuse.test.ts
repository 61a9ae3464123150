import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { Context } from '@temporalio/activity';
import { NativeConnection, Worker } from '@temporalio/worker';
import { jobLedger } from '../../src/db/costs.js';
import { readJobEvents } from '../../src/db/job-events.js';
import { findOwnedJob } from '../../src/db/jobs.js';
import type { AiJobInput, AiJobRequest, AiJobResult } from '../../src/kinds/ai/declaration.js';
import { sourceWorkflowBundle } from '../../src/worker/workflow-bundles.js';
import type { aiGenerationJob } from '../../src/workflows/index.js';
import { FakeGoogle } from '../fakes/fake-google.js';
import { aiActivitiesOnFakeGoogle } from '../support/ai-activities.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { testEnv } from '../support/env.js';
import { eventually } from '../support/eventually.js';
import { jobRecord } from '../support/jobs.js';
import { testTemporal, uniqueTaskQueue } from '../support/temporal.js';

// Never pay twice: a model that has answered (and been charged) for a job attempt is not asked
// again when the activity's result never reaches Temporal. The first attempt here answers and
// is charged, then its worker is lost to Temporal before it reports (it neither completes nor
// heartbeats): after the heartbeat timeout the activity's second attempt runs.
describe('AI job whose answer was not reported', () => {
  let test: TestDatabase;
  let google: FakeGoogle;
  let bundle: Awaited<ReturnType<typeof sourceWorkflowBundle>>;
  const temporal = testTemporal();

  before(async () => {
    test = await createTestDatabase();
    bundle = await sourceWorkflowBundle(false);
  });
  beforeEach(async () => {
    google = new FakeGoogle(async () => undefined);
    await google.start();
  });
  afterEach(() => google.stop());
  after(async () => {
    await temporal.close();
    await test.drop();
  });

  /** Runs an AI job whose generation's first attempt is lost once `lose` says so. */
  async function runJob(lose: 'after-answer' | 'never') {
    const { activities, attempts } = aiActivitiesOnFakeGoogle(
      test.db,
      google,
      async (attempt, generate) => {
        const answer = await generate();
        // Lost between the answer and its report: no result, no heartbeat, until shutdown.
        if (attempt === 1 && lose === 'after-answer') await Context.current().cancelled;
        return answer;
      },
    );
    const taskQueue = uniqueTaskQueue('ai-answer-reuse');
    const connection = await NativeConnection.connect({ address: testEnv.temporalAddress });
    const worker = await Worker.create({
      connection,
      namespace: testEnv.temporalNamespace,
      taskQueue,
      workflowBundle: bundle,
      activities,
      shutdownGraceTime: '1s',
    });
    const input: AiJobInput = {
      job: jobRecord<AiJobRequest['input']>({
        id: `ai-${crypto.randomUUID()}`,
        kind: 'ai',
        type: 'SUBGOAL_GENERATION',
        input: { goal: 'Learn to sail', maxItems: 3, language: 'en' },
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
    try {
      const result: AiJobResult = await worker.runUntil(
        temporal.client.workflow.execute<typeof aiGenerationJob>('aiGenerationJob', {
          taskQueue,
          workflowId: input.job.id,
          args: [input],
        }),
      );
      return { jobId: input.job.id, ownerId: input.job.ownerId, result, attempts };
    } finally {
      await connection.close();
    }
  }

  /** The answers the job's event log spells, one string per answer (offset 0 starts one). */
  async function answersInLog(jobId: string): Promise<string[]> {
    const log = await readJobEvents(test.db, [{ jobId, afterSeq: -1 }], 1_000);
    const answers: string[] = [];
    for (const { event } of log) {
      if (!event.output) continue;
      if (event.output.offset === 0) answers.push('');
      answers[answers.length - 1] += event.output.text;
    }
    return answers;
  }

  it('reuses the charged answer: no second model call, no second charge, the job completes with it', async () => {
    const job = await runJob('after-answer');

    assert.deepEqual(job.attempts, [1, 2], 'the activity ran a second attempt');
    assert.equal(google.calls.streamGenerateContent, 1, 'the model was asked once');
    const ledger = await jobLedger(test.db, job.jobId);
    assert.equal(ledger.length, 1, 'one charge');
    assert.equal(ledger[0]!.kind, 'text');
    const [usage] = google.reportedUsage;
    assert.equal(
      Number(ledger[0]!.output_tokens),
      usage!.candidatesTokenCount! + usage!.thoughtsTokenCount!,
      'charged what the one answer was billed',
    );

    assert.equal(google.streamedAnswers.length, 1);
    const answer = google.streamedAnswers[0]!;
    const { items } = JSON.parse(answer) as { items: { title: string }[] };
    assert.deepEqual(
      job.result.items.map((item) => item.title),
      items.map((item) => item.title),
      'the result is the answer that was paid for',
    );
    const row = await findOwnedJob(test.db, job.ownerId, job.jobId);
    assert.equal(row?.status, 'completed');
    assert.deepEqual(row?.result, job.result);
    // Streamed once as the model wrote it, and again whole by the attempt that reused it.
    await eventually(
      () => answersInLog(job.jobId),
      (answers) => answers.length === 2,
      { what: 'both answers in the event log', timeoutMs: 10_000 },
    );
    assert.deepEqual(await answersInLog(job.jobId), [answer, answer]);
    const kept = await test.db
      .selectFrom('model_answers')
      .select('call_key')
      .where('job_id', '=', job.jobId)
      .execute();
    assert.deepEqual(kept, [], 'the kept answer is forgotten when the job ends');
  });

  it('keeps no answer that was cut off: the retry asks the model again', async () => {
    google.scenario.analysisAnswers.push({
      kind: 'stream-error',
      text: '{"items": [{"title": "Buy',
      failure: { status: 503 },
    });
    const job = await runJob('never');

    assert.deepEqual(job.attempts, [1, 2]);
    assert.equal(google.calls.streamGenerateContent, 2, 'the cut-off answer was asked for again');
    const row = await findOwnedJob(test.db, job.ownerId, job.jobId);
    assert.equal(row?.status, 'completed');
  });
});
