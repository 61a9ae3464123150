import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Counter } from 'prom-client';
import type { JobSnapshot } from '../../src/jobs/contracts.js';
import {
  applyJobUpdate,
  endJobInFlight,
  followResetRun,
  insertJob,
  waitingJobsByKind,
} from '../../src/db/jobs.js';
import { countJobTransition } from '../../src/metrics/job-metrics.js';
import { jobsFinished, jobsStarted } from '../../src/metrics/metrics.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { jobRecord, jobSnapshot } from '../support/jobs.js';

/** A counter's value summed over the series whose labels include `labels`. */
async function total(counter: Counter<string>, labels: Record<string, string> = {}) {
  const { values } = await counter.get();
  return values
    .filter((sample) =>
      Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
    )
    .reduce((sum, sample) => sum + sample.value, 0);
}

/** The job counters of the probe kind, to compare before and after. */
async function probeCounts() {
  const kind = { kind: 'probe' };
  return {
    started: await total(jobsStarted, kind),
    finished: await total(jobsFinished, kind),
    completed: await total(jobsFinished, { ...kind, outcome: 'completed' }),
  };
}

describe('job metrics through the projection', () => {
  let test: TestDatabase;
  before(async () => {
    test = await createTestDatabase();
  });
  after(() => test.drop());

  /** A new probe job, and how to project its workflow's updates as the worker does. */
  async function projectedJob() {
    const job = jobRecord();
    await insertJob(test.db, job, 'pending');
    const apply = async (seq: number, historyLength: number, change: Partial<JobSnapshot>) => {
      const update = { jobId: job.id, seq, historyLength, snapshot: jobSnapshot(change) };
      const applied = await applyJobUpdate(test.db, update);
      if (applied) countJobTransition(update, applied);
      return applied;
    };
    return { job, apply };
  }

  it('counts one start and one end per attempt when an end is superseded and the job is retried', async () => {
    const before = await probeCounts();
    const { apply } = await projectedJob();
    const failure = { code: 'PROVIDER_ERROR', message: 'it broke' };
    await apply(1, 5, { status: 'running' });
    // A refused workflow task projected an end that never happened; its replacement, the failure.
    await apply(2, 11, { status: 'cancelled' });
    assert.ok(await apply(2, 15, { status: 'failed', error: failure }));
    // Retried: the second attempt waits, starts and completes.
    await apply(3, 3, { status: 'pending', attempt: 2 });
    await apply(4, 6, { status: 'running', attempt: 2 });
    // Its end too is first a phantom one, superseded by the attempt going on.
    await apply(5, 10, { status: 'completed', attempt: 2 });
    assert.ok(await apply(5, 14, { status: 'running', attempt: 2, progress: 50 }));
    await apply(6, 20, { status: 'completed', attempt: 2, progress: 100 });

    const now = await probeCounts();
    assert.deepEqual(
      {
        started: now.started - before.started,
        finished: now.finished - before.finished,
        completed: now.completed - before.completed,
      },
      { started: 2, finished: 2, completed: 1 },
    );
  });

  it('counts no second end when a reset run ends a job the reconciler had ended', async () => {
    const before = await probeCounts();
    const { job, apply } = await projectedJob();
    await apply(1, 5, { status: 'running', runId: 'run-1' });
    const terminated = jobSnapshot({
      status: 'failed',
      runId: 'run-1',
      error: { code: 'WORKFLOW_TERMINATED', message: 'The workflow was terminated in Temporal' },
    });
    const ended = await endJobInFlight(test.db, {
      jobId: job.id,
      expectedSeq: 1,
      snapshot: terminated,
    });
    assert.ok(ended);
    countJobTransition({ jobId: job.id, seq: 2, snapshot: terminated }, ended);
    assert.ok(
      await followResetRun(test.db, {
        jobId: job.id,
        fromRunId: 'run-1',
        expectedSeq: 2,
        runId: 'run-2',
        endedWith: ['WORKFLOW_TERMINATED'],
      }),
    );
    await apply(1, 5, { status: 'running', runId: 'run-2' });
    await apply(2, 9, { status: 'completed', runId: 'run-2', progress: 100 });

    const now = await probeCounts();
    assert.deepEqual(
      [now.started - before.started, now.finished - before.finished],
      [1, 1],
      'one attempt: one start, one end',
    );
  });

  it('shows a job whose phantom end was superseded by its wait in line as waiting', async () => {
    const { job, apply } = await projectedJob();
    const waiting = async () =>
      (await waitingJobsByKind(test.db))
        .filter((row) => row.kind === job.kind)
        .reduce((sum, row) => sum + row.count, 0);
    const before = await waiting();
    await apply(1, 5, { status: 'queued' });
    await apply(2, 9, { status: 'cancelled' });
    assert.equal(await waiting(), before - 1);
    await apply(2, 12, { status: 'queued', phase: 'behind 1 job' });
    assert.equal(await waiting(), before);
  });
});
