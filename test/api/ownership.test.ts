import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { insertJob } from '../../src/db/jobs.js';
import { startHarness, type Harness } from '../support/harness.js';
import { jobRecord, vlogInput } from '../support/jobs.js';

interface ErrorBody {
  error: { code: string; message: string };
}

// Alice's jobs must be invisible to Bob: every route answers him exactly as for an unknown id.
describe('ownership', () => {
  let h: Harness;
  const alice = `alice-${randomUUID().slice(0, 8)}`;
  const bob = `bob-${randomUUID().slice(0, 8)}`;
  const vlog = jobRecord({
    id: `vlog-${randomUUID()}`,
    kind: 'vlog',
    type: 'VLOG',
    ownerId: alice,
    input: vlogInput({ title: 'Alice at the beach' }),
  });
  const ai = jobRecord({
    id: `ai-${randomUUID()}`,
    kind: 'ai',
    type: 'SUBGOAL_GENERATION',
    ownerId: alice,
    input: { goal: "Alice's secret plan", maxItems: 3, language: 'en' },
  });
  const probe = jobRecord({ ownerId: alice });

  before(async () => {
    h = await startHarness({
      env: { GEMINI_API_KEY: 'k', VERTEX_PROJECT: 'p', VEO_OUTPUT_GCS_URI: 'gs://b/o/' },
    });
    for (const job of [vlog, ai, probe]) await insertJob(h.db, job, 'failed');
  });
  after(() => h.stop());

  async function call(user: string, method: 'GET' | 'POST', url: string) {
    const response = await h.user(user).request({
      method,
      url,
      ...(method === 'POST' ? { payload: {} } : {}),
    });
    return { status: response.statusCode, body: response.json<ErrorBody>() };
  }

  const routes = (id: string) =>
    [
      ['GET', `/api/jobs/${id}`],
      ['GET', `/api/vlogs/${id}`],
      ['GET', `/api/vlogs/${id}?live=true`],
      ['POST', `/api/vlogs/${id}/cancel`],
      ['POST', `/api/vlogs/${id}/retry`],
      ['GET', `/api/ai/jobs/${id}`],
      ['GET', `/api/ai/jobs/${id}?live=true`],
      ['POST', `/api/ai/jobs/${id}/cancel`],
      ['POST', `/api/ai/jobs/${id}/retry`],
    ] as const;

  it("answers another user's job on every route exactly as an unknown one", async () => {
    for (const job of [vlog, ai, probe]) {
      const unknownId = `${job.kind}-${randomUUID()}`;
      for (const [index, [method, url]] of routes(job.id).entries()) {
        const theirs = await call(bob, method, url);
        const [, unknownUrl] = routes(unknownId)[index]!;
        const unknown = await call(bob, method, unknownUrl);
        assert.equal(theirs.status, 404, `${method} ${url}: ${JSON.stringify(theirs.body)}`);
        assert.equal(theirs.body.error.code, 'NOT_FOUND');
        assert.deepEqual(
          { ...theirs, body: theirs.body.error.message.replace(job.id, '<id>') },
          { ...unknown, body: unknown.body.error.message.replace(unknownId, '<id>') },
          `${method} ${url}`,
        );
      }
    }
  });

  it('shows each job only on the routes of its own kind, and only to its owner', async () => {
    assert.equal((await call(alice, 'GET', `/api/vlogs/${vlog.id}`)).status, 200);
    assert.equal((await call(alice, 'GET', `/api/ai/jobs/${ai.id}`)).status, 200);
    assert.equal((await call(alice, 'GET', `/api/jobs/${probe.id}`)).status, 200);
    assert.equal((await call(alice, 'GET', `/api/ai/jobs/${vlog.id}`)).status, 404);
    assert.equal((await call(alice, 'GET', `/api/vlogs/${ai.id}`)).status, 404);
    assert.equal((await call(alice, 'POST', `/api/vlogs/${ai.id}/cancel`)).status, 404);
    assert.equal((await call(alice, 'POST', `/api/ai/jobs/${vlog.id}/retry`)).status, 404);
  });

  it("never lists another user's jobs", async () => {
    for (const url of ['/api/jobs', '/api/vlogs', '/api/ai/jobs']) {
      const bobs = await h.user(bob).get(url);
      assert.equal(bobs.statusCode, 200, bobs.body);
      const body = bobs.json<Record<string, unknown[]>>();
      assert.deepEqual(Object.values(body)[0], [], url);
      const alices = await h.user(alice).get(url);
      assert.ok(
        (Object.values(alices.json<Record<string, unknown[]>>())[0] ?? []).length >= 1,
        url,
      );
    }
  });
});
