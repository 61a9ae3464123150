import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createJobReconcilerActivities } from '../../src/activities/job-reconciler.js';
import type { ReconcileJobBatchInput, ReconcileJobBatchResult } from '../../src/jobs/contracts.js';
import { applyJobUpdate, insertJob } from '../../src/db/jobs.js';
import { keepModelAnswer } from '../../src/db/model-answers.js';
import { jobReconcileBatches } from '../../src/metrics/metrics.js';
import type { ActivityDependencies } from '../../src/activities/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { jobRecord, jobSnapshot } from '../support/jobs.js';
import { testTemporal } from '../support/temporal.js';

/** `vlogflow_job_reconcile_batches_total` of one outcome, as this process counts it. */
async function batches(outcome: 'completed' | 'failed'): Promise<number | undefined> {
  const { values } = await jobReconcileBatches.get();
  return values.find((value) => value.labels.outcome === outcome)?.value;
}

// A reconciler that fails every run, or no longer runs, must show: otherwise jobs closed
// outside their code stay in flight and their provider leases stay held, and nothing says so.
describe('reconcileJobBatch counts its batches', () => {
  const temporal = testTemporal();
  let database: TestDatabase;
  const input: ReconcileJobBatchInput = { staleMs: 60_000, limit: 10, afterId: null };

  before(async () => {
    database = await createTestDatabase();
  });
  after(async () => {
    await database.drop().catch(() => undefined);
    await temporal.close();
  });

  const reconcileJobBatch = (db = database.db): Promise<ReconcileJobBatchResult> => {
    const activities = createJobReconcilerActivities({
      db,
      temporalClient: temporal.client,
    } as unknown as ActivityDependencies);
    return new MockActivityEnvironment({ activityType: 'reconcileJobBatch' }).run(
      (given: ReconcileJobBatchInput): Promise<ReconcileJobBatchResult> =>
        activities.reconcileJobBatch(given),
      input,
    );
  };

  it('at 0 for each outcome before any batch, so the first is an increase', async () => {
    createJobReconcilerActivities({
      db: database.db,
      temporalClient: temporal.client,
    } as unknown as ActivityDependencies);
    assert.equal(typeof (await batches('completed')), 'number');
    assert.equal(typeof (await batches('failed')), 'number');
  });

  it('completed, for a batch that checked the jobs in flight', async () => {
    const before = { completed: await batches('completed'), failed: await batches('failed') };
    const result = await reconcileJobBatch();
    assert.equal(result.checked, 0);
    assert.deepEqual(
      { completed: await batches('completed'), failed: await batches('failed') },
      { completed: before.completed! + 1, failed: before.failed },
    );
  });

  it("forgets a model answer kept as its attempt's end was written, which the end could not see", async () => {
    const jobId = `vlog-${randomUUID()}`;
    await insertJob(database.db, jobRecord({ id: jobId, kind: 'vlog', type: 'VLOG' }), 'analyzing');
    const keptAnswers = () =>
      database.db.selectFrom('model_answers').select('call_key').where('job_id', '=', jobId);
    // The analysis keeps its answer while the vlog is cancelled: the end's statement begins
    // before the answer's write commits, so its delete of the attempt's answers does not see it.
    await database.db.transaction().execute(async (tx) => {
      const kept = await keepModelAnswer(tx, {
        callKey: `${jobId}:analysis:run-1:analyzeMedia:1`,
        jobId,
        ledgerKey: `${jobId}:analysis:run-1:1:1:1`,
        provider: 'gemini',
        model: 'gemini-2.5-flash',
        inputTokens: 533,
        outputTokens: 129,
        answer: '{"summary":"A day at the beach"}',
      });
      assert.ok(kept);
      const ended = await applyJobUpdate(database.db, {
        jobId,
        seq: 2,
        snapshot: jobSnapshot({ status: 'cancelled', completedAt: new Date().toISOString() }),
      });
      assert.ok(ended, 'the end was projected');
    });
    assert.equal((await keptAnswers().execute()).length, 1, 'the end left the answer behind');

    await reconcileJobBatch();
    assert.deepEqual(await keptAnswers().execute(), [], 'nothing is kept for an ended job');
  });

  it('failed, for a batch that could not read the database', async () => {
    const gone = await createTestDatabase();
    await gone.drop();
    const before = { completed: await batches('completed'), failed: await batches('failed') };
    await assert.rejects(reconcileJobBatch(gone.db));
    assert.deepEqual(
      { completed: await batches('completed'), failed: await batches('failed') },
      { completed: before.completed, failed: before.failed! + 1 },
    );
  });
});
