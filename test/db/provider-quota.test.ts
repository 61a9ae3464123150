import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  acquireProviderLease,
  providerWaitersToWake,
  releaseProviderLeases,
} from '../../src/db/provider-quota.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

describe('the provider-quota waiting list', () => {
  let test: TestDatabase;
  before(async () => {
    test = await createTestDatabase();
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
});
