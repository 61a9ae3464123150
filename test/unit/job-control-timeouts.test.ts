import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkflowUpdateRPCTimeoutOrCancelledError, type Client } from '@temporalio/client';
import { ApiError } from '../../src/api/errors.js';
import { createJobActions } from '../../src/api/services/job-actions.js';
import type { Db } from '../../src/db/database.js';
import type { JobRow } from '../../src/db/schema.js';
import type { TemporalAccess } from '../../src/temporal-client.js';
import { testLogger } from '../support/logs.js';

/**
 * A Temporal that answers, but whose workflow never judges an Update in time: its pending
 * workflow task is at `taskAttempt` (1 when it was never failed).
 */
function unansweredUpdates(taskAttempt: number): TemporalAccess {
  const client = {
    withDeadline: <T>(_deadline: number, call: () => Promise<T>) => call(),
    workflow: {
      getHandle: () => ({
        executeUpdate: () =>
          Promise.reject(new WorkflowUpdateRPCTimeoutOrCancelledError('timed out')),
        describe: async () => ({ raw: { pendingWorkflowTask: { attempt: taskAttempt } } }),
      }),
    },
  } as unknown as Client;
  return { client, ping: async () => undefined } as unknown as TemporalAccess;
}

async function cancelRefusal(temporal: TemporalAccess): Promise<ApiError> {
  const actions = createJobActions(
    temporal,
    { timeoutMs: 50 },
    { db: {} as Db, budgets: { daily: null, monthly: null }, maxJobsInFlight: 10 },
  );
  const row = { id: 'ai-1', workflow_id: 'ai-1', status: 'running' } as JobRow;
  const error = await actions.cancel(row, null, 'AI job', testLogger()).then(
    () => assert.fail('expected a refusal'),
    (thrown: unknown) => thrown,
  );
  assert.ok(error instanceof ApiError, String(error));
  return error;
}

// Upgrading with a search attribute missing, every retry of a failed job said no worker took
// it, while a worker took it and failed its workflow task each time.
describe('a cancel or retry no workflow judged in time', () => {
  it("says workers took the job's workflow task and did not complete it, when they did, not that none took it", async () => {
    const failing = await cancelRefusal(unansweredUpdates(7));
    assert.equal(failing.code, 'JOB_CONTROL_TIMEOUT');
    assert.match(
      failing.message,
      /^The cancel request waits on the job's workflow task, which workers have taken 6 times without completing it/,
    );
    const idle = await cancelRefusal(unansweredUpdates(1));
    assert.equal(idle.code, 'JOB_CONTROL_TIMEOUT');
    assert.match(idle.message, /^No worker took the cancel request within 50 ms/);
  });
});
