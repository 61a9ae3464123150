import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestApi, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { testTemporal, uniqueTaskQueue } from '../support/temporal.js';

// Cancel and retry wait for the job's workflow to judge them; with no worker to do so, the
// API must answer in bounded time instead of holding the request.
describe('cancel and retry with no worker polling', () => {
  let test: TestDatabase;
  let api: TestApi;
  let auth: string;
  const temporal = testTemporal();
  const started: string[] = [];

  before(async () => {
    test = await createTestDatabase();
    api = await createTestApi({
      db: test.db,
      temporal,
      taskQueue: uniqueTaskQueue('no-worker'),
      env: {
        GEMINI_API_KEY: 'unused',
        GEMINI_BASE_URL: 'http://127.0.0.1:9',
        JOB_CONTROL_TIMEOUT_MS: '500',
      },
    });
    auth = await api.authFor('patient');
  });
  after(async () => {
    for (const id of started) {
      await temporal.client.workflow.getHandle(id).terminate('test over');
    }
    await api.app.close();
    await temporal.close();
    await test.drop();
  });

  it('answers 503 JOB_CONTROL_TIMEOUT with Retry-After when no worker takes the request', async () => {
    const created = await api.app.inject({
      method: 'POST',
      url: '/api/ai/jobs',
      headers: { authorization: auth },
      payload: { type: 'SUBGOAL_GENERATION', input: { goal: 'Learn to juggle' } },
    });
    assert.equal(created.statusCode, 202, created.body);
    const { id } = created.json<{ id: string }>();
    started.push(id);

    for (const action of ['cancel', 'retry']) {
      const answer = await api.app.inject({
        method: 'POST',
        url: `/api/ai/jobs/${id}/${action}`,
        headers: { authorization: auth },
      });
      assert.equal(answer.statusCode, 503, answer.body);
      assert.equal(answer.json<{ error: { code: string } }>().error.code, 'JOB_CONTROL_TIMEOUT');
      assert.equal(answer.headers['retry-after'], '5');
      assert.match(answer.body, new RegExp(`No worker took the ${action} request within 500 ms`));
    }
  });
});
