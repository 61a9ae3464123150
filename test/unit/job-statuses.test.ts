import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
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
});
