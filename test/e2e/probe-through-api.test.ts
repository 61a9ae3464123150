import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { JobView } from '../../src/api/schemas/jobs.js';
import { JobKindKey, JobTypeKey } from '../../src/temporal/search-attributes.js';
import { createTestApi, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventually } from '../support/eventually.js';
import { captureLogs } from '../support/logs.js';
import { testTemporal, uniqueTaskQueue, withWorker } from '../support/temporal.js';

// Every layer in one path: API → Temporal → worker → activity → database → API read.
describe('a probe job through the API', () => {
  let test: TestDatabase;
  let api: TestApi;
  const temporal = testTemporal();
  const taskQueue = uniqueTaskQueue('probe-e2e');
  const { logger, lines } = captureLogs();
  before(async () => {
    test = await createTestDatabase();
    api = await createTestApi({ db: test.db, temporal, taskQueue, logger });
  });
  after(async () => {
    await api.app.close();
    await temporal.close();
    await test.drop();
  });

  it('is accepted at once, reports its progress and ends completed, readable by its owner', async () => {
    const auth = await api.authFor('alice');
    await withWorker(
      taskQueue,
      { db: test.db },
      async () => {
        const accepted = await api.app.inject({
          method: 'POST',
          url: '/api/probes',
          headers: { authorization: auth },
          payload: { steps: 4, stepDelayMs: 300 },
        });
        assert.equal(accepted.statusCode, 202, accepted.body);
        const job = accepted.json<JobView>();
        assert.equal(job.status, 'pending');
        assert.equal(job.progress, 0);
        assert.equal(accepted.headers['location'], `/api/jobs/${job.id}`);
        assert.equal(job.workflowId, job.id);

        const seen: JobView[] = [];
        const done = await eventually(
          async () => {
            const response = await api.app.inject({
              method: 'GET',
              url: job.links.self,
              headers: { authorization: auth },
            });
            assert.equal(response.statusCode, 200);
            const view = response.json<JobView>();
            seen.push(view);
            return view;
          },
          (view) => view.status === 'completed',
          { what: 'probe completed', intervalMs: 50 },
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
          seen.some(
            (view) => view.status === 'running' && view.progress > 0 && view.progress < 100,
          ),
          `no intermediate progress was visible: ${JSON.stringify(progress)}`,
        );

        // What operators see in the Web UI comes from the kind's declaration; these names and
        // the summary's wording are what they filter and read by.
        const description = await temporal.client.workflow.getHandle(job.id).describe();
        assert.equal(description.type, 'probeJob');
        assert.equal(description.typedSearchAttributes.get(JobKindKey), 'probe');
        assert.equal(description.typedSearchAttributes.get(JobTypeKey), 'PROBE');
        assert.equal(await description.staticSummary(), 'Probe: 4 steps, 300 ms apart');

        const list = await api.app.inject({
          method: 'GET',
          url: '/api/jobs',
          headers: { authorization: auth },
        });
        assert.deepEqual(
          list.json<{ jobs: JobView[] }>().jobs.map((view) => view.id),
          [job.id],
        );
        const stranger = await api.app.inject({
          method: 'GET',
          url: job.links.self,
          headers: { authorization: await api.authFor('mallory') },
        });
        assert.equal(stranger.statusCode, 404);

        // One grep by job id follows the job from the API into the worker's activities.
        const jobLines = lines().filter((line) => line['jobId'] === job.id);
        assert.ok(jobLines.some((line) => line['msg'] === 'job accepted'));
        const activityLines = jobLines.filter((line) => line['activityType'] === 'recordJobUpdate');
        assert.ok(
          activityLines.length >= 4,
          `only ${activityLines.length} activity log lines carried the job id`,
        );
        for (const line of activityLines) {
          assert.equal(line['workflowId'], job.id);
          assert.equal(typeof line['runId'], 'string');
        }
      },
      logger,
    );
  });
});
