import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Db } from '../../src/db/database.js';
import type { JobRecord, JobSnapshot } from '../../src/jobs/messages.js';

/** A job record as the API would accept it, with overridable fields. */
export function jobRecord<Input = unknown>(
  overrides: Partial<JobRecord<Input>> = {},
): JobRecord<Input> {
  return {
    id: `probe-${randomUUID()}`,
    kind: 'probe',
    type: 'PROBE',
    ownerId: 'alice',
    input: { steps: 1, stepDelayMs: 0 } as Input,
    idempotencyKey: null,
    requestFingerprint: null,
    createdAt: new Date().toISOString(),
    ...overrides,
  };
}

/** A workflow's snapshot of a running first attempt, with overridable fields. */
export function jobSnapshot(change: Partial<JobSnapshot> = {}): JobSnapshot {
  return {
    status: 'running',
    progress: 0,
    phase: null,
    attempt: 1,
    runId: 'run-1',
    startedAt: null,
    completedAt: null,
    result: null,
    error: null,
    ...change,
  };
}

/** Asserts that `ownerId` has no job row and no workflow: what every refused request must leave. */
export async function assertNoJobsOf(db: Db, client: Client, ownerId: string): Promise<void> {
  const rows = await db.selectFrom('jobs').select('id').where('owner_id', '=', ownerId).execute();
  assert.deepEqual(rows, []);
  assert.equal((await client.workflow.count(`UserId = "${ownerId}"`)).count, 0);
}
