import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { JobView } from '../../src/api/schemas/jobs.js';
import { loadConfig } from '../../src/config.js';
import { createActivityDependencies } from '../../src/worker/dependencies.js';
import { FakeGoogle } from '../fakes/fake-google.js';
import { startHarness, testJwtSecret, type Harness, type UserClient } from '../support/harness.js';

interface ErrorBody {
  error: { code: string; message: string };
}

const ended = (view: JobView) =>
  ['completed', 'failed', 'cancelled', 'timeout'].includes(view.status);

// Jobs of one user that share a concurrency key run one at a time, in submission order.
describe('concurrency keys', () => {
  let google: FakeGoogle;
  let h: Harness;
  let alice: UserClient;

  before(async () => {
    google = new FakeGoogle(async () => undefined);
    await google.start();
    const env = {
      AUTH_JWT_SECRET: testJwtSecret,
      DATA_DIR: path.join(os.tmpdir(), `vlogflow-keys-${randomUUID()}`),
      GEMINI_API_KEY: 'test-key',
      GEMINI_BASE_URL: google.url,
    };
    h = await startHarness({
      env,
      worker: (db) => createActivityDependencies(loadConfig(env), db),
    });
    alice = h.user('alice');
  });
  after(async () => {
    await h.stop();
    await google.stop();
  });

  const probe = (user: UserClient, body: object) =>
    user.startJob<JobView>('probe', { steps: 2, stepDelayMs: 1_000, ...body });
  const awaitProbe = (
    user: UserClient,
    id: string,
    done: (view: JobView) => boolean,
    what: string,
  ) => user.awaitJob<JobView>('probe', id, done, { what, timeoutMs: 30_000 });

  it('run jobs with one key strictly one at a time, in order, the later ones queued with their place', async () => {
    const jobs: JobView[] = [];
    for (let i = 0; i < 3; i += 1) jobs.push(await probe(alice, { concurrencyKey: 'album-1' }));
    const [first, second, third] = jobs as [JobView, JobView, JobView];
    assert.equal(second.concurrencyKey, 'album-1');

    await awaitProbe(alice, second.id, (view) => view.phase === 'queued: 1 ahead', '2nd queued');
    const waiting = await awaitProbe(
      alice,
      third.id,
      (view) => view.phase === 'queued: 2 ahead',
      '3rd queued',
    );
    assert.equal(waiting.status, 'queued');
    assert.equal(waiting.startedAt, null);
    // When the first ends, the jobs behind it learn their new place at once.
    await awaitProbe(alice, third.id, (view) => view.phase === 'queued: 1 ahead', '3rd moved up');

    const done: JobView[] = [];
    for (const job of jobs) {
      done.push(await awaitProbe(alice, job.id, (view) => view.status === 'completed', job.id));
    }
    for (let i = 1; i < done.length; i += 1) {
      const [before, next] = [done[i - 1]!, done[i]!];
      assert.ok(
        next.startedAt! >= before.completedAt!,
        `job ${i + 1} started at ${next.startedAt}, before job ${i} completed at ${before.completedAt}`,
      );
    }
    assert.equal(done[0]!.id, first.id);
  });

  it("never hold back another user's equal key or a job without a key; a queued job cancels at once and lets the next go", async () => {
    const blocker = await probe(alice, { steps: 1, stepDelayMs: 6_000, concurrencyKey: 'album-2' });
    await awaitProbe(alice, blocker.id, (view) => view.status === 'running', 'blocker running');
    const ai = await alice.startJob<JobView>('ai', {
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Learn to sail' },
      concurrencyKey: 'album-2',
    });
    const last = await probe(alice, { steps: 1, stepDelayMs: 0, concurrencyKey: 'album-2' });
    await alice.awaitJob<JobView>('ai', ai.id, (view) => view.phase === 'queued: 1 ahead', {
      what: 'AI job queued',
    });
    await awaitProbe(alice, last.id, (view) => view.phase === 'queued: 2 ahead', 'last queued');

    const bob = h.user('bob');
    const bobs = await probe(bob, { steps: 1, stepDelayMs: 0, concurrencyKey: 'album-2' });
    const keyless = await probe(alice, { steps: 1, stepDelayMs: 0 });
    await awaitProbe(bob, bobs.id, (view) => view.status === 'completed', "bob's job");
    await awaitProbe(alice, keyless.id, (view) => view.status === 'completed', 'keyless job');
    assert.equal((await alice.view<JobView>('probe', blocker.id)).status, 'running');

    const cancel = await alice.cancel('ai', ai.id, { reason: 'not needed' });
    assert.equal(cancel.statusCode, 202, cancel.body);
    const cancelled = await alice.awaitJob<JobView>('ai', ai.id, ended, { what: 'AI job ended' });
    assert.equal(cancelled.status, 'cancelled');
    assert.equal(cancelled.error?.code, 'CANCELLED');
    assert.equal(cancelled.startedAt, null, 'the cancelled job never started');
    assert.equal(google.modelCalls(), 0, 'the cancelled job called the model');
    // Its end woke the job behind it, which moved up while the blocker still runs.
    await awaitProbe(alice, last.id, (view) => view.phase === 'queued: 1 ahead', 'last moved up');
    assert.equal((await alice.view<JobView>('probe', blocker.id)).status, 'running');

    const first = await awaitProbe(alice, blocker.id, ended, 'blocker ended');
    const next = await awaitProbe(alice, last.id, ended, 'last ended');
    assert.equal(next.status, 'completed');
    assert.ok(next.startedAt! >= first.completedAt!);
  });

  it('refuse a malformed key with 400 naming the field, and start nothing', async () => {
    const carol = h.user('carol');
    const cases: [string, object][] = [
      ['/api/probes', { steps: 1, concurrencyKey: 'my album' }],
      ['/api/probes', { steps: 1, concurrencyKey: 'k'.repeat(129) }],
      ['/api/probes', { steps: 1, concurrencyKey: '' }],
      ['/api/probes', { steps: 1, concurrencyKey: 7 }],
      ['/api/ai/jobs', { type: 'SUBGOAL_GENERATION', input: { goal: 'x' }, concurrencyKey: 'a/b' }],
    ];
    for (const [url, body] of cases) {
      const response = await carol.post(url, body);
      assert.equal(response.statusCode, 400, `${url} ${JSON.stringify(body)}: ${response.body}`);
      const { error } = response.json<ErrorBody>();
      assert.equal(error.code, 'VALIDATION_FAILED');
      assert.match(error.message, /^body\.concurrencyKey: /);
    }
    const list = await carol.get('/api/jobs');
    assert.deepEqual(list.json<{ jobs: JobView[] }>().jobs, []);
  });

  it('keep Idempotency-Key replays: the same key returns the job, another key is another request', async () => {
    const dave = h.user('dave');
    const body = (concurrencyKey: string) => ({
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Learn to sail' },
      concurrencyKey,
    });
    const headers = { 'idempotency-key': 'sail-1' };
    const first = await dave.post('/api/ai/jobs', body('boat'), headers);
    assert.equal(first.statusCode, 202, first.body);
    const replay = await dave.post('/api/ai/jobs', body('boat'), headers);
    assert.ok(replay.statusCode < 300, replay.body);
    assert.equal(replay.json<JobView>().id, first.json<JobView>().id);
    assert.equal(replay.json<JobView>().concurrencyKey, 'boat');
    const otherKey = await dave.post('/api/ai/jobs', body('dinghy'), headers);
    assert.equal(otherKey.statusCode, 422, otherKey.body);
    assert.equal(otherKey.json<ErrorBody>().error.code, 'IDEMPOTENCY_KEY_REUSED');
  });
});
