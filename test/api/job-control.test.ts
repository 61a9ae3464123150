import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import proto from '@temporalio/proto';
import { testEnv } from '../support/env.js';
import { startHarness, type Harness } from '../support/harness.js';
import { TcpProxy } from '../support/tcp-proxy.js';

// The proto package is CommonJS without statically detectable named exports.
const UpdateStage = proto.temporal.api.enums.v1.UpdateWorkflowExecutionLifecycleStage;

/** Asserts that Temporal holds the job's retry of attempt 1, by the id that names its attempt. */
async function assertRetryAdmitted(h: Harness, id: string): Promise<void> {
  const admitted = await h.temporal.client.workflowService.pollWorkflowExecutionUpdate({
    namespace: testEnv.temporalNamespace,
    updateRef: { workflowExecution: { workflowId: id }, updateId: 'retry-attempt-2' },
    waitPolicy: {
      lifecycleStage: UpdateStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED,
    },
  });
  assert.equal(admitted.stage, UpdateStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED);
}

// Cancel and retry wait for the job's workflow to judge them; with no worker to do so, the
// API must answer in bounded time instead of holding the request.
describe('cancel and retry with no worker polling', () => {
  let h: Harness;

  before(async () => {
    h = await startHarness({
      env: {
        GEMINI_API_KEY: 'unused',
        GEMINI_BASE_URL: 'http://127.0.0.1:9',
        JOB_CONTROL_TIMEOUT_MS: '500',
      },
    });
  });
  after(() => h.stop());

  it('answers 503 JOB_CONTROL_TIMEOUT with Retry-After when no worker takes the request', async () => {
    const patient = h.user('patient');
    const { id } = await patient.startJob('ai', {
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Learn to juggle' },
    });
    h.terminateOnStop(id);

    for (const action of ['cancel', 'retry'] as const) {
      const answer = await patient[action]('ai', id);
      assert.equal(answer.statusCode, 503, answer.body);
      assert.equal(answer.json<{ error: { code: string } }>().error.code, 'JOB_CONTROL_TIMEOUT');
      assert.equal(answer.headers['retry-after'], '5');
      assert.match(answer.body, new RegExp(`No worker took the ${action} request within 500 ms`));
    }
  });

  // The Update may still be taken when a worker is back: its attempt must then run held, and a
  // retry sent again is the same Update (its id names the attempt), not a second attempt.
  it('keeps the hold of a retry nobody judged, and a retry sent again waits on the same one', async () => {
    const patient = h.user('patient-again');
    const { id } = await patient.startJob('ai', {
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Learn to whistle' },
    });
    h.terminateOnStop(id);
    for (let sent = 0; sent < 2; sent += 1) {
      const answer = await patient.retry('ai', id);
      assert.equal(answer.statusCode, 503, answer.body);
      assert.equal(answer.json<{ error: { code: string } }>().error.code, 'JOB_CONTROL_TIMEOUT');
    }
    // Temporal knows the retry by the id that names its attempt: a retry sent again is that one.
    await assertRetryAdmitted(h, id);
    const holds = await h.db
      .selectFrom('cost_holds')
      .select(['attempt', 'state'])
      .where('job_id', '=', id)
      .orderBy('attempt')
      .execute();
    assert.deepEqual(
      holds.filter((hold) => hold.attempt === 2),
      [{ attempt: 2, state: 'held' }],
    );
  });

  // A re-drive whose retry Update nobody judged keeps its hold and its record as an owner's
  // retry keeps its hold: the Update may still be taken once a worker is back. Sent again, the
  // re-drive is that one, not a retry under way it must step aside for.
  it("keeps a re-drive nobody judged, and a re-drive sent again learns that one's outcome", async () => {
    const owner = h.user('redriven-owner');
    const operator = h.admin('operator');
    const { id } = await owner.startJob('ai', {
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Learn to knit' },
    });
    h.terminateOnStop(id);
    // Its failure projected while its run is open, in its retry window.
    await h.db
      .updateTable('jobs')
      .set({ status: 'failed', error_code: 'MODEL_FAILED', completed_at: new Date() })
      .where('id', '=', id)
      .execute();
    const redriveState = async () => ({
      holds: await h.db
        .selectFrom('cost_holds')
        .select(['attempt', 'state'])
        .where('job_id', '=', id)
        .orderBy('attempt')
        .execute(),
      records: await h.db
        .selectFrom('job_redrives')
        .select(['attempt', 'via', 'requested_by'])
        .where('job_id', '=', id)
        .execute(),
      row: await h.db
        .selectFrom('jobs')
        .select(['status', 'attempt'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow(),
    });

    for (let sent = 0; sent < 2; sent += 1) {
      const response = await operator.post('/api/admin/redrives', { jobIds: [id] });
      assert.equal(response.statusCode, 202, response.body);
      const outcome = response.json<{
        redriven: unknown[];
        skipped: { jobId: string; code: string; message: string }[];
      }>();
      assert.deepEqual(outcome.redriven, []);
      assert.equal(outcome.skipped.length, 1, response.body);
      assert.equal(outcome.skipped[0]?.code, 'JOB_CONTROL_TIMEOUT', response.body);
      assert.match(outcome.skipped[0].message, /keeps its attempt's hold/);
      assert.deepEqual(await redriveState(), {
        holds: [
          { attempt: 1, state: 'held' },
          { attempt: 2, state: 'held' },
        ],
        records: [{ attempt: 2, via: 'retry-update', requested_by: 'operator' }],
        // Shown retried only once the workflow takes it.
        row: { status: 'failed', attempt: 1 },
      });
    }
    await assertRetryAdmitted(h, id);
  });
});

// Temporal itself out (not only its workers): the request never reached it, or its answer
// never came back, and saying that no worker took it would send an operator looking at the
// workers.
describe('cancel and retry with Temporal out', () => {
  let h: Harness;
  let temporalPath: TcpProxy;

  before(async () => {
    const [host = '127.0.0.1', port = '7233'] = testEnv.temporalAddress.split(':');
    temporalPath = await TcpProxy.start(host, Number(port));
    h = await startHarness({
      env: { GEMINI_API_KEY: 'unused', JOB_CONTROL_TIMEOUT_MS: '500' },
      temporalEndpoint: { address: `127.0.0.1:${temporalPath.port}` },
    });
  });
  after(async () => {
    temporalPath.restore();
    await h.stop();
    await temporalPath.stop();
  });

  it('answers 503 TEMPORAL_UNAVAILABLE, not that no worker took the request', async () => {
    const owner = h.user('cut-off');
    const { id } = await owner.startJob('ai', {
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Learn to row' },
    });
    h.terminateOnStop(id);
    temporalPath.stall();
    try {
      const answer = await owner.cancel('ai', id);
      assert.equal(answer.statusCode, 503, answer.body);
      const { error } = answer.json<{ error: { code: string; message: string } }>();
      assert.equal(error.code, 'TEMPORAL_UNAVAILABLE', error.message);
      assert.match(error.message, /^The cancel request could not be sent, or its answer not heard/);
    } finally {
      temporalPath.restore();
    }
  });
});
