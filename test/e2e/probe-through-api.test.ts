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
    h = await startHarness({ logger, worker: true });
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
});
