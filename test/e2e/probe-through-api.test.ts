import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { JobView } from '../../src/api/schemas/jobs.js';
import { JobKindKey, JobTypeKey } from '../../src/jobs/search-attributes.js';
import { startHarness, type Harness } from '../support/harness.js';
import { captureLogs } from '../support/logs.js';

// Every layer in one path: API → Temporal → worker → activity → database → API read.
describe('a probe job through the API', () => {
  let h: Harness;
  const { logger, lines } = captureLogs();
  before(async () => {
    // One job in flight a user: a cancelled probe must give its place back.
    h = await startHarness({ logger, worker: true, env: { USER_MAX_JOBS_IN_FLIGHT: '1' } });
  });
  after(() => h.stop());

  it('is accepted at once, reports its progress and ends completed, readable by its owner', async () => {
    const alice = h.user('alice');
    const accepted = await alice.post('/api/probes', { steps: 4, stepDelayMs: 300 });
    assert.equal(accepted.statusCode, 202, accepted.body);
    const job = accepted.json<JobView>();
    assert.equal(job.status, 'pending');
    assert.equal(job.progress, 0);
    assert.equal(accepted.headers['location'], `/api/jobs/${job.id}`);
    assert.equal(job.workflowId, job.id);

    const seen: JobView[] = [];
    const done = await alice.awaitJob<JobView>(
      'probe',
      job.id,
      (view) => view.status === 'completed',
      { what: 'probe completed', timeoutMs: 30_000, seen },
    );
    assert.equal(done.progress, 100);
    assert.deepEqual(done.result, { stepsCompleted: 4 });
    assert.equal(done.error, null);
    assert.ok(done.startedAt && done.completedAt && done.startedAt <= done.completedAt);

    const progress = seen.map((view) => view.progress);
    assert.deepEqual(
      [...progress].sort((a, b) => a - b),
      progress,
      'progress went backwards',
    );
    assert.ok(
      seen.some((view) => view.status === 'running' && view.progress > 0 && view.progress < 100),
      `no intermediate progress was visible: ${JSON.stringify(progress)}`,
    );

    // What operators see in the Web UI comes from the kind's declaration; these names and
    // the summary's wording are what they filter and read by.
    const description = await h.temporal.client.workflow.getHandle(job.id).describe();
    assert.equal(description.type, 'probeJob');
    assert.equal(description.typedSearchAttributes.get(JobKindKey), 'probe');
    assert.equal(description.typedSearchAttributes.get(JobTypeKey), 'PROBE');
    assert.equal(await description.staticSummary(), 'Probe: 4 steps, 300 ms apart');

    const list = await alice.get('/api/jobs');
    assert.deepEqual(
      list.json<{ jobs: JobView[] }>().jobs.map((view) => view.id),
      [job.id],
    );
    const stranger = await h.user('mallory').get(job.links.self);
    assert.equal(stranger.statusCode, 404);

    // One grep by job id follows the job from the API into the worker's activities.
    const jobLines = lines().filter((line) => line['jobId'] === job.id);
    assert.ok(jobLines.some((line) => line['msg'] === 'job accepted'));
    const activityLines = jobLines.filter((line) => line['activityType'] === 'recordJobUpdates');
    assert.ok(
      activityLines.length >= 4,
      `only ${activityLines.length} activity log lines carried the job id`,
    );
    for (const line of activityLines) {
      assert.equal(line['workflowId'], job.id);
      assert.equal(typeof line['runId'], 'string');
    }
  });

  it('is cancelled by its owner while it runs: it ends cancelled with the reason, and frees its place in flight', async () => {
    const bob = h.user('bob');
    const accepted = await bob.post('/api/probes', { steps: 100, stepDelayMs: 60_000 });
    assert.equal(accepted.statusCode, 202, accepted.body);
    const job = accepted.json<JobView>();
    await bob.awaitJob<JobView>('probe', job.id, (view) => view.status === 'running', {
      what: 'probe running',
    });
    const refused = await bob.post('/api/probes', { steps: 1, stepDelayMs: 0 });
    assert.equal(refused.statusCode, 429, refused.body);

    assert.equal(
      (await h.user('mallory').post(`/api/probes/${job.id}/cancel`, {})).statusCode,
      404,
    );
    const cancel = await bob.post(`/api/probes/${job.id}/cancel`, { reason: 'done testing' });
    assert.equal(cancel.statusCode, 202, cancel.body);
    assert.deepEqual(cancel.json(), { id: job.id, status: 'running', cancelRequested: true });
    const done = await bob.awaitJob<JobView>(
      'probe',
      job.id,
      (view) => view.status === 'cancelled',
      { what: 'probe cancelled' },
    );
    assert.deepEqual(done.error, { code: 'CANCELLED', message: 'Cancelled: done testing' });
    assert.ok(done.completedAt);
    const failure = await h.temporal.client.workflow
      .getHandle(job.id)
      .result()
      .then(
        () => null,
        (error: unknown) => error,
      );
    assert.match(String((failure as Error | null)?.cause), /The probe was cancelled/);

    const again = await bob.post(`/api/probes/${job.id}/cancel`, {});
    assert.equal(again.statusCode, 409);
    assert.equal(again.json<{ error: { code: string } }>().error.code, 'JOB_NOT_CANCELLABLE');
    // A probe has no retries: there is no retry route to call.
    assert.equal((await bob.post(`/api/probes/${job.id}/retry`, {})).statusCode, 404);
    const next = await bob.post('/api/probes', { steps: 1, stepDelayMs: 0 });
    assert.equal(next.statusCode, 202, next.body);
  });

  it('answers a repeated Idempotency-Key with the same probe and a different request with 422', async () => {
    const carol = h.user('carol');
    const headers = { 'idempotency-key': 'probe-once' };
    const first = await carol.post('/api/probes', { steps: 1, stepDelayMs: 0 }, headers);
    assert.equal(first.statusCode, 202, first.body);
    assert.equal(first.headers['idempotent-replayed'], 'false');
    const repeat = await carol.post('/api/probes', { steps: 1, stepDelayMs: 0 }, headers);
    assert.equal(repeat.statusCode, 202, repeat.body);
    assert.equal(repeat.headers['idempotent-replayed'], 'true');
    assert.equal(repeat.json<JobView>().id, first.json<JobView>().id);

    const different = await carol.post('/api/probes', { steps: 2, stepDelayMs: 0 }, headers);
    assert.equal(different.statusCode, 422, different.body);
    assert.equal(
      different.json<{ error: { code: string } }>().error.code,
      'IDEMPOTENCY_KEY_REUSED',
    );
    const invalid = await carol.post(
      '/api/probes',
      { steps: 1, stepDelayMs: 0 },
      { 'idempotency-key': 'x'.repeat(300) },
    );
    assert.equal(invalid.statusCode, 400, invalid.body);
    assert.match(invalid.body, /idempotency-key/);
    const list = await carol.get('/api/jobs');
    assert.equal(list.json<{ jobs: JobView[] }>().jobs.length, 1);
  });
});
