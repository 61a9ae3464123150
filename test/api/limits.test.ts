import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startHarness, type Harness, type TestApi } from '../support/harness.js';

interface ErrorBody {
  error: { code: string; message: string };
}

// No worker polls this task queue: accepted jobs stay pending (in flight) until terminated.
describe('per-user limits', () => {
  let h: Harness;
  /** Two API processes over one database, with a rate limit of 5 requests a minute. */
  let rateLimited: TestApi;
  let otherProcess: TestApi;

  before(async () => {
    const env = { GEMINI_API_KEY: 'k', USER_MAX_JOBS_IN_FLIGHT: '3' };
    h = await startHarness({ env });
    const limitedEnv = { ...env, USER_RATE_LIMIT_REQUESTS: '5', RATE_LIMIT_WINDOW_MS: '60000' };
    rateLimited = await h.startApi({ env: limitedEnv });
    otherProcess = await h.startApi({ env: limitedEnv });
  });
  after(() => h.stop());

  const createAiJob = async (user: string, headers: Record<string, string> = {}) =>
    h
      .user(user)
      .post(
        '/api/ai/jobs',
        { type: 'SUBGOAL_GENERATION', input: { goal: 'Learn to sail' } },
        headers,
      );

  it('accepts exactly the in-flight cap of concurrent jobs and refuses the rest with 429', async () => {
    const user = `busy-${randomUUID().slice(0, 8)}`;
    const responses = await Promise.all(Array.from({ length: 6 }, () => createAiJob(user)));
    const accepted = responses.filter((response) => response.statusCode === 202);
    const acceptedIds = accepted.map((response) => response.json<{ id: string }>().id);
    h.terminateOnStop(...acceptedIds);
    const refused = responses.filter((response) => response.statusCode !== 202);
    assert.equal(accepted.length, 3);
    assert.equal(refused.length, 3);
    for (const response of refused) {
      assert.equal(response.statusCode, 429);
      assert.equal(response.json<ErrorBody>().error.code, 'TOO_MANY_JOBS_IN_FLIGHT');
      assert.ok(Number(response.headers['retry-after']) > 0);
    }
    const rows = await h.db.selectFrom('jobs').select('id').where('owner_id', '=', user).execute();
    assert.equal(rows.length, 3);
    assert.equal((await h.temporal.client.workflow.count(`UserId = "${user}"`)).count, 3);

    // A job that ends frees its place.
    await h.db
      .updateTable('jobs')
      .set({ status: 'completed' })
      .where('id', '=', acceptedIds.at(-1)!)
      .execute();
    const next = await createAiJob(user);
    assert.equal(next.statusCode, 202, next.body);
    h.terminateOnStop(next.json<{ id: string }>().id);
  });

  it('turns 50 concurrent requests with one Idempotency-Key into one job', async () => {
    const user = `eager-${randomUUID().slice(0, 8)}`;
    const responses = await Promise.all(
      Array.from({ length: 50 }, () => createAiJob(user, { 'idempotency-key': 'sail-once' })),
    );
    const statuses = new Set(responses.map((response) => response.statusCode));
    assert.deepEqual([...statuses], [202], responses.find((r) => r.statusCode !== 202)?.body);
    const ids = new Set(responses.map((response) => response.json<{ id: string }>().id));
    assert.equal(ids.size, 1);
    h.terminateOnStop(...ids);
    assert.equal(
      responses.filter((response) => response.headers['idempotent-replayed'] === 'false').length,
      1,
    );
    const rows = await h.db.selectFrom('jobs').select('id').where('owner_id', '=', user).execute();
    assert.equal(rows.length, 1);
    assert.equal((await h.temporal.client.workflow.count(`UserId = "${user}"`)).count, 1);
  });

  // With no worker to answer the query, `?live=true` used to hold the request until the
  // client gave up (a fuzzer's 20 s timeout).
  it('answers ?live=true within seconds with live: null when no worker answers', async () => {
    const user = `curious-${randomUUID().slice(0, 8)}`;
    const created = await createAiJob(user);
    assert.equal(created.statusCode, 202, created.body);
    const { id } = created.json<{ id: string }>();
    h.terminateOnStop(id);
    const startedAt = Date.now();
    const response = await h.user(user).get(`/api/ai/jobs/${id}?live=true`);
    const elapsed = Date.now() - startedAt;
    assert.equal(response.statusCode, 200, response.body);
    assert.equal(response.json<{ live: unknown }>().live, null);
    assert.ok(elapsed < 10_000, `answered after ${elapsed} ms`);
  });

  it('limits each user to the request rate across API processes, with Retry-After', async () => {
    const user = `chatty-${randomUUID().slice(0, 8)}`;
    const get = async (on: TestApi, who = user) => on.user(who).get('/api/jobs');
    const remaining: string[] = [];
    for (const on of [rateLimited, otherProcess, rateLimited, otherProcess, rateLimited]) {
      const response = await get(on);
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(response.headers['ratelimit-limit'], '5');
      remaining.push(String(response.headers['ratelimit-remaining']));
    }
    assert.deepEqual(remaining, ['4', '3', '2', '1', '0']);
    const limited = await get(otherProcess);
    assert.equal(limited.statusCode, 429);
    assert.equal(limited.json<ErrorBody>().error.code, 'TOO_MANY_REQUESTS');
    const retryAfter = Number(limited.headers['retry-after']);
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
    assert.equal(
      (await get(rateLimited, `${user}-neighbour`)).statusCode,
      200,
      'other users unaffected',
    );
  });
});
