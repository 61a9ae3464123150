import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { JobRecord, JobSnapshot } from '../../src/jobs/contracts.js';
import type { VlogInput } from '../../src/kinds/vlog/declaration.js';
import { eventually } from './eventually.js';
import type { Harness, JobKind } from './harness.js';

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

/** A vlog's input with no media, as a stored job row carries it, with overridable fields. */
export function vlogInput(overrides: Partial<VlogInput> = {}): VlogInput {
  return {
    title: 't',
    prompt: null,
    style: null,
    aspectRatio: '16:9',
    durationSeconds: 8,
    media: [],
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

/**
 * Asserts that of `ownerId`'s jobs only a positive control exists, as a row and as a workflow:
 * what every refused request must leave. The control is a valid job of `kind` that the same
 * user has the harness's API accept; seeing it shows that the check would see a job a refused
 * request had left, so finding nothing else means something even when nothing ran before. The
 * control's workflow is terminated once checked; its id is returned for checks of what it stored.
 */
export async function assertOnlyControlJobOf(
  harness: Pick<Harness, 'db' | 'temporal' | 'user'>,
  ownerId: string,
  kind: JobKind,
): Promise<string> {
  const { db } = harness;
  const { client } = harness.temporal;
  const { id: controlId } = await harness.user(ownerId).startJob(kind);
  try {
    const rows = await db.selectFrom('jobs').select('id').where('owner_id', '=', ownerId).execute();
    assert.deepEqual(rows, [{ id: controlId }]);
    // Workflow visibility lags behind the start: wait for the control to show up.
    const workflowIds = await eventually(
      async () => {
        const ids: string[] = [];
        for await (const workflow of client.workflow.list({ query: `UserId = "${ownerId}"` })) {
          ids.push(workflow.workflowId);
        }
        return ids;
      },
      (ids) => ids.includes(controlId),
      { what: `the control workflow ${controlId} listed for ${ownerId}` },
    );
    assert.deepEqual(workflowIds, [controlId]);
  } finally {
    // Where a worker polls, the control may have finished already.
    await client.workflow
      .getHandle(controlId)
      .terminate('positive control checked')
      .catch((error: unknown) => {
        if (!(error instanceof WorkflowNotFoundError)) throw error;
      });
  }
  return controlId;
}
