import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase } from '../support/database.js';
import { eventually } from '../support/eventually.js';
import { startHarness, type Harness, type TestApi } from '../support/harness.js';
import { expectOwnerWorkflows, interceptedTemporal, testTemporal } from '../support/temporal.js';

interface ErrorBody {
  error: { code: string; message: string };
}

// No worker polls this task queue: accepted jobs stay pending (in flight) until terminated.
const dayMs = 86_400_000;

describe('per-user limits', () => {
  let h: Harness;
  /**
   * Two API processes over one database, each allowing 5 submissions a minute (counted
   * together) and 3 reads a minute (counted by each for itself).
   */
  let rateLimited: TestApi;
  let otherProcess: TestApi;

  before(async () => {
    const env = { GEMINI_API_KEY: 'k', USER_MAX_JOBS_IN_FLIGHT: '3' };
    h = await startHarness({ env });
    const limitedEnv = {
      ...env,
      USER_RATE_LIMIT_REQUESTS: '5',
      USER_READ_RATE_LIMIT_REQUESTS: '3',
      // A day-long window: the tests' few requests never straddle a window's end.
      RATE_LIMIT_WINDOW_MS: String(dayMs),
    };
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
    await expectOwnerWorkflows(h.temporal.client, user, 3);

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
    await expectOwnerWorkflows(h.temporal.client, user, 1);
  });

  // At a steady 20 ms, each request waiting on another with its key asked about 50 times a
  // second, under the owner's lock, on the database pool every user shares.
  it('has a request waiting on an earlier one with its key ask the database less and less often', async () => {
    const temporal = testTemporal();
    let releaseStart!: () => void;
    const startHeld = new Promise<void>((resolve) => (releaseStart = resolve));
    const held = interceptedTemporal(temporal, {
      start: async (input, next) => {
        await startHeld;
        return next(input);
      },
    });
    let keyChecks = 0;
    const database = await createTestDatabase({
      onQuery: ({ sql }) => {
        if (/from "job_reservations"/.test(sql) && /"idempotency_key" =/.test(sql)) keyChecks += 1;
      },
    });
    const own = await startHarness({
      temporal: held,
      db: database.db,
      env: { GEMINI_API_KEY: 'k' },
    });
    try {
      const user = `patient-${randomUUID().slice(0, 8)}`;
      const send = () =>
        own
          .user(user)
          .post(
            '/api/ai/jobs',
            { type: 'SUBGOAL_GENERATION', input: { goal: 'Learn to sail' } },
            { 'idempotency-key': 'sail-later' },
          );
      const first = send();
      await eventually(
        async () => own.db.selectFrom('job_reservations').select('job_id').execute(),
        (rows) => rows.length === 1,
        { what: "the first request's reservation" },
      );
      const second = send();
      await eventually(
        async () => keyChecks,
        (checks) => checks >= 1,
        { what: 'the second request waiting on the first' },
      );
      // A window of time, not a wait for a state: how often the waiting request asks in it.
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      const checksIn3s = keyChecks;
      releaseStart();
      const [firstAnswer, secondAnswer] = await Promise.all([first, second]);
      assert.equal(firstAnswer.statusCode, 202, firstAnswer.body);
      assert.equal(secondAnswer.statusCode, 202, secondAnswer.body);
      const { id } = firstAnswer.json<{ id: string }>();
      assert.equal(secondAnswer.json<{ id: string }>().id, id);
      assert.equal(secondAnswer.headers['idempotent-replayed'], 'true');
      own.terminateOnStop(id);
      // 20, 40, 80, 160, 320 ms, then every 500 ms: about 10 in 3 s, against 150 at 20 ms.
      assert.ok(checksIn3s <= 15, `${checksIn3s} checks of the key in 3 s`);
    } finally {
      await own.stop();
      await database.drop();
      await temporal.close();
    }
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

  it('asks a job in flight once for ?live=true reads that come together, and an ended job never', async () => {
    // A flood of live reads must not become a flood of queries: each waits for a worker (here
    // none polls), and a query of a closed workflow has a worker replay its whole history.
    const temporal = testTemporal();
    let queries = 0;
    const counted = interceptedTemporal(temporal, {
      query: (input, next) => {
        queries += 1;
        return next(input);
      },
    });
    const own = await startHarness({ temporal: counted, env: { GEMINI_API_KEY: 'k' } });
    try {
      const user = `live-${randomUUID().slice(0, 8)}`;
      const created = await own
        .user(user)
        .post('/api/ai/jobs', { type: 'SUBGOAL_GENERATION', input: { goal: 'Learn to sail' } });
      assert.equal(created.statusCode, 202, created.body);
      const { id } = created.json<{ id: string }>();
      own.terminateOnStop(id);
      const read = () => own.user(user).get(`/api/ai/jobs/${id}?live=true`);
      const reads = await Promise.all(Array.from({ length: 20 }, read));
      for (const response of reads) {
        assert.equal(response.statusCode, 200, response.body);
        assert.equal(response.json<{ live: unknown }>().live, null);
      }
      assert.equal(queries, 1, 'one query for twenty reads made while it ran');

      await own.db.updateTable('jobs').set({ status: 'cancelled' }).where('id', '=', id).execute();
      const ended = await read();
      assert.equal(ended.json<{ live: unknown }>().live, null);
      assert.equal(queries, 1, 'an ended job is not asked');
    } finally {
      await own.stop();
      await temporal.close();
    }
  });

  // A cancel of an unknown job is a submission like any other: counted before the route answers.
  it('limits each user to the submission rate across API processes, with Retry-After', async () => {
    const user = `chatty-${randomUUID().slice(0, 8)}`;
    const submit = async (on: TestApi, who = user) =>
      on.user(who).post(`/api/ai/jobs/none-${randomUUID().slice(0, 8)}/cancel`);
    const remaining: string[] = [];
    for (const on of [rateLimited, otherProcess, rateLimited, otherProcess, rateLimited]) {
      const response = await submit(on);
      assert.equal(response.statusCode, 404, response.body);
      assert.equal(response.headers['ratelimit-limit'], '5');
      remaining.push(String(response.headers['ratelimit-remaining']));
    }
    assert.deepEqual(remaining, ['4', '3', '2', '1', '0']);
    const limited = await submit(otherProcess);
    assert.equal(limited.statusCode, 429);
    assert.equal(limited.json<ErrorBody>().error.code, 'TOO_MANY_REQUESTS');
    const retryAfter = Number(limited.headers['retry-after']);
    assert.ok(retryAfter >= 1 && retryAfter <= dayMs / 1000, `Retry-After ${retryAfter}`);
    assert.equal(
      (await submit(rateLimited, `${user}-neighbour`)).statusCode,
      404,
      'other users unaffected',
    );
    // Reads have a count of their own.
    assert.equal((await rateLimited.user(user).get('/api/jobs')).statusCode, 200);
  });

  it("limits each user's reads in each API process's memory, with the same 429 and Retry-After", async () => {
    const user = `poller-${randomUUID().slice(0, 8)}`;
    const read = async (on: TestApi, who = user) => on.user(who).get('/api/jobs');
    const remaining: string[] = [];
    for (let request = 0; request < 3; request += 1) {
      const response = await read(rateLimited);
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(response.headers['ratelimit-limit'], '3');
      remaining.push(String(response.headers['ratelimit-remaining']));
    }
    assert.deepEqual(remaining, ['2', '1', '0']);
    const limited = await read(rateLimited);
    assert.equal(limited.statusCode, 429);
    const retryAfter = Number(limited.headers['retry-after']);
    assert.ok(retryAfter >= 1 && retryAfter <= dayMs / 1000, `Retry-After ${retryAfter}`);
    assert.equal(limited.headers['ratelimit-remaining'], '0');
    assert.deepEqual(limited.json(), {
      error: {
        code: 'TOO_MANY_REQUESTS',
        message: `Too many reads: at most 3 per ${dayMs / 1000} s; retry in ${retryAfter} s`,
        details: { limit: 3, windowMs: dayMs },
      },
    });
    assert.equal((await read(rateLimited, `${user}-neighbour`)).statusCode, 200);
    // Another process counts for itself, and none of it was written to the database.
    assert.equal((await read(otherProcess)).statusCode, 200);
    const windows = await h.db
      .selectFrom('rate_limit_windows')
      .select('owner_id')
      .where('owner_id', 'like', `${user}%`)
      .execute();
    assert.deepEqual(windows, []);
  });

  it('keeps the submission counts of the last two windows only, however many users ever submitted', async () => {
    const shortWindows = await h.startApi({
      env: { GEMINI_API_KEY: 'k', RATE_LIMIT_WINDOW_MS: '2000' },
    });
    const tag = randomUUID().slice(0, 8);
    const submit = (who: string) =>
      shortWindows.user(who).post(`/api/ai/jobs/none-${randomUUID().slice(0, 8)}/cancel`);
    const countsOf = (prefix: string) =>
      h.db
        .selectFrom('rate_limit_windows')
        .select('owner_id')
        .where('owner_id', 'like', `${prefix}%`)
        .execute();
    // All at once: a window keeps its counts until the one after next begins, so these must
    // land within two windows of each other, however slow a busy machine makes each request.
    const passing = await Promise.all(
      Array.from({ length: 20 }, (_, user) => submit(`passing-${tag}-${user}`)),
    );
    assert.deepEqual(new Set(passing.map((response) => response.statusCode)), new Set([404]));
    assert.equal((await countsOf(`passing-${tag}-`)).length, 20);
    // Another user goes on submitting: once two windows have begun since, the counts of the
    // users who left are gone.
    await eventually(
      async () => {
        assert.equal((await submit(`staying-${tag}`)).statusCode, 404);
        return (await countsOf(`passing-${tag}-`)).length;
      },
      (left) => left === 0,
      { timeoutMs: 15_000, intervalMs: 200, what: "the passing users' counts dropped" },
    );
    assert.ok((await countsOf(`staying-${tag}`)).length <= 2);
  });
});
