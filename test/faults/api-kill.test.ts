import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { idempotentJobId } from '../../src/jobs/ids.js';
import { testEnv } from '../support/env.js';
import { eventually } from '../support/eventually.js';
import { FaultStack } from '../support/fault-stack.js';
import type { ServiceProcess } from '../support/processes.js';
import { TcpProxy } from '../support/tcp-proxy.js';

/** How often the job reconciler runs here, and how quiet a job must be for it to look. */
const reconcile = { JOB_RECONCILE_INTERVAL_MS: '1000', JOB_RECONCILE_STALE_MS: '1000' };

// The API SIGKILLed in the middle of accepting work, after it held the work's estimate against
// the owner's budgets and before Temporal heard of the work (the workflow never starts, or the
// retry is never taken, and no process is left to give the hold back) or before it heard
// Temporal's answer; and the worker SIGKILLed right after a retry was taken.
describe('fault: SIGKILL while a cost is held for work Temporal has not taken yet', () => {
  let stack: FaultStack;
  /** Between the API and Temporal only: stalled, the API's start or Update hangs there. */
  let temporalPath: TcpProxy;
  let api: ServiceProcess;
  let worker: ServiceProcess;
  const startApi = async () => {
    api = await stack.start('api', { TEMPORAL_ADDRESS: `127.0.0.1:${temporalPath.port}` });
  };

  before(async () => {
    // A failed job stays retryable long enough for the retry below to be sent, then closes.
    stack = await FaultStack.start({
      name: 'api-kill',
      env: { ...reconcile, JOB_RETRY_WINDOW_MS: '6000' },
    });
    const [host = '127.0.0.1', port = '7233'] = testEnv.temporalAddress.split(':');
    temporalPath = await TcpProxy.start(host, Number(port));
    await startApi();
    worker = await stack.start('worker');
  });
  after(async () => {
    await stack.stop();
    await temporalPath.stop();
  });

  const heldHolds = (jobId?: string) => {
    let query = stack.testDatabase.db
      .selectFrom('cost_holds')
      .select(['job_id', 'attempt', 'amount'])
      .where('owner_id', '=', stack.ownerId)
      .where('state', '=', 'held');
    if (jobId !== undefined) query = query.where('job_id', '=', jobId);
    return query.execute();
  };

  /** Sends a request the stalled API never answers; resolves once the API is gone. */
  const sendUnanswered = (path: string, body: unknown) =>
    fetch(`${stack.baseUrl}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }).catch((error: unknown) => error);

  /** Kills the API once `held` holds are open, then starts another. */
  async function killApiOnceHeld(held: () => Promise<unknown[]>, count: number) {
    await eventually(held, (rows) => rows.length >= count, {
      what: `${count} cost holds taken by the stalled API`,
      timeoutMs: 8_000,
      intervalMs: 20,
    });
    await stack.kill(api);
    // What the killed API wrote is dropped with its connections, as if it died before writing.
    temporalPath.cut();
    temporalPath.restore();
    await startApi();
  }

  it('before the workflow starts: the orphaned hold is given back, no workflow, no row', async () => {
    temporalPath.stall();
    const request = sendUnanswered('/api/ai/jobs', {
      type: 'SUBGOAL_GENERATION',
      input: { goal: `Run a marathon (${stack.marker('orphan')})`, maxItems: 3 },
    });
    await killApiOnceHeld(() => heldHolds(), 1);
    assert.ok((await request) instanceof Error, 'the killed API answered the request');
    const [orphan] = await heldHolds();
    assert.ok(orphan && Number(orphan.amount) > 0, 'the job’s estimate was held');
    const rows = await stack.testDatabase.db
      .selectFrom('jobs')
      .select('id')
      .where('id', '=', orphan.job_id)
      .execute();
    assert.equal(rows.length, 0, 'no row: the workflow was never started');

    await eventually(
      () => heldHolds(orphan.job_id),
      (rows) => rows.length === 0,
      {
        what: 'the hold of the job that never started given back',
        timeoutMs: 60_000,
        intervalMs: 200,
      },
    );
    const workflows = await stack.client.workflow.count(`WorkflowId = '${orphan.job_id}'`);
    assert.equal(workflows.count, 0, 'a workflow was started after all');
  });

  it('before the retry reaches the workflow: the new attempt’s hold is given back once the job closes', async () => {
    stack.fakes.google.scenario.answerFor = (prompt) =>
      prompt.includes(stack.markerPrefix('refused')) ? { kind: 'blocked' } : undefined;
    const refused = await stack.submitAi('refused', { status: 'failed', code: 'SAFETY_BLOCKED' });
    const failed = await eventually(
      () => stack.view(refused),
      (view) => view?.status === 'failed',
      { what: `${refused.id} failed`, timeoutMs: 60_000, intervalMs: 100 },
    );
    assert.equal(failed?.error?.code, 'SAFETY_BLOCKED');

    temporalPath.stall();
    const request = sendUnanswered(`/api/ai/jobs/${refused.id}/retry`, {});
    await killApiOnceHeld(
      async () => (await heldHolds(refused.id)).filter((hold) => hold.attempt === 2),
      1,
    );
    assert.ok((await request) instanceof Error, 'the killed API answered the retry');

    // The retry never reached the workflow, which closes at the end of its retry window.
    await eventually(
      async () => (await stack.client.workflow.getHandle(refused.id).describe()).status.name,
      (status) => status !== 'RUNNING',
      { what: `${refused.id} closed`, timeoutMs: 60_000, intervalMs: 200 },
    );
    await eventually(
      () => heldHolds(refused.id),
      (rows) => rows.length === 0,
      {
        what: 'the hold of the retry that was never taken given back',
        timeoutMs: 60_000,
        intervalMs: 200,
      },
    );
    const view = await stack.view(refused);
    assert.equal(view?.status, 'failed');
    assert.equal((view as { retryCount?: number } | null)?.retryCount, 0, 'the retry was taken');
  });

  it('after the workflow started, the worker down too: a resend with the Idempotency-Key leaves the job its hold', async () => {
    await stack.kill(worker);
    const marker = stack.marker('resend');
    const idempotencyKey = `key-${marker}`;
    const jobId = idempotentJobId('ai', stack.ownerId, idempotencyKey);
    const send = () =>
      fetch(`${stack.baseUrl}/api/ai/jobs`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${stack.token}`,
          'content-type': 'application/json',
          'idempotency-key': idempotencyKey,
        },
        body: JSON.stringify({
          type: 'SUBGOAL_GENERATION',
          input: { goal: `Run a marathon (${marker})`, maxItems: 3 },
        }),
      });

    // Temporal takes the start, its answer never reaches the API, which dies before the row.
    // The API's connection to Temporal is made first (readiness asks Temporal), so the start
    // is all it sends once the replies stall.
    await eventually(
      async () => JSON.stringify((await stack.readiness()).body),
      (body) => body.includes('"temporal":{"ok":true'),
      { what: 'the API reaching Temporal', timeoutMs: 10_000, intervalMs: 100 },
    );
    temporalPath.stallReplies();
    const first = send().catch((error: unknown) => error);
    await eventually(
      async () => {
        try {
          return (await stack.client.workflow.getHandle(jobId).describe()).status.name;
        } catch {
          return null;
        }
      },
      (status) => status === 'RUNNING',
      { what: `${jobId} started in Temporal`, timeoutMs: 8_000, intervalMs: 20 },
    );
    await killApiOnceHeld(() => heldHolds(jobId), 1);
    assert.ok((await first) instanceof Error, 'the killed API answered the request');

    // The client sends it again: the workflow exists, its row not yet (no worker wrote it).
    const resent = await send();
    assert.equal(resent.status, 409, await resent.clone().text());
    assert.equal(
      ((await resent.json()) as { error: { code: string } }).error.code,
      'IDEMPOTENCY_KEY_IN_USE',
    );
    assert.equal((await heldHolds(jobId)).length, 1, 'the running job’s hold was dropped');

    worker = await stack.start('worker');
    const job = {
      id: jobId,
      kind: 'ai' as const,
      marker,
      expected: { status: 'completed' as const },
    };
    await stack.waitAllFinal([job]);
    assert.equal((await stack.view(job))?.status, 'completed');
    const holds = await stack.testDatabase.db
      .selectFrom('cost_holds')
      .select(['attempt', 'state'])
      .where('job_id', '=', jobId)
      .execute();
    assert.deepEqual(holds, [{ attempt: 1, state: 'settled' }], 'the job ran under its hold');
  });

  it('a worker SIGKILLed right after a retry was accepted: the new attempt runs once, held and settled', async () => {
    let refuse = true;
    stack.fakes.google.scenario.answerFor = (prompt) =>
      refuse && prompt.includes(stack.markerPrefix('retried')) ? { kind: 'blocked' } : undefined;
    const job = await stack.submitAi('retried');
    await eventually(
      () => stack.view(job),
      (view) => view?.status === 'failed',
      { what: `${job.id} failed`, timeoutMs: 60_000, intervalMs: 100 },
    );
    refuse = false;
    const retried = await fetch(`${stack.viewUrl(job)}/retry`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.token}`, 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(retried.status, 202, await retried.clone().text());
    await stack.kill(worker);
    worker = await stack.start('worker');
    await stack.waitAllFinal([job]);
    const view = await stack.view(job);
    assert.equal(view?.status, 'completed');
    assert.equal((view as { retryCount?: number } | null)?.retryCount, 1);
    assert.equal(stack.paidCalls(job, 'streamGenerateContent'), 2, 'one model call per attempt');
    const holds = await stack.testDatabase.db
      .selectFrom('cost_holds')
      .select(['attempt', 'state'])
      .where('job_id', '=', job.id)
      .orderBy('attempt')
      .execute();
    assert.deepEqual(holds, [
      { attempt: 1, state: 'released' },
      { attempt: 2, state: 'settled' },
    ]);
  });
});
