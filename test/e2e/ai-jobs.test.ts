import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { createActivityDependencies } from '../../src/worker/dependencies.js';
import { JobFailureCodeKey } from '../../src/jobs/search-attributes.js';
import { FakeGoogle } from '../fakes/fake-google.js';
import { eventually } from '../support/eventually.js';
import {
  startHarness,
  testJwtSecret,
  type Harness,
  type TestApi,
  type UserClient,
} from '../support/harness.js';

interface AiJobView {
  id: string;
  kind: string;
  type: string;
  status: string;
  progress: number;
  phase: string | null;
  attempt: number;
  retryCount: number;
  input: Record<string, unknown>;
  result: {
    items: { title: string; description: string; estimatedMinutes?: number }[];
    model: string;
  } | null;
  error: { code: string; message: string } | null;
  estimatedCompletionAt: string | null;
  createdAt: string;
  completedAt: string | null;
  workflowId: string;
}

interface ErrorBody {
  error: { code: string; message: string };
}

const goal = 'Run a marathon in under four hours';
const requests = {
  SUBGOAL_GENERATION: { goal, maxItems: 3 },
  ACTION_GENERATION: { goal, subGoal: 'Build weekly mileage to 60 km', maxItems: 2 },
  TASK_GENERATION: {
    goal,
    subGoal: 'Build weekly mileage to 60 km',
    action: 'Plan a long run every Sunday',
    context: 'Beginner runner, three free evenings a week',
  },
} as const;

describe('AI generation jobs end to end', () => {
  let google: FakeGoogle;
  let h: Harness;
  /** The same service with a 3 s job timeout, to reach `timeout` without waiting 300 s. */
  let shortTimeoutApi: TestApi;
  let ada: UserClient;

  before(async () => {
    google = new FakeGoogle(async () => undefined);
    await google.start();
    const env = {
      AUTH_JWT_SECRET: testJwtSecret,
      DATA_DIR: path.join(os.tmpdir(), `vlogflow-ai-${randomUUID()}`),
      GEMINI_API_KEY: 'test-key',
      GEMINI_BASE_URL: google.url,
      PROVIDER_RETRY_INITIAL_MS: '200',
      PROVIDER_RETRY_MAX_MS: '1000',
    };
    h = await startHarness({
      env,
      worker: (db) => createActivityDependencies(loadConfig(env), db),
    });
    shortTimeoutApi = await h.startApi({ env: { ...env, AI_JOB_TIMEOUT_MS: '3000' } });
    ada = h.user('ada');
  });
  afterEach(() => google.resetScenario());
  after(async () => {
    await h.stop();
    await google.stop();
  });

  const create = (body: object, as: UserClient = ada) => as.startJob<AiJobView>('ai', body);

  async function post(url: string, payload?: object) {
    const response = await ada.post(url, payload);
    return {
      status: response.statusCode,
      body: response.json<Record<string, unknown> & ErrorBody>(),
    };
  }

  const waitFor = (id: string, done: (view: AiJobView) => boolean, what: string) =>
    ada.awaitJob('ai', id, done, { what });
  const ended = (view: AiJobView) =>
    ['completed', 'failed', 'timeout', 'cancelled'].includes(view.status);

  for (const [type, input] of Object.entries(requests)) {
    it(`generates validated items for ${type}`, async () => {
      const calls = google.calls.streamGenerateContent;
      const created = await create({ type, input });
      assert.equal(created.status, 'pending');
      assert.equal(created.progress, 0);
      assert.equal(created.type, type);
      assert.equal(created.retryCount, 0);
      assert.ok(created.estimatedCompletionAt, 'an estimate is given at once');
      assert.ok(Date.parse(created.estimatedCompletionAt) > Date.parse(created.createdAt));

      const seen: AiJobView[] = [];
      const done = await ada.awaitJob('ai', created.id, ended, {
        what: `${type} done`,
        intervalMs: 20,
        seen,
      });
      assert.equal(done.status, 'completed', JSON.stringify(done.error));
      assert.equal(done.progress, 100);
      assert.equal(done.estimatedCompletionAt, null);
      assert.ok(done.completedAt);
      const maxItems = 'maxItems' in input ? input.maxItems : 5;
      assert.ok(
        done.result && done.result.items.length >= 1 && done.result.items.length <= maxItems,
      );
      assert.equal(done.result.model, 'gemini-2.5-flash');
      for (const item of done.result.items) {
        assert.ok(item.title && item.description);
        assert.equal(typeof item.estimatedMinutes === 'number', type === 'TASK_GENERATION');
      }
      // Progress only moves forward, through 0 → 50 → 100.
      const progress = seen.map((view) => view.progress);
      assert.deepEqual(
        progress,
        [...progress].sort((a, b) => a - b),
      );
      assert.ok(
        progress.every((value) => [0, 50, 100].includes(value)),
        String(progress),
      );
      assert.equal(google.calls.streamGenerateContent, calls + 1);

      // The model was held to the type's JSON schema and given the input.
      const sent = google.analysisRequests.at(-1);
      const schema = JSON.stringify(sent?.generationConfig?.responseJsonSchema);
      assert.match(schema, /"items"/);
      assert.equal(schema.includes('estimatedMinutes'), type === 'TASK_GENERATION');
      const prompt = sent?.contents[0]?.parts[0]?.text ?? '';
      assert.match(prompt, new RegExp(goal));
      if ('action' in input) assert.match(prompt, /Plan a long run every Sunday/);
    });
  }

  it('asks again when the answer does not validate, and fails INVALID_PROVIDER_OUTPUT after three', async () => {
    google.scenario.analysisAnswers.push({ kind: 'text', text: '{"items": []}' });
    const recovered = await waitFor(
      (await create({ type: 'SUBGOAL_GENERATION', input: { goal } })).id,
      ended,
      'recovered',
    );
    assert.equal(recovered.status, 'completed');

    const calls = google.calls.streamGenerateContent;
    google.scenario.analysisAnswers.push(
      { kind: 'text', text: 'not json' },
      { kind: 'text', text: '{"items": [{"title": ""}]}' },
      {
        kind: 'text',
        text: JSON.stringify({ items: Array(12).fill({ title: 't', description: 'd' }) }),
      },
    );
    const failed = await waitFor(
      (await create({ type: 'SUBGOAL_GENERATION', input: { goal } })).id,
      ended,
      'failed',
    );
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error?.code, 'INVALID_PROVIDER_OUTPUT');
    assert.match(failed.error?.message ?? '', /after 3 answers/);
    assert.equal(failed.result, null);
    assert.equal(
      google.calls.streamGenerateContent,
      calls + 3,
      'not retried beyond the three answers',
    );
  });

  it("backs off on 429, honouring the provider's retry delay, then completes", async () => {
    const calls = google.calls.streamGenerateContent;
    google.scenario.analysisFailures.push({ status: 429, retryDelay: '1s' }, { status: 503 });
    const done = await waitFor(
      (await create({ type: 'ACTION_GENERATION', input: requests.ACTION_GENERATION })).id,
      ended,
      'done after 429',
    );
    assert.equal(done.status, 'completed');
    assert.equal(google.calls.streamGenerateContent, calls + 3);
  });

  it('fails a safety block at once, without retrying', async () => {
    const calls = google.calls.streamGenerateContent;
    google.scenario.analysisAnswers.push({ kind: 'blocked' });
    const failed = await waitFor(
      (await create({ type: 'SUBGOAL_GENERATION', input: { goal } })).id,
      ended,
      'blocked',
    );
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error?.code, 'SAFETY_BLOCKED');
    assert.equal(google.calls.streamGenerateContent, calls + 1);
  });

  it('cancels while processing: the model call is abandoned and the reason recorded', async () => {
    const abandoned = google.calls.abandonedAnalyses;
    const calls = google.calls.streamGenerateContent;
    google.scenario.analysisAnswers.push({ kind: 'hang' });
    const created = await create({ type: 'TASK_GENERATION', input: requests.TASK_GENERATION });
    await waitFor(created.id, (view) => view.status === 'processing', 'processing');
    await eventually(
      async () => google.calls.streamGenerateContent,
      (n) => n > calls,
      {
        what: 'the model call',
      },
    );
    const cancel = await post(`/api/ai/jobs/${created.id}/cancel`, { reason: 'changed my mind' });
    assert.equal(cancel.status, 202, JSON.stringify(cancel.body));
    const cancelled = await waitFor(created.id, ended, 'cancelled');
    assert.equal(cancelled.status, 'cancelled');
    assert.equal(cancelled.error?.code, 'CANCELLED');
    assert.match(cancelled.error?.message ?? '', /changed my mind/);
    await eventually(
      async () => google.calls.abandonedAnalyses,
      (n) => n > abandoned,
      {
        what: 'the hung model call to be abandoned',
        timeoutMs: 15_000,
      },
    );
    const again = await post(`/api/ai/jobs/${created.id}/cancel`);
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'JOB_NOT_CANCELLABLE');
    const retry = await post(`/api/ai/jobs/${created.id}/retry`);
    assert.equal(retry.status, 409);
    assert.match(retry.body.error.message, /this one is cancelled/);
  });

  it('arbitrates a cancel and a retry sent together: exactly one wins', async () => {
    const race = async (id: string): Promise<'cancel' | 'retry'> => {
      const [cancel, retry] = await Promise.all([
        post(`/api/ai/jobs/${id}/cancel`, { reason: 'race' }),
        post(`/api/ai/jobs/${id}/retry`),
      ]);
      const accepted = [cancel, retry].filter((answer) => answer.status === 202);
      // Sent together, the two can straddle the attempt's failure: the retry judged while it
      // still ran, the cancel once it had failed. Each refusal is then true; neither won, so
      // the pair is sent again against the failed job, where only the retry can win.
      if (
        accepted.length === 0 &&
        /this one is processing/.test(retry.body.error?.message ?? '') &&
        /already failed/.test(cancel.body.error?.message ?? '')
      ) {
        return race(id);
      }
      assert.equal(accepted.length, 1, JSON.stringify({ cancel, retry }));
      const refused = cancel.status === 202 ? retry : cancel;
      assert.equal(refused.status, 409, JSON.stringify(refused.body));
      assert.equal(
        refused.body.error.code,
        cancel.status === 202 ? 'JOB_NOT_RETRYABLE' : 'JOB_NOT_CANCELLABLE',
      );
      return cancel.status === 202 ? 'cancel' : 'retry';
    };
    const holdModelCalls = (count: number) => {
      let release = () => undefined as void;
      const until = new Promise<void>((resolve) => (release = resolve));
      for (let i = 0; i < count; i += 1) {
        google.scenario.analysisAnswers.push({ kind: 'held', until, then: { kind: 'blocked' } });
      }
      return release;
    };
    const startHeld = async (count: number) => {
      const calls = google.calls.streamGenerateContent;
      const release = holdModelCalls(count);
      const jobs: AiJobView[] = [];
      for (let i = 0; i < count; i += 1) {
        jobs.push(await create({ type: 'SUBGOAL_GENERATION', input: { goal } }));
      }
      await eventually(
        async () => google.calls.streamGenerateContent,
        (n) => n >= calls + count,
        { what: 'every model call to be held' },
      );
      return { jobs, release };
    };

    // While the attempt runs only a cancel can win.
    const running = await startHeld(1);
    assert.equal(await race(running.jobs[0]!.id), 'cancel');
    running.release();
    const cancelled = await waitFor(running.jobs[0]!.id, ended, 'cancelled');
    assert.equal(cancelled.status, 'cancelled');
    assert.equal(cancelled.attempt, 1);

    // As attempts fail, either may win, and the job ends the way the winner says.
    const failing = await startHeld(4);
    failing.release();
    const winners = await Promise.all(failing.jobs.map((job) => race(job.id)));
    for (const [index, job] of failing.jobs.entries()) {
      const winner = winners[index];
      const final = await waitFor(
        job.id,
        (view) => (winner === 'retry' ? view.attempt === 2 && ended(view) : ended(view)),
        `${winner} to take effect`,
      );
      assert.deepEqual(
        { status: final.status, attempt: final.attempt },
        winner === 'cancel'
          ? { status: 'cancelled', attempt: 1 }
          : { status: 'completed', attempt: 2 },
        `job ${index} after ${winner} won`,
      );
    }

    // Once the attempt has failed, only a retry can win.
    const failed = await startHeld(1);
    failed.release();
    await waitFor(failed.jobs[0]!.id, (view) => view.status === 'failed', 'failed');
    assert.equal(await race(failed.jobs[0]!.id), 'retry');
    const retried = await waitFor(
      failed.jobs[0]!.id,
      (view) => view.attempt === 2 && ended(view),
      'the retry',
    );
    assert.equal(retried.status, 'completed');
  });

  it('answers a cancel that lands as the attempt ends 202 or 409, never an error, and keeps its word', async () => {
    // Each job's attempt fails at once, so its cancel meets the attempt's end at varying points:
    // before it, while the activity's failure is being recorded (the server then aborts the
    // Update with the workflow task carrying it), or after it.
    const jobs = 15;
    google.scenario.analysisAnswers.push(
      ...Array.from({ length: jobs }, () => ({ kind: 'blocked' }) as const),
    );
    const answers = await Promise.all(
      Array.from({ length: jobs }, async () => {
        const { id } = await create({ type: 'SUBGOAL_GENERATION', input: { goal } });
        return { id, cancel: await post(`/api/ai/jobs/${id}/cancel`, { reason: 'race' }) };
      }),
    );
    for (const { id, cancel } of answers) {
      const final = await waitFor(id, ended, 'the job to end');
      if (cancel.status === 503) {
        // A loaded machine's worker may not judge 15 Updates within JOB_CONTROL_TIMEOUT_MS: the
        // documented answer then leaves the outcome to the job's end, either of the two.
        assert.equal(cancel.body.error.code, 'JOB_CONTROL_TIMEOUT', JSON.stringify(cancel.body));
        assert.ok(['cancelled', 'failed'].includes(final.status), `${id}: ${final.status}`);
        continue;
      }
      const accepted = cancel.status === 202;
      if (!accepted) {
        assert.equal(cancel.status, 409, JSON.stringify(cancel.body));
        assert.equal(cancel.body.error.code, 'JOB_NOT_CANCELLABLE');
      }
      assert.equal(final.status, accepted ? 'cancelled' : 'failed', id);
    }
  });

  it('retries a failed job until the retries run out', async () => {
    google.scenario.analysisAnswers.push({ kind: 'blocked' });
    const created = await create({ type: 'SUBGOAL_GENERATION', input: { goal } });
    let view = await waitFor(created.id, ended, 'first failure');
    for (let retry = 1; retry <= 3; retry += 1) {
      assert.equal(view.status, 'failed');
      google.scenario.analysisAnswers.push({ kind: 'blocked' });
      const accepted = await post(`/api/ai/jobs/${created.id}/retry`);
      assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
      assert.deepEqual(accepted.body, { id: created.id, attempt: retry + 1, retryCount: retry });
      view = await waitFor(
        created.id,
        (current) => current.attempt === retry + 1 && ended(current),
        `retry ${retry}`,
      );
      assert.equal(view.retryCount, retry);
    }
    assert.equal(view.status, 'failed');
    const refused = await post(`/api/ai/jobs/${created.id}/retry`);
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'JOB_NOT_RETRYABLE');
    assert.match(refused.body.error.message, /already retried 3 times/);
  });

  it('retries after a failure and completes, keeping the job id', async () => {
    google.scenario.analysisAnswers.push({ kind: 'blocked' });
    const created = await create({ type: 'ACTION_GENERATION', input: requests.ACTION_GENERATION });
    await waitFor(created.id, (view) => view.status === 'failed', 'failed');
    assert.equal((await post(`/api/ai/jobs/${created.id}/retry`)).status, 202);
    const done = await waitFor(created.id, (view) => view.status === 'completed', 'completed');
    assert.equal(done.retryCount, 1);
    assert.ok(done.result?.items.length);
    assert.equal(done.error, null);
  });

  it('answers a retry of an attempt sent again (its answer lost) with that retry, starting no other', async () => {
    google.scenario.analysisAnswers.push({ kind: 'blocked' });
    const created = await create({ type: 'SUBGOAL_GENERATION', input: { goal } });
    const failed = await waitFor(created.id, (view) => view.status === 'failed', 'failed');
    // Operators find it in the Web UI by its code, as the failures metric names it.
    // The projection is written within the workflow task whose completion sets the attribute:
    // the attribute follows the view by that task's end.
    const failureCode = (expected: string | undefined, what: string) =>
      eventually(
        async () =>
          (
            await h.temporal.client.workflow.getHandle(created.id).describe()
          ).typedSearchAttributes.get(JobFailureCodeKey),
        (code) => code === expected,
        { what },
      );
    assert.ok(failed.error?.code);
    await failureCode(failed.error.code, "the failure's code");
    const retryOf = (attempt: number) => ada.post(`/api/ai/jobs/${created.id}/retry`, { attempt });
    const first = await retryOf(1);
    assert.equal(first.statusCode, 202, first.body);
    assert.equal(first.headers['idempotent-replayed'], 'false');
    const accepted = { id: created.id, attempt: 2, retryCount: 1 };
    assert.deepEqual(first.json(), accepted);
    // Sent again while the new attempt runs, and once it has completed.
    const again = await retryOf(1);
    assert.equal(again.statusCode, 202, again.body);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    assert.deepEqual(again.json(), accepted);
    const done = await waitFor(created.id, (view) => view.status === 'completed', 'completed');
    assert.equal(done.attempt, 2);
    await failureCode(undefined, "the retry's run, holding no code of the failure");
    assert.deepEqual((await retryOf(1)).json(), accepted);
    // An attempt the job has not reached, and one out of range, are refused.
    const ahead = await retryOf(3);
    assert.equal(ahead.statusCode, 409, ahead.body);
    assert.match(ahead.json<ErrorBody>().error.message, /on attempt 2; attempt 3 has not run/);
    const invalid = await retryOf(0);
    assert.equal(invalid.statusCode, 400, invalid.body);
    assert.match(invalid.json<ErrorBody>().error.message, /body\.attempt/);
    assert.equal((await waitFor(created.id, ended, 'still completed')).attempt, 2);
  });

  it('ends `timeout` (not failed) past the job timeout, and a retry then completes', async () => {
    google.scenario.analysisAnswers.push({ kind: 'hang' });
    const created = await create(
      { type: 'SUBGOAL_GENERATION', input: { goal } },
      shortTimeoutApi.user('ada'),
    );
    const timedOut = await waitFor(created.id, ended, 'timeout');
    assert.equal(timedOut.status, 'timeout');
    assert.equal(timedOut.error?.code, 'JOB_TIMEOUT');
    assert.match(timedOut.error?.message ?? '', /within 3 s/);
    assert.equal((await post(`/api/ai/jobs/${created.id}/retry`)).status, 202);
    const done = await waitFor(created.id, (view) => view.status === 'completed', 'completed');
    assert.equal(done.retryCount, 1);
  });

  it('lists AI jobs with every kind in the combined history, filtered by type and status', async () => {
    const list = async (url: string) => {
      const response = await ada.get(url);
      assert.equal(response.statusCode, 200, response.body);
      return response.json<{ jobs: AiJobView[]; nextCursor: string | null }>();
    };
    const tasks = await list('/api/ai/jobs?type=TASK_GENERATION&limit=100');
    assert.ok(tasks.jobs.length >= 2);
    assert.ok(tasks.jobs.every((job) => job.type === 'TASK_GENERATION'));
    const completed = await list('/api/ai/jobs?status=completed&limit=100');
    assert.ok(completed.jobs.every((job) => job.status === 'completed'));
    const combined = await list('/api/jobs?kind=ai&limit=100');
    assert.deepEqual(
      combined.jobs.map((job) => job.id).sort(),
      (await list('/api/ai/jobs?limit=100')).jobs.map((job) => job.id).sort(),
    );
  });
});
