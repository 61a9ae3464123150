import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { z } from 'zod';
import { ConfigError, loadConfig } from '../../src/config.js';
import { FailureCode } from '../../src/jobs/failures.js';
import { createProviders } from '../../src/providers/index.js';
import { ProviderError, type TextGenerator, type TokenUsage } from '../../src/providers/types.js';
import { createMediaStorage } from '../../src/storage/index.js';
import { FakeOpenAi } from '../fakes/fake-openai.js';
import { eventually } from '../support/eventually.js';
import { testJwtSecret } from '../support/harness.js';

const answerSchema = z.object({
  items: z.array(z.object({ title: z.string().min(1), description: z.string() })).min(1),
});

function providersFor(env: Record<string, string>) {
  const config = loadConfig(env);
  return createProviders(config, {
    mediaStorage: createMediaStorage(config, testJwtSecret),
    mediaTools: null,
  });
}

// The provider through the real `openai` client against a fake that speaks chat completions.
describe('the OpenAI-compatible text generator', () => {
  let fake: FakeOpenAi;
  let generator: TextGenerator;

  before(async () => {
    fake = new FakeOpenAi();
    await fake.start();
    generator = providersFor({
      OPENAI_BASE_URL: fake.baseUrl,
      OPENAI_API_KEY: 'sk-test',
      OPENAI_MODEL: 'tiny-model',
      OPENAI_REQUEST_TIMEOUT_MS: '1500',
    }).textGenerator!;
  });
  afterEach(() => fake.resetScenario());
  after(() => fake.stop());

  const ask = (
    options: {
      onText?: (piece: string) => void;
      onUsage?: (usage: TokenUsage) => void;
      signal?: AbortSignal;
    } = {},
  ) =>
    generator.generateJson({
      what: 'sub-goal generation',
      systemInstruction: 'Answer with JSON only.',
      prompt: 'Goal: sail\nWrite at most 2 sub-goals.',
      responseJsonSchema: z.toJSONSchema(answerSchema),
      maxAnswerChars: 2_000,
      signal: options.signal ?? new AbortController().signal,
      ...(options.onText ? { onText: options.onText } : {}),
      ...(options.onUsage ? { onUsage: options.onUsage } : {}),
    });

  async function failure(): Promise<ProviderError> {
    const error = await ask().then(
      () => assert.fail('expected the call to fail'),
      (thrown: unknown) => thrown,
    );
    assert.ok(error instanceof ProviderError, String(error));
    return error;
  }

  it('streams a structured answer, constrained to the JSON schema, piece by piece', async () => {
    const pieces: string[] = [];
    const text = await ask({ onText: (piece) => pieces.push(piece) });
    assert.equal(generator.name, 'openai:tiny-model');
    assert.equal(pieces.join(''), text);
    assert.ok(pieces.length > 3, `${pieces.length} pieces`);
    assert.equal(answerSchema.parse(JSON.parse(text)).items.length, 2);

    const { body, authorization } = fake.requests.at(-1)!;
    assert.equal(authorization, 'Bearer sk-test');
    assert.equal(body.model, 'tiny-model');
    assert.equal(body.stream, true);
    assert.deepEqual(
      body.messages.map((message) => message.role),
      ['system', 'user'],
    );
    assert.match(body.messages[1]!.content, /Goal: sail/);
    assert.equal(body.response_format?.type, 'json_schema');
    const schema = body.response_format?.json_schema?.schema as Record<string, unknown>;
    assert.equal(schema['$schema'], undefined, 'no dialect marker');
    assert.deepEqual(schema['required'], ['items']);
  });

  it('maps 429 to a rate limit carrying the Retry-After hint', async () => {
    fake.scenario.failures.push({ status: 429, retryAfter: '7', message: 'slow down' });
    const seconds = await failure();
    assert.equal(seconds.code, FailureCode.PROVIDER_RATE_LIMITED);
    assert.equal(seconds.retryable, true);
    assert.equal(seconds.retryDelayMs, 7_000);
    assert.match(seconds.message, /slow down/);

    fake.scenario.failures.push({ status: 429 });
    const noHint = await failure();
    assert.equal(noHint.code, FailureCode.PROVIDER_RATE_LIMITED);
    assert.equal(noHint.retryDelayMs, undefined);

    fake.scenario.failures.push({ status: 429, code: 'insufficient_quota', message: 'billing' });
    const exhausted = await failure();
    assert.equal(exhausted.code, FailureCode.PROVIDER_PERMISSION_DENIED);
    assert.equal(exhausted.retryable, false);
  });

  it('maps 5xx, a lost stream and a stalled one to retryable unavailability', async () => {
    for (const status of [500, 502, 503]) {
      fake.scenario.failures.push({ status, message: 'upstream pg error at 10.0.3.7:5432' });
      const error = await failure();
      assert.equal(error.code, FailureCode.PROVIDER_UNAVAILABLE, String(status));
      assert.equal(error.retryable, true);
      // What a server says of its own failure may name its insides: only the log has it.
      assert.equal(
        error.message,
        `The model's sub-goal generation: the provider answered ${status}, a failure of its own`,
      );
      assert.equal(error.providerSaid, 'upstream pg error at 10.0.3.7:5432');
    }
    fake.scenario.answers.push({ kind: 'stream-error', text: '{"items"', message: 'model died' });
    const broken = await failure();
    assert.equal(broken.code, FailureCode.PROVIDER_UNAVAILABLE);
    assert.match(broken.message, /model died/);

    const abandoned = fake.calls.abandoned;
    fake.scenario.answers.push({ kind: 'stall', text: '{"items": [' });
    const stalled = await failure();
    assert.equal(stalled.code, FailureCode.PROVIDER_UNAVAILABLE);
    assert.equal(stalled.retryable, true);
    assert.match(stalled.message, /did not end within 1500 ms/);
    await eventually(
      async () => fake.calls.abandoned,
      (n) => n > abandoned,
      { what: 'the stalled request to be closed' },
    );
  });

  it("maps other 4xx to non-retryable failures that keep the provider's message", async () => {
    const cases = [
      [400, FailureCode.PROVIDER_INVALID_ARGUMENT],
      [422, FailureCode.PROVIDER_INVALID_ARGUMENT],
      [401, FailureCode.PROVIDER_PERMISSION_DENIED],
      [403, FailureCode.PROVIDER_PERMISSION_DENIED],
      [404, FailureCode.PROVIDER_NOT_FOUND],
    ] as const;
    for (const [status, code] of cases) {
      fake.scenario.failures.push({ status, message: `model tiny-model says ${status}` });
      const error = await failure();
      assert.equal(error.code, code, String(status));
      assert.equal(error.retryable, false);
      assert.match(error.message, new RegExp(`model tiny-model says ${status}`));
    }
  });

  // The client gives an error sent inside the stream no status: its body says what it was.
  it('reads the status an error inside the stream names: a refusal is not retried, a rate limit is one', async () => {
    fake.scenario.answers.push({
      kind: 'stream-error',
      text: '',
      message: "This model's maximum context length is 8192 tokens",
      code: 400,
    });
    const tooLong = await failure();
    assert.equal(tooLong.code, FailureCode.PROVIDER_INPUT_TOO_LONG);
    assert.equal(tooLong.retryable, false);
    fake.scenario.answers.push({
      kind: 'stream-error',
      text: '',
      message: 'Rate limit reached',
      code: 'rate_limit_exceeded',
    });
    const limited = await failure();
    assert.equal(limited.code, FailureCode.PROVIDER_RATE_LIMITED);
    assert.equal(limited.retryable, true);
  });

  it('aborts the request when the signal fires', async () => {
    const abandoned = fake.calls.abandoned;
    const requests = fake.requests.length;
    fake.scenario.answers.push({ kind: 'hang' });
    const controller = new AbortController();
    const call = ask({ signal: controller.signal });
    await eventually(
      async () => fake.requests.length,
      (n) => n > requests,
      { what: 'the request' },
    );
    controller.abort();
    await assert.rejects(call);
    await eventually(
      async () => fake.calls.abandoned,
      (n) => n > abandoned,
      { what: 'the request to be closed' },
    );
  });

  it('stops reading an answer that goes on past the limit, charging what it was sent and wrote', async () => {
    const abandoned = fake.calls.abandoned;
    fake.scenario.answers.push({ kind: 'endless' });
    const usages: TokenUsage[] = [];
    const text = await ask({ onUsage: (usage) => usages.push(usage) });
    assert.equal(text.length, 2_001, 'one character past the limit says it went on');
    await eventually(
      async () => fake.calls.abandoned,
      (n) => n > abandoned,
      { what: 'the endless answer to be abandoned' },
    );
    // The stream's last chunk, with the call's tokens, never came: it was cut off.
    const prompt =
      'Answer with JSON only.'.length + 'Goal: sail\nWrite at most 2 sub-goals.'.length;
    assert.deepEqual(usages, [{ inputTokens: Math.ceil(prompt / 4), outputTokens: 501 }]);
  });

  it('reads a NUL character, which no database text holds, as U+FFFD', async () => {
    fake.scenario.answers.push({ kind: 'text', text: '{"items": [{"title": "Step\u0000 one"' });
    const pieces: string[] = [];
    const text = await ask({ onText: (piece) => pieces.push(piece) });
    assert.equal(text, '{"items": [{"title": "Step\ufffd one"');
    assert.equal(pieces.join(''), text);
  });

  it('takes of a piece of any size only what the answer has room for', async () => {
    fake.scenario.pieceChars = 1_000_000;
    fake.scenario.answers.push({
      kind: 'text',
      text: `{"items": [{"title": "${'x'.repeat(999_000)}`,
    });
    const pieces: string[] = [];
    const text = await ask({ onText: (piece) => pieces.push(piece) });
    assert.equal(text.length, 2_001);
    assert.deepEqual(pieces, [text]);
  });

  it("fails SAFETY_BLOCKED when the provider's content filter stops the answer", async () => {
    fake.scenario.answers.push({ kind: 'filtered' });
    const error = await failure();
    assert.equal(error.code, FailureCode.SAFETY_BLOCKED);
    assert.equal(error.retryable, false);
  });
});

describe('choosing the AI provider', () => {
  const provider = (env: Record<string, string>) => providersFor(env).textGenerator?.name ?? null;

  it('picks an OpenAI-compatible endpoint when one is named, before Gemini', () => {
    const openai = { OPENAI_BASE_URL: 'http://127.0.0.1:1/v1', OPENAI_MODEL: 'm' };
    assert.equal(provider(openai), 'openai:m');
    assert.equal(provider({ ...openai, GEMINI_API_KEY: 'k' }), 'openai:m');
    assert.equal(provider({ GEMINI_API_KEY: 'k' }), 'gemini:gemini-2.5-flash');
    assert.equal(
      provider({ ...openai, GEMINI_API_KEY: 'k', AI_PROVIDER: 'gemini' }),
      'gemini:gemini-2.5-flash',
    );
    assert.equal(provider({ AI_PROVIDER: 'openai', OPENAI_MODEL: 'gpt-x' }), 'openai:gpt-x');
  });

  it('falls back to the embedded model with nothing configured, and to none when turned off', () => {
    assert.equal(provider({}), 'embedded:SmolLM2-135M-Instruct.Q4_1');
    assert.equal(
      provider({ EMBEDDED_MODEL_FILE: '/models/Qwen2.5-7B-Instruct-Q4_K_M.gguf' }),
      'embedded:Qwen2.5-7B-Instruct-Q4_K_M',
    );
    assert.equal(provider({ AI_PROVIDER: 'none', GEMINI_API_KEY: 'k' }), null);
  });

  it('refuses an OpenAI-compatible provider without a model, and Gemini without a key', () => {
    for (const env of [
      { OPENAI_BASE_URL: 'http://127.0.0.1:1/v1' },
      { AI_PROVIDER: 'openai' },
      { AI_PROVIDER: 'gemini' },
    ]) {
      assert.throws(() => loadConfig(env), ConfigError, JSON.stringify(env));
    }
  });
});
