import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { applyJobUpdate, insertJob } from '../../src/db/jobs.js';
import { claimJobTurn, listJobsAwaitingTurn } from '../../src/db/job-turns.js';
import type { JobStatus } from '../../src/jobs/model.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { jobRecord, jobSnapshot } from '../support/jobs.js';

describe('the line of a concurrency key', () => {
  let test: TestDatabase;
  before(async () => {
    test = await createTestDatabase();
  });
  after(() => test.drop());

  let seq = 0;
  const setStatus = (jobId: string, status: JobStatus, attempt = 1) =>
    applyJobUpdate(test.db, { jobId, seq: (seq += 1), snapshot: jobSnapshot({ status, attempt }) });
  const keyed = (key: string, createdAt: string, ownerId = 'alice') =>
    jobRecord({ concurrencyKey: key, createdAt, ownerId });

  it('gives the turn to one job at a time, even to an earlier job whose row came late', async () => {
    const earlier = keyed('late', '2020-01-01T00:00:00.000Z');
    const later = keyed('late', '2020-01-01T00:00:01.000Z');
    // The later job's row is written first (its API was faster) and it takes the turn.
    await insertJob(test.db, later, 'pending');
    assert.deepEqual(await claimJobTurn(test.db, { jobId: later.id, attempt: 1 }), {
      granted: true,
    });
    await insertJob(test.db, earlier, 'pending');
    assert.deepEqual(await claimJobTurn(test.db, { jobId: earlier.id, attempt: 1 }), {
      granted: false,
      ahead: 1,
    });
    // Asking again for the attempt that holds the turn keeps it.
    assert.deepEqual(await claimJobTurn(test.db, { jobId: later.id, attempt: 1 }), {
      granted: true,
    });
    assert.deepEqual(await listJobsAwaitingTurn(test.db, later.id), [earlier.id]);
    await setStatus(later.id, 'completed');
    assert.deepEqual(await claimJobTurn(test.db, { jobId: earlier.id, attempt: 1 }), {
      granted: true,
    });
  });

  it("keeps owners' lines apart and lets a job without a key run", async () => {
    const alices = keyed('shared', '2020-01-01T00:00:00.000Z', 'alice');
    const bobs = keyed('shared', '2020-01-01T00:00:01.000Z', 'bob');
    const keyless = jobRecord();
    for (const job of [alices, bobs, keyless]) {
      await insertJob(test.db, job, 'pending');
      assert.deepEqual(await claimJobTurn(test.db, { jobId: job.id, attempt: 1 }), {
        granted: true,
      });
    }
    assert.deepEqual(await listJobsAwaitingTurn(test.db, keyless.id), []);
  });

  // A retried job's row is on its next attempt before that attempt asks for the turn: it held
  // up the line as if it still had the turn or its old place, and the job behind it waited for
  // its next timed check (15 s) with nothing running.
  it('lets the line move past a retried job whose new attempt has not asked yet', async () => {
    const [first, second, third] = [0, 1, 2].map((i) =>
      keyed('retried', `2020-01-01T00:00:0${i}.000Z`),
    ) as [ReturnType<typeof keyed>, ReturnType<typeof keyed>, ReturnType<typeof keyed>];
    for (const job of [first, second, third]) await insertJob(test.db, job, 'pending');
    assert.equal((await claimJobTurn(test.db, { jobId: first.id, attempt: 1 })).granted, true);
    await setStatus(first.id, 'failed');
    assert.equal((await claimJobTurn(test.db, { jobId: second.id, attempt: 1 })).granted, true);
    // Retried: its row shows attempt 2 in flight, its turn and place still attempt 1's.
    await setStatus(first.id, 'pending', 2);
    assert.deepEqual(await claimJobTurn(test.db, { jobId: third.id, attempt: 1 }), {
      granted: false,
      ahead: 1,
    });
    await setStatus(second.id, 'completed');
    assert.ok((await listJobsAwaitingTurn(test.db, second.id)).includes(third.id));
    assert.equal((await claimJobTurn(test.db, { jobId: third.id, attempt: 1 })).granted, true);
    // The retry, asking now, enters behind the third.
    assert.deepEqual(await claimJobTurn(test.db, { jobId: first.id, attempt: 2 }), {
      granted: false,
      ahead: 1,
    });
  });

  it('puts a retry at the end of the line, behind the jobs that waited meanwhile', async () => {
    const [first, second, third] = [0, 1, 2].map((i) =>
      keyed('retry', `2020-01-01T00:00:0${i}.000Z`),
    ) as [ReturnType<typeof keyed>, ReturnType<typeof keyed>, ReturnType<typeof keyed>];
    for (const job of [first, second, third]) await insertJob(test.db, job, 'pending');
    assert.equal((await claimJobTurn(test.db, { jobId: first.id, attempt: 1 })).granted, true);
    assert.deepEqual(await claimJobTurn(test.db, { jobId: third.id, attempt: 1 }), {
      granted: false,
      ahead: 2,
    });
    // A failed job no longer holds the turn: the next one takes it.
    await setStatus(first.id, 'failed');
    assert.deepEqual(await listJobsAwaitingTurn(test.db, first.id), [second.id, third.id]);
    assert.equal((await claimJobTurn(test.db, { jobId: second.id, attempt: 1 })).granted, true);
    // Its retry (attempt 2) enters the line behind the third.
    assert.deepEqual(await claimJobTurn(test.db, { jobId: first.id, attempt: 2 }), {
      granted: false,
      ahead: 2,
    });
    await setStatus(first.id, 'queued', 2);
    await setStatus(second.id, 'completed');
    assert.deepEqual(await listJobsAwaitingTurn(test.db, second.id), [third.id, first.id]);
    assert.deepEqual(await claimJobTurn(test.db, { jobId: first.id, attempt: 2 }), {
      granted: false,
      ahead: 1,
    });
    assert.equal((await claimJobTurn(test.db, { jobId: third.id, attempt: 1 })).granted, true);
  });
});
