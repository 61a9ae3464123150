import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { z } from 'zod';
import { loadConfig } from '../../src/config.js';
import { FailureCode } from '../../src/jobs/failures.js';
import { createProviders } from '../../src/providers/index.js';
import { ProviderError, type TextGenerator } from '../../src/providers/types.js';
import { createMediaStorage } from '../../src/storage/index.js';
import { FakeGoogle } from '../fakes/fake-google.js';
import { eventually } from '../support/eventually.js';
import { testJwtSecret } from '../support/harness.js';

const answerSchema = z.object({
  items: z.array(z.object({ title: z.string().min(1), description: z.string() })).min(1),
});

function textGeneratorFor(env: Record<string, string>): TextGenerator {
  const config = loadConfig({ ...env, VLOG_PROVIDER: 'local' });
  return createProviders(config, {
    mediaStorage: createMediaStorage(config, testJwtSecret),
    mediaTools: null,
  }).textGenerator!;
}

// The provider through the real @google/genai client against a fake that speaks
// streamGenerateContent (`?alt=sse`) as the Gemini API and Vertex AI do.
describe('the Gemini text generator', () => {
  let fake: FakeGoogle;
  let generator: TextGenerator;
  /** With the default time limit (120 s): only the generator itself can close its streams early. */
  let patient: TextGenerator;

  before(async () => {
    fake = new FakeGoogle(async () => undefined);
    await fake.start();
    generator = textGeneratorFor({
      GEMINI_API_KEY: 'test-key',
      GEMINI_BASE_URL: fake.url,
      PROVIDER_REQUEST_TIMEOUT_MS: '1500',
    });
    patient = textGeneratorFor({ GEMINI_API_KEY: 'test-key', GEMINI_BASE_URL: fake.url });
  });
  afterEach(() => fake.resetScenario());
  after(() => fake.stop());

  const ask = (
    options: {
      onText?: (piece: string) => void;
      signal?: AbortSignal;
      repair?: { answer: string; instruction: string };
      on?: TextGenerator;
    } = {},
  ) =>
    (options.on ?? generator).generateJson({
      what: 'sub-goal generation',
      systemInstruction: 'Answer with JSON only.',
      prompt: 'Goal: sail\nWrite at most 2 sub-goals.',
      responseJsonSchema: z.toJSONSchema(answerSchema),
      maxAnswerChars: 2_000,
      signal: options.signal ?? new AbortController().signal,
      ...(options.onText ? { onText: options.onText } : {}),
      ...(options.repair ? { repair: options.repair } : {}),
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
    const calls = { ...fake.calls };
    const pieces: string[] = [];
    const text = await ask({ onText: (piece) => pieces.push(piece) });
    assert.equal(generator.name, 'gemini:gemini-2.5-flash');
    assert.equal(pieces.join(''), text);
    assert.equal(text, fake.streamedAnswers.at(-1));
    assert.ok(pieces.length > 3, `${pieces.length} pieces`);
    assert.equal(answerSchema.parse(JSON.parse(text)).items.length, 2);
    assert.equal(fake.calls.streamGenerateContent, calls.streamGenerateContent + 1);
    assert.equal(fake.calls.generateContent, calls.generateContent, 'no unary call');

    const sent = fake.analysisRequests.at(-1)!;
    assert.match(JSON.stringify(sent.generationConfig?.responseJsonSchema), /"items"/);
    assert.match(sent.contents[0]?.parts[0]?.text ?? '', /Goal: sail/);
  });

  it("sends a repair round as the model's own turn, then the instruction", async () => {
    await ask({ repair: { answer: '{"items": []}', instruction: 'Rejected: items. Again.' } });
    const { contents } = fake.analysisRequests.at(-1)! as unknown as {
      contents: { role: string; parts: { text: string }[] }[];
    };
    assert.deepEqual(
      contents.map((content) => [content.role, content.parts[0]?.text]),
      [
        ['user', 'Goal: sail\nWrite at most 2 sub-goals.'],
        ['model', '{"items": []}'],
        ['user', 'Rejected: items. Again.'],
      ],
    );
  });

  it("maps a 429 before the stream to a rate limit carrying RetryInfo's delay", async () => {
    fake.scenario.analysisFailures.push({ status: 429, retryDelay: '26s' });
    const hinted = await failure();
    assert.equal(hinted.code, FailureCode.PROVIDER_RATE_LIMITED);
    assert.equal(hinted.retryable, true);
    assert.equal(hinted.retryDelayMs, 26_000);
    assert.match(hinted.message, /Gemini sub-goal generation: fake RESOURCE_EXHAUSTED/);

    fake.scenario.analysisFailures.push({ status: 429 });
    const noHint = await failure();
    assert.equal(noHint.code, FailureCode.PROVIDER_RATE_LIMITED);
    assert.equal(noHint.retryDelayMs, undefined);
  });

  it('maps 5xx, an error inside the stream and a stalled stream to retryable unavailability', async () => {
    for (const status of [500, 503] as const) {
      fake.scenario.analysisFailures.push({ status });
      const error = await failure();
      assert.equal(error.code, FailureCode.PROVIDER_UNAVAILABLE, String(status));
      assert.equal(error.retryable, true);
    }

    const pieces: string[] = [];
    fake.scenario.analysisAnswers.push({
      kind: 'stream-error',
      text: '{"items": [{"title": "Fi',
      failure: { status: 503 },
    });
    const broken = await ask({ onText: (piece) => pieces.push(piece) }).then(
      () => assert.fail('expected the stream to fail'),
      (thrown: unknown) => thrown as ProviderError,
    );
    assert.ok(broken instanceof ProviderError, String(broken));
    assert.equal(broken.code, FailureCode.PROVIDER_UNAVAILABLE);
    assert.equal(broken.retryable, true);
    // A server's failure in its own words stays in the worker's log: the job's error says 503.
    assert.equal(
      broken.message,
      'Gemini sub-goal generation: the provider answered 503, a failure of its own',
    );
    assert.equal(broken.providerSaid, 'fake 503 in the stream');
    assert.equal(pieces.join(''), '{"items": [{"title": "Fi', 'what came before was handed on');

    const abandoned = fake.calls.abandonedStreams;
    fake.scenario.analysisAnswers.push({ kind: 'stall', text: '{"items": [' });
    const stalled = await failure();
    assert.equal(stalled.code, FailureCode.PROVIDER_UNAVAILABLE);
    assert.equal(stalled.retryable, true);
    assert.match(stalled.message, /did not end within 1500 ms/);
    await eventually(
      async () => fake.calls.abandonedStreams,
      (n) => n > abandoned,
      { what: 'the stalled stream to be closed' },
    );
  });

  it("maps other 4xx to non-retryable failures that keep the provider's message", async () => {
    const cases = [
      [400, FailureCode.PROVIDER_INVALID_ARGUMENT, 'INVALID_ARGUMENT'],
      [403, FailureCode.PROVIDER_PERMISSION_DENIED, 'PERMISSION_DENIED'],
      [404, FailureCode.PROVIDER_NOT_FOUND, 'NOT_FOUND'],
      // Any other 4xx: sent again, it is refused again (it was retried as unavailable).
      [409, FailureCode.PROVIDER_INVALID_ARGUMENT, 'ABORTED'],
      [422, FailureCode.PROVIDER_INVALID_ARGUMENT, 'FAILED_PRECONDITION'],
    ] as const;
    for (const [status, code, name] of cases) {
      fake.scenario.analysisFailures.push({ status });
      const error = await failure();
      assert.equal(error.code, code, String(status));
      assert.equal(error.retryable, false);
      assert.match(error.message, new RegExp(`fake ${name}`));
    }
    // A provider's message is quoted, not carried whole into every view of the job.
    fake.scenario.analysisFailures.push({ status: 400, message: 'x'.repeat(200_000) });
    const long = await failure();
    assert.equal(long.message, `Gemini sub-goal generation: ${'x'.repeat(500)}…`);
    const inStream = fake.calls.abandonedStreams;
    fake.scenario.analysisAnswers.push({
      kind: 'stream-error',
      text: '',
      failure: { status: 400 },
    });
    const late = await failure();
    assert.equal(late.code, FailureCode.PROVIDER_INVALID_ARGUMENT);
    assert.equal(late.retryable, false);
    assert.equal(fake.calls.abandonedStreams, inStream, 'the stream had ended');
  });

  it('names a prompt longer than the model reads PROVIDER_INPUT_TOO_LONG, not retried', async () => {
    const said =
      'The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).';
    fake.scenario.analysisFailures.push({ status: 400, message: said });
    const error = await failure();
    assert.equal(error.code, FailureCode.PROVIDER_INPUT_TOO_LONG);
    assert.equal(error.retryable, false);
    assert.match(error.message, /the input is longer than the model reads at once; shorten it/);
    assert.ok(error.message.includes(said), error.message);
  });

  it('aborts the request mid-stream when the signal fires', async () => {
    const abandoned = fake.calls.abandonedStreams;
    fake.scenario.analysisAnswers.push({ kind: 'stall', text: '{"items": [{"title": "Fi' });
    const controller = new AbortController();
    const pieces: string[] = [];
    const call = ask({
      on: patient,
      signal: controller.signal,
      onText: (piece) => pieces.push(piece),
    });
    await eventually(
      async () => pieces.length,
      (n) => n > 0,
      { what: 'the first piece' },
    );
    controller.abort();
    await assert.rejects(call);
    await eventually(
      async () => fake.calls.abandonedStreams,
      (n) => n > abandoned,
      { what: 'the stream to be closed' },
    );
  });

  it('stops reading an answer that goes on past the limit, closing the stream', async () => {
    const abandoned = fake.calls.abandonedStreams;
    fake.scenario.analysisAnswers.push({ kind: 'endless' });
    const text = await ask({ on: patient });
    assert.ok(text.length > 2_000 && text.length < 2_200, String(text.length));
    await eventually(
      async () => fake.calls.abandonedStreams,
      (n) => n > abandoned,
      { what: 'the endless answer to be abandoned' },
    );
  });

  it('fails SAFETY_BLOCKED for a blocked prompt and for an answer stopped mid-stream', async () => {
    fake.scenario.analysisAnswers.push({ kind: 'blocked' });
    const blocked = await failure();
    assert.equal(blocked.code, FailureCode.SAFETY_BLOCKED);
    assert.equal(blocked.retryable, false);
    assert.match(blocked.message, /blocked the sub-goal generation \(SAFETY\)/);

    fake.scenario.analysisAnswers.push({ kind: 'unsafe' });
    const stopped = await failure();
    assert.equal(stopped.code, FailureCode.SAFETY_BLOCKED);
    assert.equal(stopped.retryable, false);
    assert.match(stopped.message, /stopped the sub-goal generation \(SAFETY\)/);
  });

  it('streams on Vertex AI too', async () => {
    const vertex = textGeneratorFor({
      VERTEX_PROJECT: 'test-project',
      VERTEX_LOCATION: 'us-central1',
      VERTEX_BASE_URL: fake.url,
      VERTEX_ACCESS_TOKEN: 'test-token',
    });
    const pieces: string[] = [];
    const text = await ask({ on: vertex, onText: (piece) => pieces.push(piece) });
    assert.equal(vertex.name, 'gemini:gemini-2.5-flash');
    assert.equal(pieces.join(''), text);
    assert.equal(text, fake.streamedAnswers.at(-1));
  });
});
