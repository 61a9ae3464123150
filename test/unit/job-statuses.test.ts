import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  canBeRetried,
  isJobStatus,
  jobStatuses,
  retryableStatuses,
  terminalStatuses,
} from '../../src/jobs/model.js';
import { cancelRefusal, retryRefusal } from '../../src/workflows/job-messages.js';

describe('job statuses', () => {
  it('end a job in exactly the statuses the in-flight index of migration 0003 leaves out', () => {
    assert.deepEqual(terminalStatuses, ['completed', 'failed', 'cancelled', 'timeout']);
    assert.deepEqual(retryableStatuses, ['failed', 'timeout']);
    assert.ok(terminalStatuses.every((status) => jobStatuses.includes(status)));
  });

  it('tell a stored status from any other text', () => {
    assert.ok(jobStatuses.every(isJobStatus));
    assert.equal(isJobStatus('being retried'), false);
    assert.equal(isJobStatus('archived'), false);
  });

  it('judge cancel and retry requests by status, and by a request already taken', () => {
    assert.equal(cancelRefusal('generating'), null);
    assert.match(cancelRefusal('completed') ?? '', /already completed/);
    assert.match(cancelRefusal('being retried') ?? '', /being retried/);
    assert.equal(cancelRefusal('being cancelled'), null);
    assert.equal(retryRefusal('timeout', 1), null);
    assert.match(retryRefusal('being cancelled', 1) ?? '', /this one is being cancelled/);
    assert.match(retryRefusal('completed', 1) ?? '', /this one is completed/);
  });

  // The web page offers Retry by canBeRetried: a button the API then refuses (409, retries
  // spent) was offered after the last retry.
  it('offer a retry exactly where the API would take it', () => {
    for (const status of jobStatuses) {
      for (const attempt of [1, 2, 3, 4, 5]) {
        assert.equal(
          canBeRetried(status, attempt),
          retryRefusal(status, attempt) === null,
          `${status} on attempt ${attempt}`,
        );
      }
    }
    assert.equal(canBeRetried('failed', 4), false);
  });
});
