// Operators close workflows in the Web UI and the CLI, not only through the API. Each way a
// workflow closes outside its own code is done here with the real Temporal CLI against the
// run's dev server, and the API must show the job's end within the reconciler's documented
// delay (JOB_RECONCILE_STALE_MS + JOB_RECONCILE_INTERVAL_MS, plus the run's own time).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { JobView } from '../../src/api/schemas/jobs.js';
import type { JobReconcileResult, JobRecord } from '../../src/jobs/contracts.js';
import type { ProbeJobInput } from '../../src/kinds/probe/declaration.js';
import { jobReconcileScheduleId } from '../../src/worker/job-reconcile-schedule.js';
import type { reconcileJobProjections } from '../../src/workflows/job-reconcile.js';
import { testEnv } from '../support/env.js';
import { eventually } from '../support/eventually.js';
import { parseMetrics } from '../support/metrics.js';
import { startHarness, type Harness, type UserClient } from '../support/harness.js';

const reconcile = { intervalMs: 1_000, staleMs: 1_000, reopenWindowMs: 60_000, batchSize: 100 };
/** The documented delay, and room for one reconcile run on a loaded machine. */
const withinMs = reconcile.staleMs + reconcile.intervalMs + 10_000;

/** Runs the Temporal CLI against the run's dev server, as an operator would. */
async function temporalCli(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(testEnv.temporalCliPath, [
    ...args,
    '--address',
    testEnv.temporalAddress,
    '--namespace',
    testEnv.temporalNamespace,
  ]);
  return stdout;
}

describe('a job whose workflow closes outside the API', () => {
  let h: Harness;
  let alice: UserClient;
  before(async () => {
    h = await startHarness({ worker: true, jobReconcile: reconcile });
    alice = h.user('alice');
  });
  after(() => h.stop());

  /** `vlogflow_jobs_reconciled_total` of probes, as this process's `/metrics` says. */
  async function reconciledProbes(reason: string): Promise<number> {
    const response = await h.api.app.inject({ method: 'GET', url: '/metrics' });
    return parseMetrics(response.body).value('vlogflow_jobs_reconciled_total', {
      kind: 'probe',
      reason,
    });
  }

  /** A probe long enough to be caught mid-way, once it shows progress. */
  async function runningProbe(): Promise<JobView> {
    const job = await alice.startJob<JobView>('probe', { steps: 100, stepDelayMs: 500 });
    h.terminateOnStop(job.id);
    await alice.awaitJob<JobView>('probe', job.id, (view) => view.progress > 0, {
      what: 'probe under way',
    });
    return job;
  }

  /** Waits for the job's end within the documented delay; returns its view and the time taken. */
  async function ended(id: string): Promise<{ view: JobView; ms: number }> {
    const started = Date.now();
    const view = await alice.awaitJob<JobView>(
      'probe',
      id,
      (current) => ['completed', 'failed', 'cancelled', 'timeout'].includes(current.status),
      { what: `probe ${id} ended`, timeoutMs: withinMs, intervalMs: 200 },
    );
    return { view, ms: Date.now() - started };
  }

  it('`temporal workflow terminate` ends it failed, WORKFLOW_TERMINATED with the reason', async () => {
    const job = await runningProbe();
    const counted = await reconciledProbes('terminated');
    await temporalCli('workflow', 'terminate', '-w', job.id, '--reason', 'stopped by an operator');
    const { view } = await ended(job.id);
    assert.equal(await reconciledProbes('terminated'), counted + 1);
    assert.equal(view.status, 'failed');
    assert.equal(view.error?.code, 'WORKFLOW_TERMINATED');
    assert.match(view.error?.message ?? '', /terminated in Temporal.*: stopped by an operator$/);
    assert.ok(view.progress > 0 && view.progress < 100, `progress kept: ${view.progress}`);
    assert.ok(view.completedAt, 'the end time is the termination');

    const events = await h.db
      .selectFrom('job_events')
      .select(['seq', 'status', 'error_code'])
      .where('job_id', '=', job.id)
      .orderBy('seq')
      .execute();
    assert.deepEqual(events.at(-1)?.status, 'failed', 'the event log ends with the end');
    assert.equal(events.at(-1)?.error_code, 'WORKFLOW_TERMINATED');
  });

  it('`temporal workflow terminate --query` (a batch) ends every job it closed', async () => {
    const jobs = await Promise.all([runningProbe(), runningProbe(), runningProbe()]);
    const ids = jobs.map((job) => `'${job.id}'`).join(', ');
    await temporalCli(
      'workflow',
      'terminate',
      '--query',
      `WorkflowId IN (${ids})`,
      '--reason',
      'batch stop',
      '--yes',
    );
    for (const job of jobs) {
      const { view } = await ended(job.id);
      assert.equal(view.status, 'failed');
      assert.equal(view.error?.code, 'WORKFLOW_TERMINATED');
      assert.match(view.error?.message ?? '', /batch stop/);
    }
  });

  it('`temporal workflow reset` moves it to the new run, which it follows to the end', async () => {
    const job = await alice.startJob<JobView>('probe', { steps: 20, stepDelayMs: 300 });
    h.terminateOnStop(job.id);
    const before = await alice.awaitJob<JobView>('probe', job.id, (view) => view.progress >= 40, {
      what: 'probe at 40 %',
    });
    const firstRun = (await h.temporal.client.workflow.getHandle(job.id).describe()).runId;
    await temporalCli(
      'workflow',
      'reset',
      '-w',
      job.id,
      '--type',
      'FirstWorkflowTask',
      '--reason',
      'start over',
    );
    const newRun = (await h.temporal.client.workflow.getHandle(job.id).describe()).runId;
    assert.notEqual(newRun, firstRun);
    const followed = await reconciledProbes('reset');

    // The new run starts over from its first step: the API shows its progress, never a failure.
    const seen: JobView[] = [];
    await alice.awaitJob<JobView>(
      'probe',
      job.id,
      (view) => view.status === 'running' && view.progress < before.progress,
      { what: 'the new run followed', timeoutMs: withinMs, intervalMs: 200, seen },
    );
    const done = await alice.awaitJob<JobView>(
      'probe',
      job.id,
      (view) => view.status === 'completed',
      { what: 'the new run completed', seen },
    );
    assert.deepEqual(done.result, { stepsCompleted: 20 });
    assert.equal(done.error, null);
    assert.deepEqual(
      seen.filter((view) => view.status === 'failed'),
      [],
      'the reset run was never shown failed',
    );
    const row = await h.db
      .selectFrom('jobs')
      .select('run_id')
      .where('id', '=', job.id)
      .executeTakeFirstOrThrow();
    assert.equal(row.run_id, newRun);
    assert.equal(await reconciledProbes('reset'), followed + 1);

    // The event log still only grows: a stream resuming from its last id misses nothing.
    const seqs = (
      await h.db
        .selectFrom('job_events')
        .select('seq')
        .where('job_id', '=', job.id)
        .where('part', '=', 0)
        .orderBy('created_at')
        .orderBy('seq')
        .execute()
    ).map((event) => event.seq);
    assert.deepEqual(
      seqs,
      [...seqs].sort((a, b) => a - b),
    );
  });

  it('a reset after a terminate brings the job it ended back, to end right', async () => {
    const job = await alice.startJob<JobView>('probe', { steps: 10, stepDelayMs: 300 });
    h.terminateOnStop(job.id);
    await alice.awaitJob<JobView>('probe', job.id, (view) => view.progress > 0, {
      what: 'probe under way',
    });
    await temporalCli('workflow', 'terminate', '-w', job.id, '--reason', 'by mistake');
    assert.equal((await ended(job.id)).view.error?.code, 'WORKFLOW_TERMINATED');

    await temporalCli(
      'workflow',
      'reset',
      '-w',
      job.id,
      '--type',
      'FirstWorkflowTask',
      '--reason',
      'terminated by mistake',
    );
    await alice.awaitJob<JobView>('probe', job.id, (view) => view.status === 'running', {
      what: 'the job back in flight',
      timeoutMs: withinMs,
      intervalMs: 200,
    });
    const done = await alice.awaitJob<JobView>(
      'probe',
      job.id,
      (view) => view.status === 'completed',
      { what: 'the new run completed' },
    );
    assert.deepEqual(done.result, { stepsCompleted: 10 });
    assert.equal(done.error, null);
  });

  it('a workflow execution timeout ends it timeout, WORKFLOW_TIMED_OUT', async () => {
    // Started with the CLI and a 3 s execution timeout: the server closes it mid-way.
    const id = `probe-${randomUUID()}`;
    const record: JobRecord<ProbeJobInput['job']['input']> = {
      id,
      kind: 'probe',
      type: 'PROBE',
      ownerId: 'alice',
      input: { steps: 100, stepDelayMs: 500 },
      idempotencyKey: null,
      requestFingerprint: null,
      createdAt: new Date().toISOString(),
    };
    await temporalCli(
      'workflow',
      'start',
      '--type',
      'probeJob',
      '--task-queue',
      h.taskQueue,
      '-w',
      id,
      '--execution-timeout',
      '3s',
      '--input',
      JSON.stringify({ job: record }),
    );
    await alice.awaitJob<JobView>('probe', id, (view) => view.progress > 0, {
      what: 'probe under way',
    });
    await eventually(
      async () => (await h.temporal.client.workflow.getHandle(id).describe()).status.name,
      (status) => status === 'TIMED_OUT',
      { what: 'the workflow timed out', timeoutMs: 15_000 },
    );
    const { view } = await ended(id);
    assert.equal(view.status, 'timeout');
    assert.equal(view.error?.code, 'WORKFLOW_TIMED_OUT');
  });
});

// A backlog of quiet jobs larger than one run checks (10,000 vlogs waiting on Veo, 5,000 a
// run): each run goes on where the previous one stopped, so a job past the first run's reach is
// checked all the same, and no run does more than its batches.
describe('a backlog larger than one reconcile run checks', () => {
  const backlog = { ...reconcile, batchSize: 2, maxBatchesPerRun: 1 };
  const quietJobs = 5;
  const runsPerLap = Math.ceil(quietJobs / (backlog.batchSize * backlog.maxBatchesPerRun));
  let h: Harness;
  let alice: UserClient;
  before(async () => {
    h = await startHarness({ worker: true, jobReconcile: backlog });
    alice = h.user('alice');
  });
  after(() => h.stop());

  it("ends a terminated job past the first run's reach in a later run", async () => {
    // Each sleeps a minute before its first step: in flight, its row unchanged meanwhile.
    const ids: string[] = [];
    for (let i = 0; i < quietJobs; i += 1) {
      const job = await alice.startJob<JobView>('probe', { steps: 100, stepDelayMs: 60_000 });
      h.terminateOnStop(job.id);
      ids.push(job.id);
    }
    for (const id of ids) {
      await alice.awaitJob<JobView>('probe', id, (view) => view.status === 'running', {
        what: `probe ${id} running`,
      });
    }
    // The reconciler goes through the jobs in the database's order of ids: the last is past
    // every run's reach but the last of a lap.
    const { id: last } = await h.db
      .selectFrom('jobs')
      .select('id')
      .where('id', 'in', ids)
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow();
    await h.temporal.client.workflow.getHandle(last).terminate('stopped by an operator');

    const view = await alice.awaitJob<JobView>(
      'probe',
      last,
      (current) => current.status === 'failed',
      {
        what: `probe ${last} ended`,
        timeoutMs: backlog.staleMs + (runsPerLap + 1) * backlog.intervalMs + 10_000,
        intervalMs: 200,
      },
    );
    assert.equal(view.error?.code, 'WORKFLOW_TERMINATED');

    const runs = await eventually(
      async () => {
        const results: JobReconcileResult[] = [];
        const query = `TemporalScheduledById = '${jobReconcileScheduleId(h.taskQueue)}' AND ExecutionStatus = 'Completed'`;
        for await (const run of h.temporal.client.workflow.list({ query })) {
          results.push(
            await h.temporal.client.workflow
              .getHandle<typeof reconcileJobProjections>(run.workflowId, run.runId)
              .result(),
          );
        }
        return results;
      },
      (results) => results.length >= runsPerLap,
      { what: 'the reconciler runs listed' },
    );
    const most = backlog.batchSize * backlog.maxBatchesPerRun;
    assert.deepEqual(
      runs.filter((run) => run.checked > most),
      [],
      `no run checked more than ${most} jobs`,
    );
  });
});
