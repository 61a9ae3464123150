import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { applyJobUpdate, insertJob } from '../../src/db/jobs.js';
import {
  acquireProviderLease,
  providerWaitersToWake,
  releaseProviderLeases,
  takeProviderRequestSlot,
} from '../../src/db/provider-quota.js';
import type { JobSnapshot } from '../../src/jobs/contracts.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

describe('the provider-quota waiting list', () => {
  let test: TestDatabase;
  /** Statements sent so far. */
  let statements = 0;
  before(async () => {
    test = await createTestDatabase({ onQuery: () => (statements += 1) });
  });
  after(() => test.drop());

  const limit = 2;
  const lease = (jobId: string, ownerId: string) =>
    acquireProviderLease(test.db, {
      provider: 'veo',
      jobId,
      ownerId,
      limit,
      staleAfterMs: 60_000,
    });

  it("counts an owner's held leases as turns taken, so another owner's first job goes ahead of its waiters", async () => {
    assert.deepEqual(await lease('alice-1', 'alice'), { granted: true });
    assert.deepEqual(await lease('alice-2', 'alice'), { granted: true });
    assert.deepEqual(await lease('alice-3', 'alice'), { granted: false, ahead: 0 });
    assert.deepEqual(await lease('alice-4', 'alice'), { granted: false, ahead: 1 });
    // Alice holds both leases: Bob's first job waits in her third turn's place.
    assert.deepEqual(await lease('bob-1', 'bob'), { granted: false, ahead: 0 });
    assert.deepEqual(await lease('alice-3', 'alice'), { granted: false, ahead: 1 });
    assert.deepEqual(await providerWaitersToWake(test.db, 'veo', limit), []);

    await releaseProviderLeases(test.db, 'alice-1', 'veo');
    assert.deepEqual(await providerWaitersToWake(test.db, 'veo', limit), ['bob-1']);
    assert.deepEqual(await lease('alice-3', 'alice'), { granted: false, ahead: 1 });
    assert.deepEqual(await lease('bob-1', 'bob'), { granted: true });
    assert.deepEqual(await providerWaitersToWake(test.db, 'veo', limit), []);

    // One lease each: Alice's next job is first in line again.
    await releaseProviderLeases(test.db, 'alice-2', 'veo');
    assert.deepEqual(await providerWaitersToWake(test.db, 'veo', limit), ['alice-3']);
    await releaseProviderLeases(test.db, 'bob-1', 'veo');
    assert.deepEqual(await providerWaitersToWake(test.db, 'veo', limit), ['alice-3', 'alice-4']);
  });
  it("frees an ending job's lease and place in line with its last update, in the same statement", async () => {
    const createdAt = new Date().toISOString();
    const snapshot = (status: JobSnapshot['status']): JobSnapshot => ({
      status,
      progress: 0,
      phase: null,
      attempt: 1,
      runId: 'run',
      startedAt: createdAt,
      completedAt: null,
      result: null,
      error: null,
    });
    for (const id of ['carol-1', 'carol-2']) {
      await insertJob(
        test.db,
        {
          id,
          kind: 'vlog',
          type: 'VLOG',
          ownerId: 'carol',
          input: {},
          idempotencyKey: null,
          requestFingerprint: null,
          createdAt,
          concurrencyKey: null,
        },
        'pending',
      );
    }
    const carol = (jobId: string) =>
      acquireProviderLease(test.db, {
        provider: 'carol-veo',
        jobId,
        ownerId: 'carol',
        limit: 1,
        staleAfterMs: 60_000,
      });
    assert.deepEqual(await carol('carol-1'), { granted: true });
    assert.deepEqual(await carol('carol-2'), { granted: false, ahead: 0 });
    const leases = () =>
      test.db
        .selectFrom('provider_leases')
        .select('job_id')
        .where('provider', '=', 'carol-veo')
        .orderBy('job_id')
        .execute();

    // An update in flight keeps them.
    await applyJobUpdate(test.db, { jobId: 'carol-1', seq: 1, snapshot: snapshot('generating') });
    await applyJobUpdate(test.db, { jobId: 'carol-2', seq: 1, snapshot: snapshot('generating') });
    assert.deepEqual(await leases(), [{ job_id: 'carol-1' }, { job_id: 'carol-2' }]);

    // The end frees the lease in the update's own statement, and the waiting job's place once
    // it ends too, even when its end is a repeat the row no longer takes.
    const before = statements;
    assert.notEqual(
      await applyJobUpdate(test.db, { jobId: 'carol-1', seq: 2, snapshot: snapshot('completed') }),
      null,
    );
    assert.equal(statements - before, 1);
    assert.deepEqual(await leases(), [{ job_id: 'carol-2' }]);
    await applyJobUpdate(test.db, { jobId: 'carol-2', seq: 2, snapshot: snapshot('cancelled') });
    await acquireProviderLease(test.db, {
      provider: 'carol-veo',
      jobId: 'carol-2',
      ownerId: 'carol',
      limit: 1,
      staleAfterMs: 60_000,
    });
    assert.equal(
      await applyJobUpdate(test.db, { jobId: 'carol-2', seq: 2, snapshot: snapshot('cancelled') }),
      null,
    );
    assert.deepEqual(await leases(), []);
  });
});

describe("a provider's request slots", () => {
  let test: TestDatabase;
  before(async () => {
    test = await createTestDatabase();
  });
  after(() => test.drop());

  it('spaces the slots taken at once by the interval, one row a provider', async () => {
    const intervalMs = 1_000;
    const slots = (
      await Promise.all(
        Array.from({ length: 4 }, () => takeProviderRequestSlot(test.db, 'veo', intervalMs)),
      )
    ).sort((a, b) => a.at - b.at);
    assert.equal(slots[0]!.inMs, 0, 'the first slot is now');
    for (let index = 1; index < slots.length; index += 1) {
      const slot = slots[index]!;
      const before = slots[index - 1]!;
      assert.ok(Math.abs(slot.at - before.at - intervalMs) < 0.01, JSON.stringify(slots));
      // Counted when its statement ran, a few milliseconds after the one before.
      const gap = slot.inMs - before.inMs;
      assert.ok(gap > intervalMs - 100 && gap <= intervalMs, JSON.stringify(slots));
    }
    assert.equal((await takeProviderRequestSlot(test.db, 'gemini', intervalMs)).inMs, 0);
  });
});
