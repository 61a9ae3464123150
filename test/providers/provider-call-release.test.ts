import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { getEventListeners } from 'node:events';
import { Readable } from 'node:stream';
import { after, afterEach, before, describe, it } from 'node:test';
import { z } from 'zod';
import { loadConfig } from '../../src/config.js';
import { FailureCode } from '../../src/jobs/failures.js';
import type { MediaRef } from '../../src/jobs/contracts.js';
import { createProviders, type Providers } from '../../src/providers/index.js';
import { ProviderError } from '../../src/providers/types.js';
import { createMediaStorage } from '../../src/storage/index.js';
import { FakeGoogle } from '../fakes/fake-google.js';
import { FakeOpenAi } from '../fakes/fake-openai.js';
import { testJwtSecret } from '../support/harness.js';

/** Only a request's time limit runs this long: a timer of this length is one a call armed. */
const limitMs = 600_000;

function providersFor(env: Record<string, string>): Providers {
  const config = loadConfig(env);
  return createProviders(config, {
    mediaStorage: createMediaStorage(config, testJwtSecret),
    mediaTools: null,
  });
}

/**
 * Runs `call` with a caller's signal and answers what it left behind once it settled: timers of
 * the request's time limit still armed, and listeners still on the caller's signal. A timer
 * armed in an activity holds the activity's context (its async store) until it fires, so
 * each left behind kept a finished activity in memory for the whole limit.
 */
async function leftBehind(
  call: (signal: AbortSignal) => Promise<unknown>,
): Promise<{ armedTimers: number; callerListeners: number }> {
  const timers: { _destroyed?: boolean }[] = [];
  const hook = createHook({
    init(_id, type, _trigger, resource) {
      const timer = resource as { _idleTimeout?: number; _destroyed?: boolean };
      if (type === 'Timeout' && timer._idleTimeout === limitMs) timers.push(timer);
    },
  }).enable();
  const caller = new AbortController();
  try {
    await call(caller.signal);
  } finally {
    hook.disable();
  }
  return {
    armedTimers: timers.filter((timer) => timer._destroyed !== true).length,
    callerListeners: getEventListeners(caller.signal, 'abort').length,
  };
}

const nothingLeft = { armedTimers: 0, callerListeners: 0 };

const answerSchema = z.object({ items: z.array(z.object({ title: z.string() })).min(1) });
const textRequest = (signal: AbortSignal) => ({
  what: 'sub-goal generation',
  systemInstruction: 'Answer with JSON only.',
  prompt: 'Goal: sail\nWrite at most 2 sub-goals.',
  responseJsonSchema: z.toJSONSchema(answerSchema),
  maxAnswerChars: 2_000,
  signal,
});

// Through the real clients against fakes that speak their protocols.
describe('a provider call, once it has ended', () => {
  let google: FakeGoogle;
  let openAi: FakeOpenAi;
  /** With `limitMs`, the limit whose timers the tests look for. */
  let googleProviders: Providers;
  /** With a 300 ms limit, for requests that outlast it. */
  let hasty: Providers;

  before(async () => {
    google = new FakeGoogle(async () => undefined);
    openAi = new FakeOpenAi();
    await Promise.all([google.start(), openAi.start()]);
    const googleEnv = {
      GEMINI_API_KEY: 'test-key',
      GEMINI_BASE_URL: google.url,
      VERTEX_PROJECT: 'test-project',
      VERTEX_LOCATION: 'us-central1',
      VERTEX_BASE_URL: google.url,
      VERTEX_ACCESS_TOKEN: 'test-token',
      VEO_OUTPUT_GCS_URI: 'gs://veo-output/generated/',
      GCS_API_ENDPOINT: 'http://127.0.0.1:9',
    };
    googleProviders = providersFor({
      ...googleEnv,
      PROVIDER_REQUEST_TIMEOUT_MS: String(limitMs),
    });
    hasty = providersFor({ ...googleEnv, PROVIDER_REQUEST_TIMEOUT_MS: '300' });
  });
  afterEach(() => {
    google.resetScenario();
    openAi.resetScenario();
  });
  after(() => Promise.all([google.stop(), openAi.stop()]));

  const clip: MediaRef = {
    key: 'uploads/clip.mp4',
    name: 'clip.mp4',
    contentType: 'video/mp4',
    kind: 'video',
    size: 4,
    sha256: '0'.repeat(64),
  };
  const photo: MediaRef = {
    ...clip,
    key: 'uploads/a.jpg',
    name: 'a.jpg',
    contentType: 'image/jpeg',
    kind: 'image',
  };
  const analysis = (providers: Providers, signal: AbortSignal, media = [photo, clip]) =>
    providers.analyzer!.analyze({
      jobId: 'job-1',
      media,
      brief: { title: 'Sailing', prompt: null, style: null, durationSeconds: 8 },
      openMedia: () => Promise.resolve(Readable.from([Buffer.from('media')])),
      progress: () => undefined,
      signal,
    });
  const veoRequest = {
    prompt: 'A boat at dawn',
    aspectRatio: '16:9' as const,
    durationSeconds: 8,
    outputUri: 'gs://veo-output/generated/job-1/',
    title: 'Sailing',
    media: [],
    analysis: null,
  };
  const veoContext = (signal: AbortSignal) => ({
    signal,
    openMedia: () => Promise.reject(new Error('Veo renders from the prompt')),
    progress: () => undefined,
  });

  it('leaves no time limit armed and no listener on the caller: Gemini analysis, Files API included', async () => {
    google.scenario.fileProcessingPolls = 0;
    assert.deepEqual(await leftBehind((signal) => analysis(googleProviders, signal)), nothingLeft);
  });

  it('leaves none: a streamed Gemini answer', async () => {
    const generator = googleProviders.textGenerator!;
    assert.equal(generator.provider, 'gemini');
    assert.deepEqual(
      await leftBehind((signal) => generator.generateJson(textRequest(signal))),
      nothingLeft,
    );
  });

  it('leaves none: a Veo submission and a look at it', async () => {
    const veo = googleProviders.videoGenerator!;
    let operation = '';
    assert.deepEqual(
      await leftBehind(
        async (signal) => (operation = await veo.start(veoRequest, veoContext(signal))),
      ),
      nothingLeft,
    );
    assert.deepEqual(await leftBehind((signal) => veo.check(operation, { signal })), nothingLeft);
  });

  it('leaves none: a streamed answer from an OpenAI-compatible server', async () => {
    const generator = providersFor({
      OPENAI_BASE_URL: openAi.baseUrl,
      OPENAI_API_KEY: 'sk-test',
      OPENAI_MODEL: 'tiny-model',
      OPENAI_REQUEST_TIMEOUT_MS: String(limitMs),
    }).textGenerator!;
    assert.deepEqual(
      await leftBehind((signal) => generator.generateJson(textRequest(signal))),
      nothingLeft,
    );
  });

  it('still ends a request that outlasts the limit, as a retryable unavailability naming it', async () => {
    google.scenario.latencyMs = 3_000;
    const veo = hasty.videoGenerator!;
    const outcomes = await Promise.allSettled([
      analysis(hasty, new AbortController().signal, [photo]),
      veo.start(veoRequest, veoContext(new AbortController().signal)),
      veo.check('projects/test-project/operations/unknown', {
        signal: new AbortController().signal,
      }),
    ]);
    const messages = outcomes.map((outcome) => {
      assert.equal(outcome.status, 'rejected');
      const error: unknown = outcome.reason;
      assert.ok(error instanceof ProviderError, String(error));
      assert.equal(error.code, FailureCode.PROVIDER_UNAVAILABLE);
      assert.equal(error.retryable, true);
      return error.message;
    });
    assert.deepEqual(messages, [
      'Gemini analysis did not end within 300 ms',
      'Starting the Veo generation did not end within 300 ms',
      'Checking the Veo generation did not end within 300 ms',
    ]);
  });

  it('stops when the caller aborts, without waiting for the answer, and lets go of the caller', async () => {
    // Far longer than the test's own time limit: a call that waited for it would not settle.
    google.scenario.latencyMs = 600_000;
    const caller = new AbortController();
    const pending = googleProviders.videoGenerator!.check('projects/p/operations/o', {
      signal: caller.signal,
    });
    caller.abort(new Error('activity cancelled'));
    await assert.rejects(pending, /activity cancelled/);
    assert.equal(getEventListeners(caller.signal, 'abort').length, 0);
  });
});
