import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Db } from '../../src/db/database.js';
import type { JobRecord, JobSnapshot } from '../../src/jobs/contracts.js';
import { multipartBody, pngBytes } from '../fixtures/media.js';
import type { TestApi } from './api.js';
import { eventually } from './eventually.js';

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

/** The requests a positive control can be: one valid job of each kind the API starts. */
const controlRequests = {
  probe: () => ({
    url: '/api/probes',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({ steps: 1, stepDelayMs: 0 }),
  }),
  ai: () => ({
    url: '/api/ai/jobs',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({ type: 'SUBGOAL_GENERATION', input: { goal: 'Learn to sail' } }),
  }),
  vlog: () => {
    const form = multipartBody({ title: 'Control' }, [
      { field: 'media', filename: 'control.png', contentType: 'image/png', bytes: pngBytes() },
    ]);
    return { url: '/api/vlogs', headers: form.headers, payload: form.payload };
  },
};

/** Has `api` accept a valid job of `userId` (202) and returns its id: a positive control. */
export async function acceptedJob(
  api: TestApi,
  userId: string,
  kind: keyof typeof controlRequests,
): Promise<string> {
  const request = controlRequests[kind]();
  const response = await api.app.inject({
    method: 'POST',
    url: request.url,
    headers: { ...request.headers, authorization: await api.authFor(userId) },
    payload: request.payload,
  });
  assert.equal(response.statusCode, 202, response.body);
  return response.json<{ id: string }>().id;
}

/**
 * Asserts that of `ownerId`'s jobs only a positive control exists, as a row and as a workflow:
 * what every refused request must leave. `startControl` has a valid job of the same user
 * accepted and returns its id; seeing it shows that the check would see a job a refused request
 * had left, so finding nothing else means something even when nothing ran before. The control's
 * workflow is terminated once checked; its id is returned for checks of what it stored.
 */
export async function assertOnlyControlJobOf(
  db: Db,
  client: Client,
  ownerId: string,
  startControl: () => Promise<string>,
): Promise<string> {
  const controlId = await startControl();
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
    await client.workflow.getHandle(controlId).terminate('positive control checked');
  }
  return controlId;
}
