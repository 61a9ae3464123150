// Clients poll their jobs: a read must cost one indexed read and no write, answer 304 when
// nothing changed, and say when to ask again.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { applyJobUpdate, insertJob } from '../../src/db/jobs.js';
import type { JobSnapshot } from '../../src/jobs/contracts.js';
import { throttlePhase } from '../../src/jobs/provider-throttle.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { eventually } from '../support/eventually.js';
import { startHarness, type Harness } from '../support/harness.js';
import { jobRecord, vlogInput } from '../support/jobs.js';
import { documentedOperations } from '../support/openapi.js';

describe('polling a job', () => {
  let test: TestDatabase;
  let h: Harness;
  /** The kind of every statement the API sent (SelectQueryNode, InsertQueryNode, RawNode…). */
  const queries = { kinds: [] as string[] };

  before(async () => {
    test = await createTestDatabase({ onQuery: (query) => queries.kinds.push(query.query.kind) });
    h = await startHarness({ db: test.db, env: { GEMINI_API_KEY: 'k' } });
  });
  after(async () => {
    await h.stop();
    await test.drop();
  });

  /** The queries one request made. */
  async function queriesOf<T>(request: () => Promise<T>): Promise<{ answer: T; kinds: string[] }> {
    queries.kinds = [];
    const answer = await request();
    return { answer, kinds: queries.kinds };
  }

  async function update(jobId: string, seq: number, snapshot: Partial<JobSnapshot>) {
    await applyJobUpdate(test.db, {
      jobId,
      seq,
      snapshot: {
        status: 'running',
        progress: 0,
        phase: null,
        attempt: 1,
        runId: 'run',
        startedAt: new Date().toISOString(),
        completedAt: null,
        result: null,
        error: null,
        ...snapshot,
      },
    });
  }

  it('reads a job, an AI job and a list with one select each and writes nothing', async () => {
    const user = h.user(`poller-${randomUUID().slice(0, 8)}`);
    const probe = await user.startJob('probe');
    const ai = await user.startJob('ai');
    h.terminateOnStop(probe.id, ai.id);
    // The AI view's estimate comes from a median kept for a while: the first read fills it.
    assert.equal((await user.get(`/api/ai/jobs/${ai.id}`)).statusCode, 200);
    for (const url of [`/api/jobs/${probe.id}`, `/api/ai/jobs/${ai.id}`, '/api/jobs']) {
      const { answer, kinds } = await queriesOf(() => user.get(url));
      assert.equal(answer.statusCode, 200, answer.body);
      assert.deepEqual(kinds, ['SelectQueryNode'], url);
    }
    // A positive control: submissions are counted in the database (the two starts and this).
    const { kinds } = await queriesOf(() => user.post('/api/ai/jobs/none/cancel'));
    assert.ok(kinds.includes('InsertQueryNode'), kinds.join());
    const windows = await test.db
      .selectFrom('rate_limit_windows')
      .select('requests')
      .where('owner_id', '=', user.id)
      .execute();
    assert.deepEqual(windows, [{ requests: 3 }]);
  });

  it('answers reads polled at once with fewer statements, each to its owner only', async () => {
    const owner = h.user(`busy-${randomUUID().slice(0, 8)}`);
    const stranger = h.user(`stranger-${randomUUID().slice(0, 8)}`);
    const { id } = await owner.startJob('probe');
    h.terminateOnStop(id);
    const url = `/api/jobs/${id}`;
    const reads = 24;
    const { answer, kinds } = await queriesOf(() =>
      Promise.all(
        Array.from({ length: reads }, (_, index) => (index % 2 ? stranger : owner).get(url)),
      ),
    );
    answer.forEach((response, index) =>
      assert.equal(response.statusCode, index % 2 ? 404 : 200, `read ${index}`),
    );
    assert.ok(kinds.length < reads / 2, `${kinds.length} statements for ${reads} reads`);
    assert.ok(
      kinds.every((kind) => kind === 'SelectQueryNode'),
      kinds.join(),
    );

    // A read asked once an update committed sees it, whatever statements were out before.
    const before = Array.from({ length: reads }, () => owner.get(url));
    await update(id, 1, { status: 'running', progress: 70 });
    const after = await owner.get(url);
    assert.equal(after.json<{ progress: number }>().progress, 70);
    await Promise.all(before);
  });

  it('answers 304 while nothing changed, and 200 with a new ETag once something did', async () => {
    const user = h.user(`watcher-${randomUUID().slice(0, 8)}`);
    const { id } = await user.startJob('probe');
    h.terminateOnStop(id);
    const url = `/api/jobs/${id}`;

    // No worker runs here, which the view says once the API has asked Temporal, and from then
    // on (test/e2e/split-workers.test.ts): the views compared below are all after that.
    const first = await eventually(
      () => user.get(url),
      (read) => read.json<{ waitingForWorker?: unknown }>().waitingForWorker !== undefined,
      { what: 'the view saying no worker polls the queue' },
    );
    assert.equal(first.statusCode, 200);
    const etag = String(first.headers.etag);
    assert.match(etag, /^"[\w-]+"$/);
    assert.equal(first.headers['x-poll-interval'], '5', 'pending');
    assert.equal(first.headers['cache-control'], 'private, no-cache');

    const unchanged = await user.get(url, { 'if-none-match': etag });
    assert.equal(unchanged.statusCode, 304);
    assert.equal(unchanged.body, '');
    assert.equal(unchanged.headers.etag, etag);
    assert.equal(unchanged.headers['x-poll-interval'], '5');
    for (const header of [`W/${etag}`, `"other", ${etag}`, '*']) {
      assert.equal((await user.get(url, { 'if-none-match': header })).statusCode, 304, header);
    }
    assert.equal((await user.get(url, { 'if-none-match': '"other"' })).statusCode, 200);

    await update(id, 1, { status: 'queued', progress: 0, phase: 'queued: 1 ahead' });
    const queued = await user.get(url, { 'if-none-match': etag });
    assert.equal(queued.statusCode, 200);
    assert.equal(queued.headers['x-poll-interval'], '5', 'queued: waits to start as pending does');

    await update(id, 2, { status: 'running', progress: 40 });
    const running = await user.get(url, { 'if-none-match': String(queued.headers.etag) });
    assert.equal(running.statusCode, 200);
    assert.equal(running.json<{ progress: number }>().progress, 40);
    assert.notEqual(running.headers.etag, etag);
    assert.equal(running.headers['x-poll-interval'], '2', 'running');

    // Waiting for a provider's quota: minutes to hours, not worth a read every 2 s.
    const waitingPhase = throttlePhase('video generation', {
      throttled: true,
      reason: 'quota',
      retryAfterMs: 3 * 3_600_000,
      ahead: 9000,
    });
    await update(id, 3, { status: 'running', progress: 40, phase: waitingPhase });
    const waiting = await user.get(url);
    assert.equal(waiting.json<{ phase: string }>().phase, waitingPhase);
    assert.equal(waiting.headers['x-poll-interval'], '30', 'waiting for quota');
    await update(id, 4, { status: 'running', progress: 45, phase: 'generating the video' });
    assert.equal((await user.get(url)).headers['x-poll-interval'], '2', 'running again');

    await update(id, 5, {
      status: 'completed',
      progress: 100,
      completedAt: new Date().toISOString(),
    });
    const done = await user.get(url, { 'if-none-match': String(running.headers.etag) });
    assert.equal(done.statusCode, 200);
    assert.notEqual(done.headers.etag, running.headers.etag);
    assert.equal(done.headers['x-poll-interval'], undefined, 'ended: nothing to poll for');
    assert.equal(
      (await user.get(url, { 'if-none-match': String(done.headers.etag) })).statusCode,
      304,
    );
  });

  it('tags the kind routes and lists too, and never a submission', async () => {
    const user = h.user(`lister-${randomUUID().slice(0, 8)}`);
    const ai = await user.startJob('ai');
    h.terminateOnStop(ai.id);
    const one = await user.get(`/api/ai/jobs/${ai.id}`);
    assert.equal(one.headers['x-poll-interval'], '5');
    assert.equal(
      (await user.get(`/api/ai/jobs/${ai.id}`, { 'if-none-match': String(one.headers.etag) }))
        .statusCode,
      304,
    );
    const list = await user.get('/api/ai/jobs');
    assert.equal(list.headers['x-poll-interval'], undefined, 'a list is no one job');
    assert.equal(
      (await user.get('/api/ai/jobs', { 'if-none-match': String(list.headers.etag) })).statusCode,
      304,
    );
    await update(ai.id, 1, { status: 'processing', progress: 10 });
    assert.equal(
      (await user.get('/api/ai/jobs', { 'if-none-match': String(list.headers.etag) })).statusCode,
      200,
    );
    const started = await user.post('/api/probes', { steps: 1, stepDelayMs: 0 });
    assert.equal(started.statusCode, 202);
    h.terminateOnStop(started.json<{ id: string }>().id);
    assert.equal(started.headers.etag, undefined);
  });

  it('answers HEAD as GET on every read: 304 with no body and no Content-Length when unchanged', async () => {
    const owner = `header-${randomUUID().slice(0, 8)}`;
    // An operator, so the admin reads answer too.
    const reader = h.admin(owner);
    const probe = jobRecord({ ownerId: owner });
    const ai = jobRecord({
      id: `ai-${randomUUID()}`,
      kind: 'ai',
      type: 'SUBGOAL_GENERATION',
      ownerId: owner,
      input: { goal: 'g', maxItems: 3, language: 'en' },
    });
    const vlog = jobRecord({
      id: `vlog-${randomUUID()}`,
      kind: 'vlog',
      type: 'VLOG',
      ownerId: owner,
      input: vlogInput(),
    });
    for (const job of [probe, ai, vlog]) await insertJob(test.db, job, 'pending');
    const reads: Record<string, string> = {
      '/api/admin/budgets/{userId}': `/api/admin/budgets/${owner}`,
      '/api/admin/failure-groups': '/api/admin/failure-groups',
      '/api/ai/jobs': '/api/ai/jobs',
      '/api/ai/jobs/{id}': `/api/ai/jobs/${ai.id}`,
      '/api/jobs': '/api/jobs',
      '/api/jobs/{id}': `/api/jobs/${probe.id}`,
      '/api/usage': '/api/usage',
      '/api/vlogs': '/api/vlogs',
      '/api/vlogs/upload-limits': '/api/vlogs/upload-limits',
      '/api/vlogs/{id}': `/api/vlogs/${vlog.id}`,
    };
    // Every GET under /api but the progress streams, which are no conditional reads.
    const readOperations = (await documentedOperations(h.api.app)).filter(
      ({ method, path }) =>
        method === 'GET' && path.startsWith('/api/') && !path.endsWith('/events'),
    );
    assert.deepEqual(Object.keys(reads).sort(), readOperations.map(({ path }) => path).sort());
    // A client generated from the document knows it may ask conditionally, and what it then gets.
    assert.deepEqual(
      readOperations
        .filter(
          ({ headerParameters, responses }) =>
            !headerParameters.includes('if-none-match') || !responses.includes('304'),
        )
        .map(({ path }) => path),
      [],
      'every read documents If-None-Match and its 304',
    );
    // A 304 (or a 204) has no body: documented with a content type, it told a client checking
    // answers against the document to expect JSON that never comes.
    assert.deepEqual(
      (await documentedOperations(h.api.app)).flatMap(
        ({ method, path, responses, responsesWithoutBody }) =>
          responses
            .filter(
              (status) => ['204', '304'].includes(status) && !responsesWithoutBody.includes(status),
            )
            .map((status) => `${method} ${path} ${status}`),
      ),
      [],
      'every 204 and 304 is documented without a body',
    );

    const wrong: string[] = [];
    for (const url of Object.values(reads)) {
      const read = await reader.get(url);
      assert.equal(read.statusCode, 200, `${url}: ${read.body}`);
      const etag = String(read.headers.etag);
      const head = await reader.request({ method: 'HEAD', url });
      if (head.statusCode !== 200 || head.body !== '' || head.headers.etag !== etag) {
        wrong.push(`HEAD ${url}: ${head.statusCode} ${head.headers.etag} ${head.body}`);
      }
      if (head.headers['content-length'] !== String(Buffer.byteLength(read.body))) {
        wrong.push(`HEAD ${url}: Content-Length ${head.headers['content-length']}`);
      }
      for (const ifNoneMatch of [etag, '*']) {
        for (const method of ['GET', 'HEAD'] as const) {
          const unchanged = await reader.request({
            method,
            url,
            headers: { 'if-none-match': ifNoneMatch },
          });
          const got = [
            unchanged.statusCode,
            unchanged.body,
            unchanged.headers.etag,
            unchanged.headers['content-length'],
            unchanged.headers['content-type'],
          ];
          const want = [304, '', etag, undefined, undefined];
          if (JSON.stringify(got) !== JSON.stringify(want)) {
            wrong.push(`${method} ${url} if-none-match ${ifNoneMatch}: ${JSON.stringify(got)}`);
          }
        }
      }
    }
    assert.deepEqual(wrong, []);
  });
});
