import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { openDatabase, type Db } from '../../src/db/database.js';
import { createActivityDependencies } from '../../src/worker/dependencies.js';
import type { RunningWorker } from '../../src/worker/worker.js';
import { FakeGoogle } from '../fakes/fake-google.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startHarness, testJwtSecret, type Harness } from '../support/harness.js';
import { openEventStream } from '../support/sse.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { startTestWorker } from '../support/temporal.js';

interface AiJobView {
  status: string;
  attempt: number;
  phase: string | null;
  error: { code: string } | null;
  startedAt: string | null;
  estimatedCompletionAt: string | null;
}

// A retry's new attempt writes its first state from a worker, some time after the 202: its
// worker's database goes through a proxy the test stalls, so that time lasts as long as the
// test needs to read the job in between.
describe('a job whose retry was accepted', () => {
  let google: FakeGoogle;
  let database: TestDatabase;
  let proxy: TcpProxy;
  let workerDb: Db;
  let h: Harness;
  let worker: RunningWorker;

  before(async () => {
    google = new FakeGoogle(async () => undefined);
    await google.start();
    const env = {
      AUTH_JWT_SECRET: testJwtSecret,
      DATA_DIR: path.join(os.tmpdir(), `vlogflow-retry-${randomUUID()}`),
      GEMINI_API_KEY: 'test-key',
      GEMINI_BASE_URL: google.url,
    };
    database = await createTestDatabase();
    const { hostname, port } = new URL(database.url);
    proxy = await TcpProxy.start(hostname, Number(port));
    workerDb = await openDatabase({
      databaseUrl: proxy.proxiedUrl(database.url),
      dataDir: '.',
      maxConnections: 2,
    });
    h = await startHarness({ env, db: database.db });
    worker = await startTestWorker(h.taskQueue, {
      ...(await createActivityDependencies(loadConfig(env), workerDb)),
      db: workerDb,
    });
  });
  after(async () => {
    proxy.restore();
    await worker.stop();
    await h.stop();
    await workerDb.destroy();
    await proxy.stop();
    await database.drop();
    await google.stop();
  });

  it('reads as its new attempt at once, in its view, the list and its stream, not as the failure', async () => {
    const user = h.user('retrier');
    google.scenario.analysisAnswers.push({ kind: 'blocked' });
    const { id, estimatedCompletionAt: firstEstimate } = await user.startJob<
      AiJobView & { id: string }
    >('ai', {
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Learn to knit' },
    });
    h.terminateOnStop(id);
    const failed = await user.awaitJob<AiJobView>('ai', id, (view) => view.status === 'failed', {
      what: 'failed',
    });
    assert.equal(failed.attempt, 1);
    const streamUrl = `${await h.api.listen()}/api/ai/jobs/${id}/events`;
    const authorization = await user.authorization();
    const first = await openEventStream(streamUrl, { authorization });
    const end = (await first.rest()).at(-1)!;
    assert.equal(end.event, 'end');

    proxy.stall();
    const retry = await user.retry('ai', id);
    assert.equal(retry.statusCode, 202, retry.body);

    const view = await user.view<AiJobView>('ai', id);
    assert.deepEqual(
      {
        status: view.status,
        attempt: view.attempt,
        phase: view.phase,
        error: view.error,
        startedAt: view.startedAt,
      },
      { status: 'pending', attempt: 2, phase: 'retried', error: null, startedAt: null },
    );
    // Its estimate counts from the retry, not from the creation of the attempt that failed.
    assert.ok(
      Date.parse(view.estimatedCompletionAt!) > Date.parse(firstEstimate!),
      `${view.estimatedCompletionAt} after ${firstEstimate}`,
    );
    const listed = (await user.get('/api/jobs')).json<{ jobs: (AiJobView & { id: string })[] }>();
    assert.equal(listed.jobs.find((job) => job.id === id)?.status, 'pending');
    // Resuming after the failure's end is not told the job is over (a 204 stops an
    // EventSource for good): the stream waits for the new attempt.
    const resumed = await openEventStream(streamUrl, { authorization, 'last-event-id': end.id! });
    assert.equal(resumed.status, 200);

    google.scenario.analysisAnswers.push({ kind: 'valid' });
    proxy.restore();
    const events = await resumed.rest();
    const done = JSON.parse(events.at(-1)!.data) as AiJobView;
    assert.equal(events.at(-1)!.event, 'end');
    assert.deepEqual(
      { status: done.status, attempt: done.attempt },
      { status: 'completed', attempt: 2 },
    );
    for (const event of events.slice(0, -1)) {
      assert.equal(
        (JSON.parse(event.data) as AiJobView).attempt,
        2,
        'only the new attempt follows',
      );
    }
  });
});

// A retry puts its job in flight again: an owner at USER_MAX_JOBS_IN_FLIGHT retried every
// failed job they had, each accepted, as many in flight at once as they had failures.
describe('a retry by an owner at the in-flight cap', () => {
  let google: FakeGoogle;
  let h: Harness;

  before(async () => {
    google = new FakeGoogle(async () => undefined);
    await google.start();
    const env = {
      AUTH_JWT_SECRET: testJwtSecret,
      DATA_DIR: path.join(os.tmpdir(), `vlogflow-retry-cap-${randomUUID()}`),
      GEMINI_API_KEY: 'test-key',
      GEMINI_BASE_URL: google.url,
      USER_MAX_JOBS_IN_FLIGHT: '1',
    };
    h = await startHarness({
      env,
      worker: (db) => createActivityDependencies(loadConfig(env), db),
    });
  });
  after(async () => {
    await h.stop();
    await google.stop();
  });

  it('is refused 429 TOO_MANY_JOBS_IN_FLIGHT, holding nothing, and accepted once a place is free', async () => {
    const user = h.user(`capped-${randomUUID().slice(0, 8)}`);
    google.scenario.analysisAnswers.push({ kind: 'blocked' });
    const { id } = await user.startJob('ai');
    h.terminateOnStop(id);
    await user.awaitJob<AiJobView>('ai', id, (view) => view.status === 'failed');
    const busy = await user.startJob('probe', { steps: 1, stepDelayMs: 60_000 });
    h.terminateOnStop(busy.id);

    const refused = await user.retry('ai', id);
    assert.equal(refused.statusCode, 429, refused.body);
    assert.equal(refused.json<{ error: { code: string } }>().error.code, 'TOO_MANY_JOBS_IN_FLIGHT');
    assert.equal((await user.view<AiJobView>('ai', id)).status, 'failed');
    const holds = () =>
      h.db.selectFrom('cost_holds').select(['attempt', 'state']).where('job_id', '=', id).execute();
    assert.deepEqual(await holds(), [{ attempt: 1, state: 'released' }]);

    const cancelled = await user.post(`/api/probes/${busy.id}/cancel`);
    assert.equal(cancelled.statusCode, 202, cancelled.body);
    await user.awaitJob<AiJobView>('probe', busy.id, (view) => view.status === 'cancelled');
    const accepted = await user.retry('ai', id);
    assert.equal(accepted.statusCode, 202, accepted.body);
    // Its model call takes the fake's next answer: done before the next test queues its own.
    await user.awaitJob<AiJobView>(
      'ai',
      id,
      (view) => view.attempt === 2 && view.status === 'completed',
    );
  });

  it('takes one of two retries sent together for the one place left, holding for it alone', async () => {
    const user = h.user(`racing-${randomUUID().slice(0, 8)}`);
    const failed: string[] = [];
    for (let i = 0; i < 2; i += 1) {
      google.scenario.analysisAnswers.push({ kind: 'blocked' });
      const { id } = await user.startJob('ai');
      h.terminateOnStop(id);
      await user.awaitJob<AiJobView>('ai', id, (view) => view.status === 'failed');
      failed.push(id);
    }
    // Each was checked against the cap before the other's job read as in flight again.
    const answers = await Promise.all(failed.map((id) => user.retry('ai', id)));
    assert.deepEqual(answers.map((answer) => answer.statusCode).sort(), [202, 429]);
    const refused = failed[answers.findIndex((answer) => answer.statusCode === 429)]!;
    const holds = await h.db
      .selectFrom('cost_holds')
      .select(['attempt', 'state'])
      .where('job_id', '=', refused)
      .execute();
    assert.deepEqual(holds, [{ attempt: 1, state: 'released' }]);
  });
});
