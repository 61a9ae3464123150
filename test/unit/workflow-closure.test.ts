// How the reconciler shows a workflow closed outside its code: the status and code are what
// clients and the failure metrics branch on, so each closure has its own.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { closedJobSnapshot, type WorkflowClosure } from '../../src/jobs/workflow-closure.js';

const job = { progress: 40, attempt: 2, startedAt: '2026-01-01T00:00:00.000Z' };
const closed = { runId: 'run-9', closedAt: '2026-01-01T00:01:00.000Z' };

function shown(closure: WorkflowClosure) {
  const snapshot = closedJobSnapshot(job, closure);
  return [snapshot.status, snapshot.error?.code ?? null, snapshot.progress];
}

describe('a job whose workflow closed outside its code', () => {
  it('gets a status and a stable code for each way it closed, keeping its progress', () => {
    assert.deepEqual(shown({ ...closed, how: 'terminated', reason: 'r', identity: 'ops' }), [
      'failed',
      'WORKFLOW_TERMINATED',
      40,
    ]);
    assert.deepEqual(shown({ ...closed, how: 'timed_out' }), ['timeout', 'WORKFLOW_TIMED_OUT', 40]);
    assert.deepEqual(shown({ ...closed, how: 'not_found' }), ['failed', 'WORKFLOW_NOT_FOUND', 40]);
    assert.deepEqual(shown({ ...closed, how: 'cancelled' }), ['cancelled', 'CANCELLED', 40]);
    assert.deepEqual(shown({ ...closed, how: 'completed', result: { ok: true } }), [
      'completed',
      null,
      100,
    ]);
  });

  it('keeps a failure type of the taxonomy, and calls any other JOB_FAILED', () => {
    const failed = (failureType: string | null) =>
      shown({ ...closed, how: 'failed', failureType, message: 'broke' });
    assert.deepEqual(failed('GENERATION_FAILED'), ['failed', 'GENERATION_FAILED', 40]);
    assert.deepEqual(failed('TypeError'), ['failed', 'JOB_FAILED', 40]);
    assert.deepEqual(failed(null), ['failed', 'JOB_FAILED', 40]);
  });

  it('says who terminated the workflow and why, and when it ended, on the run it names', () => {
    const snapshot = closedJobSnapshot(job, {
      ...closed,
      how: 'terminated',
      reason: 'stuck on a bad input',
      identity: 'alice@ops',
    });
    assert.equal(
      snapshot.error?.message,
      'The workflow was terminated in Temporal by alice@ops: stuck on a bad input',
    );
    assert.deepEqual(
      [snapshot.runId, snapshot.completedAt, snapshot.startedAt, snapshot.attempt],
      ['run-9', closed.closedAt, job.startedAt, 2],
    );
  });
});
