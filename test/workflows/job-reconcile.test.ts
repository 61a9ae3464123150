import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import type {
  JobReconcileInput,
  JobReconcileResult,
  ReconcileJobBatchInput,
  ReconcileJobBatchResult,
} from '../../src/jobs/contracts.js';
import { testEnv } from '../support/env.js';
import { runScheduledOnce, testTemporal, uniqueTaskQueue } from '../support/temporal.js';
import { sourceWorkflowBundle } from '../../src/worker/workflow-bundles.js';

// The reconciler's way through a backlog, against a batch activity over a list of ids: each
// run goes on after the id the previous one reached (handed over by the schedule), goes round
// at the last id and stops where it started, never past its batches.
describe('reconcileJobProjections over a backlog', () => {
  const temporal = testTemporal();
  const client = temporal.client;
  const taskQueue = uniqueTaskQueue('job-reconcile');
  const scheduleId = `job-reconcile-test-${randomUUID()}`;
  const input: JobReconcileInput = { staleMs: 0, batchSize: 2, maxBatchesPerRun: 3 };
  /** The quiet jobs in flight, in the database's order. */
  let ids = ['job-1', 'job-2', 'job-3', 'job-4', 'job-5', 'job-6', 'job-7'];
  /** The jobs each batch checked, by run. */
  const batches: string[][][] = [];
  /** The run each call to free the leases left running came in, its batches done. */
  const leaseRounds: number[] = [];
  /** What each call to release the cost holds left open asked for, and the lease rounds before it. */
  const holdRounds: { staleMs: number; limit: number; afterLeaseRounds: number }[] = [];
  let connection: NativeConnection;
  let worker: Worker;
  let running: Promise<void>;

  before(async () => {
    const reconcileJobBatch = async (
      batch: ReconcileJobBatchInput,
    ): Promise<ReconcileJobBatchResult> => {
      const jobs = ids
        .filter((id) => batch.afterId === null || id > batch.afterId)
        .filter((id) => batch.throughId === undefined || id <= batch.throughId)
        .slice(0, batch.limit);
      batches.at(-1)!.push(jobs);
      return { checked: jobs.length, ended: 0, followed: 0, lastId: jobs.at(-1) ?? null };
    };
    const freeLeasesLeftRunning = async (): Promise<{ freed: number }> => {
      leaseRounds.push(batches.length);
      // The first run's fails for good: its batches' result stands all the same.
      if (leaseRounds.length === 1) throw ApplicationFailure.nonRetryable('the provider is down');
      return { freed: 0 };
    };
    const releaseCostHoldsLeftOpen = async (query: { staleMs: number; limit: number }) => {
      holdRounds.push({ ...query, afterLeaseRounds: leaseRounds.length });
      return { checked: 0, released: 0 };
    };
    connection = await NativeConnection.connect({ address: testEnv.temporalAddress });
    worker = await Worker.create({
      connection,
      namespace: testEnv.temporalNamespace,
      taskQueue,
      workflowBundle: await sourceWorkflowBundle(false),
      activities: { reconcileJobBatch, freeLeasesLeftRunning, releaseCostHoldsLeftOpen },
      shutdownGraceTime: '1s',
    });
    running = worker.run();
    await client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every: '1 day' }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'reconcileJobProjections',
        workflowId: scheduleId,
        taskQueue,
        args: [input],
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
      // Only the test's triggers start runs.
      state: { paused: true },
    });
  });
  after(async () => {
    await client.schedule
      .getHandle(scheduleId)
      .delete()
      .catch(() => undefined);
    worker.shutdown();
    await running;
    await connection.close();
    await temporal.close();
  });

  /** Triggers one run as the schedule starts it, and answers its result once it completed. */
  async function scheduledRun(): Promise<JobReconcileResult> {
    batches.push([]);
    return (await runScheduledOnce<JobReconcileResult>(client, scheduleId)).result;
  }

  it('goes on where the previous run stopped, goes round at the last id and stops where it started, then frees leases left running and releases cost holds left open', async () => {
    assert.deepEqual(await scheduledRun(), {
      checked: 6,
      ended: 0,
      followed: 0,
      complete: false,
      resumeAfterId: 'job-6',
    });
    assert.deepEqual(await scheduledRun(), {
      checked: 5,
      ended: 0,
      followed: 0,
      complete: false,
      resumeAfterId: 'job-4',
    });
    // Fewer jobs quiet now: the run goes round and reaches where it started within its batches.
    ids = ['job-3', 'job-5', 'job-6'];
    assert.deepEqual(await scheduledRun(), {
      checked: 3,
      ended: 0,
      followed: 0,
      complete: true,
      resumeAfterId: null,
    });
    assert.deepEqual(await scheduledRun(), {
      checked: 3,
      ended: 0,
      followed: 0,
      complete: true,
      resumeAfterId: null,
    });
    assert.deepEqual(batches, [
      [
        ['job-1', 'job-2'],
        ['job-3', 'job-4'],
        ['job-5', 'job-6'],
      ],
      [['job-7'], ['job-1', 'job-2'], ['job-3', 'job-4']],
      [['job-5', 'job-6'], [], ['job-3']],
      [['job-3', 'job-5'], ['job-6']],
    ]);
    assert.deepEqual(leaseRounds, [1, 2, 3, 4]);
    // Last in each run, the first run's too, whose lease step failed.
    assert.deepEqual(
      holdRounds,
      [1, 2, 3, 4].map((afterLeaseRounds) => ({
        staleMs: input.staleMs,
        limit: input.batchSize,
        afterLeaseRounds,
      })),
    );
  });
});
