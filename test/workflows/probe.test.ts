import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CancelledFailure, WorkflowFailedError } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import pg from 'pg';
import proto from '@temporalio/proto';
import { findOwnedJob, insertJob } from '../../src/db/jobs.js';
import { readJobEvents } from '../../src/db/job-events.js';
import { JobStatusKey } from '../../src/jobs/search-attributes.js';
import { jobProgressQuery } from '../../src/workflows/job-messages.js';
import type { probeJob } from '../../src/workflows/index.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventually } from '../support/eventually.js';
import { jobRecord } from '../support/jobs.js';
import { testTemporal, uniqueTaskQueue, withWorker } from '../support/temporal.js';
import { sourceWorkflowBundle } from '../../src/worker/workflow-bundles.js';

describe('probe workflow', () => {
  let test: TestDatabase;
  const temporal = testTemporal();
  const client = temporal.client;
  const taskQueue = uniqueTaskQueue('probe-workflow');
  before(async () => {
    test = await createTestDatabase();
  });
  after(async () => {
    await temporal.close();
    await test.drop();
  });

  /** A job's state events in order, read as the progress stream reads them. */
  const eventsOf = async (jobId: string) =>
    (await readJobEvents(test.db, [{ jobId, afterSeq: -1 }], 100)).map(({ event }) => event);

  it('takes the projection patches without markers when its record says they apply, and asks patched() otherwise; writes the states made before it waits together', async () => {
    const applied = jobRecord({
      input: { steps: 1, stepDelayMs: 0 },
      projectionPatchesApplied: true,
    });
    const asked = jobRecord({ input: { steps: 1, stepDelayMs: 0 } });
    await withWorker(taskQueue, { db: test.db }, async () => {
      for (const job of [applied, asked]) {
        const handle = await client.workflow.start<typeof probeJob>('probeJob', {
          taskQueue,
          workflowId: job.id,
          args: [{ job }],
        });
        assert.deepEqual(await handle.result(), { stepsCompleted: 1 });
        assert.equal((await findOwnedJob(test.db, job.ownerId, job.id))?.status, 'completed');
      }
    });
    const shapeOf = async (id: string) => {
      const events = (await client.workflow.getHandle(id).fetchHistory()).events ?? [];
      const markers = (name: string) =>
        events.filter((event) => event.markerRecordedEventAttributes?.markerName === name).length;
      return {
        patches: markers('core_patch'),
        localActivities: markers('core_local_activity'),
        upserts: events.filter((event) => event.upsertWorkflowSearchAttributesEventAttributes)
          .length,
      };
    };
    // Both ask whether writes go behind and whether each waits for the workflow to settle (a
    // marker and a TemporalChangeVersion upsert each), and so write as local activities, the
    // first state with the registration: the first state, the step and the end, made before the
    // run waits on anything, go in one write. Only the run that asked recorded the patch of the
    // first state with the registration. The JobStatus upserts (running, completed) are in both.
    assert.deepEqual(await shapeOf(applied.id), { patches: 2, localActivities: 1, upserts: 4 });
    assert.deepEqual(await shapeOf(asked.id), { patches: 3, localActivities: 1, upserts: 5 });
    for (const job of [applied, asked]) {
      const events = await eventsOf(job.id);
      // Every state is recorded, in order, although they went in one write.
      assert.deepEqual(
        events.map((event) => [event.seq, event.status, event.phase]),
        [
          [0, 'pending', null],
          [1, 'running', null],
          [2, 'running', 'step 1 of 1'],
          [3, 'completed', null],
        ],
      );
    }
  });

  it('registers itself, projects every step and ends completed', async () => {
    const job = jobRecord({ input: { steps: 4, stepDelayMs: 10 } });
    await withWorker(taskQueue, { db: test.db }, async () => {
      const handle = await client.workflow.start<typeof probeJob>('probeJob', {
        taskQueue,
        workflowId: job.id,
        args: [{ job }],
      });
      assert.deepEqual(await handle.result(), { stepsCompleted: 4 });

      const progress = await handle.query(jobProgressQuery);
      assert.equal(progress.status, 'completed');
      assert.equal(progress.progress, 100);
      // running, 4 steps, completed: six states in order.
      assert.equal(progress.seq, 6);

      const description = await handle.describe();
      assert.equal(description.typedSearchAttributes.get(JobStatusKey), 'completed');

      const row = await findOwnedJob(test.db, job.ownerId, job.id);
      assert.equal(row?.status, 'completed');
      assert.equal(row?.progress, 100);
      assert.equal(row?.projection_seq, 6);
      assert.deepEqual(row?.result, { stepsCompleted: 4 });
      assert.equal(row?.run_id, handle.firstExecutionRunId);
      assert.ok(row?.started_at && row.completed_at && row.started_at <= row.completed_at);

      // Five projection writes for six states: the first (with the job's registration, as the
      // row did not exist: no API wrote it here), one after each of the first three steps'
      // timers, and the last step's with the end, made together.
      const history = await handle.fetchHistory();
      const localActivities = (history.events ?? []).filter(
        (event) => event.markerRecordedEventAttributes?.markerName === 'core_local_activity',
      );
      assert.equal(localActivities.length, 5);
      const events = await eventsOf(job.id);
      assert.deepEqual(
        events.map((event) => [event.seq, event.status]),
        [
          [0, 'pending'],
          [1, 'running'],
          [2, 'running'],
          [3, 'running'],
          [4, 'running'],
          [5, 'running'],
          [6, 'completed'],
        ],
      );

      // The recorded history replays against the current code without nondeterminism.
      await Worker.runReplayHistory(
        { workflowBundle: await sourceWorkflowBundle(false) },
        history,
        job.id,
      );
    });
  });

  it('ends cancelled, with the reason recorded, when the workflow is cancelled mid-step', async () => {
    const job = jobRecord({ input: { steps: 3, stepDelayMs: 60_000 } });
    await withWorker(taskQueue, { db: test.db }, async () => {
      const handle = await client.workflow.start<typeof probeJob>('probeJob', {
        taskQueue,
        workflowId: job.id,
        args: [{ job }],
      });
      await eventually(
        () => findOwnedJob(test.db, job.ownerId, job.id),
        (row) => row?.status === 'running',
        { what: 'probe running' },
      );
      await handle.cancel();
      await assert.rejects(handle.result(), WorkflowFailedError);
      const row = await findOwnedJob(test.db, job.ownerId, job.id);
      assert.equal(row?.status, 'cancelled');
      assert.equal(row?.error_code, 'CANCELLED');
      assert.ok(row?.completed_at);
      const description = await handle.describe();
      assert.equal(description.typedSearchAttributes.get(JobStatusKey), 'cancelled');
    });
  });

  it('leaves a projection write under way alone when the job is cancelled meanwhile, and ends cancelled once it is written', async () => {
    // The API's row, held by another transaction: the run's first write (its running state)
    // waits on it. A short task timeout makes Core heartbeat the workflow task held open by
    // that write, so the cancel reaches the workflow while the write is still under way.
    const job = jobRecord({
      input: { steps: 2, stepDelayMs: 60_000 },
      projectionPatchesApplied: true,
    });
    await insertJob(test.db, job, 'pending');
    const holder = new pg.Client({ connectionString: test.url });
    await holder.connect();
    let held = false;
    // Released before the worker stops, whatever failed: its shutdown waits for the write.
    const release = async () => {
      if (held) await holder.query('rollback');
      held = false;
    };
    try {
      await holder.query('begin');
      await holder.query('select id from jobs where id = $1 for update', [job.id]);
      held = true;
      await withWorker(taskQueue, { db: test.db }, async () => {
        try {
          const handle = await client.workflow.start<typeof probeJob>('probeJob', {
            taskQueue,
            workflowId: job.id,
            args: [{ job }],
            workflowTaskTimeout: '2s',
          });
          await eventually(
            async () =>
              (
                await holder.query<{ waiting: number }>(
                  `select count(*)::int as waiting from pg_stat_activity
                  where datname = current_database() and wait_event_type = 'Lock'`,
                )
              ).rows[0]?.waiting,
            (waiting) => (waiting ?? 0) >= 1,
            { what: 'the first projection write waiting on the row' },
          );
          await handle.cancel();
          const eventTypes = async () =>
            ((await handle.fetchHistory()).events ?? []).map((event) => event.eventType);
          // The cancel reached the workflow: the step's timer is cancelled, the write still waits.
          await eventually(
            eventTypes,
            (types) =>
              types.includes(proto.temporal.api.enums.v1.EventType.EVENT_TYPE_TIMER_CANCELED),
            { what: "the step's timer cancelled", timeoutMs: 30_000 },
          );
          assert.equal((await findOwnedJob(test.db, job.ownerId, job.id))?.status, 'pending');
          await release();

          const failure = await handle.result().then(
            () => assert.fail('the cancelled probe completed'),
            (error: unknown) => error,
          );
          assert.ok(failure instanceof WorkflowFailedError);
          assert.ok(failure.cause instanceof CancelledFailure);
          const row = await findOwnedJob(test.db, job.ownerId, job.id);
          assert.equal(row?.status, 'cancelled');
          assert.equal(row?.error_code, 'CANCELLED');
          // The write under way was made, not dropped: its state is recorded before the end.
          assert.deepEqual(
            (await eventsOf(job.id)).map((event) => [event.seq, event.status]),
            [
              [0, 'pending'],
              [1, 'running'],
              [2, 'cancelled'],
            ],
          );
        } finally {
          await release();
        }
      });
    } finally {
      await holder.end();
    }
  });
});
