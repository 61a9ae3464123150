import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createJobReconcilerActivities } from '../../src/activities/job-reconciler.js';
import type { ReconcileJobBatchInput, ReconcileJobBatchResult } from '../../src/jobs/contracts.js';
import { jobReconcileBatches } from '../../src/metrics/metrics.js';
import type { ActivityDependencies } from '../../src/activities/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
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
