import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { providerCooldownRemainingMs } from '../../src/db/provider-quota.js';
import { createActivityDependencies } from '../../src/worker/dependencies.js';
import { FakeOpenAi } from '../fakes/fake-openai.js';
import { eventually } from '../support/eventually.js';
import { startHarness, testJwtSecret, type Harness, type UserClient } from '../support/harness.js';

interface AiJobView {
  id: string;
  status: string;
  phase: string | null;
  attempt: number;
  result: { items: { title: string; description: string }[]; model: string } | null;
  error: { code: string; message: string } | null;
}

const ended = (view: AiJobView) =>
  ['completed', 'failed', 'timeout', 'cancelled'].includes(view.status);

// AI jobs on a model behind an OpenAI-compatible endpoint, named by configuration alone.
describe('AI jobs on an OpenAI-compatible endpoint', () => {
  let fake: FakeOpenAi;
  let h: Harness;
  let grace: UserClient;

  before(async () => {
    fake = new FakeOpenAi();
    await fake.start();
    const env = {
      AUTH_JWT_SECRET: testJwtSecret,
      DATA_DIR: path.join(os.tmpdir(), `vlogflow-ai-openai-${randomUUID()}`),
      OPENAI_BASE_URL: fake.baseUrl,
      OPENAI_MODEL: 'team-model',
      // One activity attempt: a 429 that spent one would fail the job.
      PROVIDER_RETRY_ATTEMPTS: '1',
      PROVIDER_RATE_LIMIT_COOLDOWN_MS: '1000',
    };
    h = await startHarness({
      env,
      worker: (db) => createActivityDependencies(loadConfig(env), db),
    });
    grace = h.user('grace');
  });
  afterEach(() => fake.resetScenario());
  after(async () => {
    await h.stop();
    await fake.stop();
  });

  const run = async (body: object) => {
    const { id } = await grace.startJob('ai', body);
    return grace.awaitJob<AiJobView>('ai', id, ended, { what: `job ${id}` });
  };

  it('completes with validated items from the model the configuration names', async () => {
    const done = await run({
      type: 'TASK_GENERATION',
      input: { goal: 'Sail to Skye', subGoal: 'Get a licence', action: 'Book a course' },
    });
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.equal(done.result?.model, 'team-model');
    assert.equal(done.result?.items.length, 3);
    const sent = fake.requests.at(-1)!.body;
    assert.equal(sent.model, 'team-model');
    assert.match(JSON.stringify(sent.response_format), /estimatedMinutes/);
  });

  it('records the tokens the endpoint reports, at no price unless COST_PRICES names one', async () => {
    const usageBefore = fake.reportedUsage.length;
    const done = await run({ type: 'SUBGOAL_GENERATION', input: { goal: 'Sail to Skye' } });
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.equal(fake.requests.at(-1)!.body.stream_options?.include_usage, true);
    const [usage] = fake.reportedUsage.slice(usageBefore);
    assert.ok(usage, 'the endpoint reported usage');
    const ledger = await h.db
      .selectFrom('cost_ledger')
      .select(['kind', 'provider', 'model', 'input_tokens', 'output_tokens', 'cost'])
      .where('job_id', '=', done.id)
      .execute();
    assert.deepEqual(
      ledger.map((row) => ({
        ...row,
        input_tokens: Number(row.input_tokens),
        output_tokens: Number(row.output_tokens),
        cost: Number(row.cost),
      })),
      [
        {
          kind: 'text',
          provider: 'openai',
          model: 'team-model',
          input_tokens: usage.prompt_tokens,
          output_tokens: usage.completion_tokens,
          cost: 0,
        },
      ],
    );
  });

  it('waits out a 429 on a timer, as for Gemini, without spending an attempt', async () => {
    const calls = fake.calls.chatCompletions;
    fake.scenario.failures.push({ status: 429, retryAfter: '1' });
    const seen: AiJobView[] = [];
    const { id } = await grace.startJob('ai', {
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Learn Gaelic' },
    });
    const done = await grace.awaitJob<AiJobView>('ai', id, ended, { seen, intervalMs: 20 });
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.equal(done.attempt, 1);
    assert.equal(fake.calls.chatCompletions, calls + 2);
    assert.ok(
      seen.some((view) => /waiting for text generation quota/.test(view.phase ?? '')),
      'the wait shows in the phase',
    );
  });

  it('cools every worker down after a 429 that names no delay', async () => {
    fake.scenario.failures.push({ status: 429 });
    const { id } = await grace.startJob('ai', {
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Swim a mile' },
    });
    await eventually(
      () => providerCooldownRemainingMs(h.db, 'openai'),
      (ms) => ms > 0,
      { what: "the openai provider's cool-down" },
    );
    const done = await grace.awaitJob<AiJobView>('ai', id, ended);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
  });

  it("fails a 4xx at once, with the provider's message", async () => {
    fake.scenario.failures.push({ status: 400, message: "'temperature' is not supported" });
    const calls = fake.calls.chatCompletions;
    const refused = await run({ type: 'SUBGOAL_GENERATION', input: { goal: 'Climb' } });
    assert.equal(refused.status, 'failed');
    assert.equal(refused.error?.code, 'PROVIDER_INVALID_ARGUMENT');
    assert.match(refused.error?.message ?? '', /'temperature' is not supported/);
    assert.equal(fake.calls.chatCompletions, calls + 1);
  });

  it('fails an input longer than the model reads at once as PROVIDER_INPUT_TOO_LONG', async () => {
    // What llama.cpp's server (the embedded model's) and OpenAI answer.
    const refusals = [
      {
        status: 400,
        type: 'exceed_context_size_error',
        message:
          'request (12030 tokens) exceeds the available context size (8192 tokens), try increasing it',
      },
      {
        status: 400,
        type: 'invalid_request_error',
        code: 'context_length_exceeded',
        message: "This model's maximum context length is 128000 tokens.",
      },
    ];
    for (const refusal of refusals) {
      fake.scenario.failures.push(refusal);
      const calls = fake.calls.chatCompletions;
      const refused = await run({
        type: 'SUBGOAL_GENERATION',
        input: { goal: '한국어'.repeat(100) },
      });
      assert.equal(refused.status, 'failed');
      assert.equal(refused.error?.code, 'PROVIDER_INPUT_TOO_LONG', JSON.stringify(refused.error));
      assert.match(refused.error?.message ?? '', /longer than the model reads at once; shorten it/);
      assert.ok(refused.error?.message.includes(refusal.message), refused.error?.message);
      assert.equal(fake.calls.chatCompletions, calls + 1, 'not asked again');
    }
  });

  it('aborts the request to the model when the job is cancelled', async () => {
    const abandoned = fake.calls.abandoned;
    const requests = fake.requests.length;
    fake.scenario.answers.push({ kind: 'stall', text: '{"items": [{"title": "Fi' });
    const { id } = await grace.startJob('ai', {
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Knit a jumper' },
    });
    await eventually(
      async () => fake.requests.length,
      (n) => n > requests,
      { what: 'the model call' },
    );
    assert.equal((await grace.cancel('ai', id, { reason: 'no wool' })).statusCode, 202);
    const cancelled = await grace.awaitJob<AiJobView>('ai', id, ended);
    assert.equal(cancelled.status, 'cancelled');
    await eventually(
      async () => fake.calls.abandoned,
      (n) => n > abandoned,
      { what: 'the model request to be aborted', timeoutMs: 15_000 },
    );
  });
});
