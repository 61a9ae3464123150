import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { createActivityDependencies } from '../../src/worker/dependencies.js';
import { FakeGoogle } from '../fakes/fake-google.js';
import { eventually } from '../support/eventually.js';
import {
  startHarness,
  testJwtSecret,
  type Harness,
  type TestApi,
  type UserClient,
} from '../support/harness.js';
import { aiJobStream, answersOf, itStreamsOutputResumably } from '../support/streamed-output.js';

interface AiJobView {
  status: string;
  error: { code: string; message: string } | null;
}

// The same streamed output as test/e2e/ai-streaming.test.ts, from Gemini: the fake answers
// streamGenerateContent slowly enough for the answer to be read in flight.
describe("a Gemini AI job's streamed output", () => {
  let fake: FakeGoogle;
  let h: Harness;
  let second: TestApi;
  let secondUrl: string;
  let ada: UserClient;

  before(async () => {
    fake = new FakeGoogle(async () => undefined);
    await fake.start();
    const env = {
      AUTH_JWT_SECRET: testJwtSecret,
      DATA_DIR: path.join(os.tmpdir(), `vlogflow-ai-stream-gemini-${randomUUID()}`),
      GEMINI_API_KEY: 'test-key',
      GEMINI_BASE_URL: fake.url,
      EVENT_STREAM_POLL_MS: '50',
    };
    h = await startHarness({
      env,
      worker: (db) => createActivityDependencies(loadConfig(env), db),
    });
    second = await h.startApi({ env });
    secondUrl = await second.listen();
    ada = h.user('ada');
  });
  afterEach(() => fake.resetScenario());
  after(async () => {
    await h.stop();
    await fake.stop();
  });

  const stream = (base: string, id: string, lastEventId?: string) =>
    aiJobStream(ada, base, id, lastEventId);

  const slowly = () => {
    fake.scenario.pieceChars = 6;
    fake.scenario.pieceDelayMs = 40;
  };

  itStreamsOutputResumably(() => ({
    h,
    ada,
    secondUrl,
    pieces: () => fake.calls.streamedPieces,
    lastAnswer: () => fake.streamedAnswers.at(-1),
    slowly,
  }));

  it('cancelled mid-stream: the request to Gemini is aborted, and what it wrote stays on the stream', async () => {
    slowly();
    const abandoned = fake.calls.abandonedStreams;
    const written = '{"items": [{"title": "Choose a pattern", "descr';
    fake.scenario.analysisAnswers.push({ kind: 'stall', text: written });
    const { id } = await ada.startJob('ai', {
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Knit a jumper' },
    });
    const events = await stream(secondUrl, id);
    // The whole stalled answer reaches the stream while the job runs, then it is cancelled.
    const seen = [await events.next()];
    while (answersOf(seen)[0] !== written) seen.push(await events.next());

    assert.equal((await ada.cancel('ai', id, { reason: 'no wool' })).statusCode, 202);
    seen.push(...(await events.rest()));
    const end = JSON.parse(seen.at(-1)!.data) as AiJobView;
    assert.equal(end.status, 'cancelled');
    assert.equal(end.error?.code, 'CANCELLED');
    await eventually(
      async () => fake.calls.abandonedStreams,
      (n) => n > abandoned,
      { what: 'the stream from Gemini to be closed', timeoutMs: 15_000 },
    );
    assert.deepEqual(answersOf(seen), [written], 'nothing written again after the cancel');
  });

  it('asks again with a repair prompt after an invalid answer, streaming the new answer from offset 0', async () => {
    const invalid = '{"items": [{"title": "", "description": "no title"}]}';
    fake.scenario.analysisAnswers.push({ kind: 'text', text: invalid });
    const requests = fake.analysisRequests.length;
    const { id } = await ada.startJob('ai', {
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Grow tomatoes', maxItems: 2 },
    });
    const events = await (await stream(secondUrl, id)).rest();
    const done = JSON.parse(events.at(-1)!.data) as AiJobView;
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.deepEqual(answersOf(events), [invalid, fake.streamedAnswers.at(-1)]);

    const repaired = fake.analysisRequests[requests + 1] as unknown as {
      contents: { role: string; parts: { text: string }[] }[];
    };
    assert.deepEqual(
      repaired.contents.map((content) => content.role),
      ['user', 'model', 'user'],
    );
    assert.equal(repaired.contents[1]?.parts[0]?.text, invalid, 'its own answer, as its own turn');
    assert.match(
      repaired.contents[2]?.parts[0]?.text ?? '',
      /rejected: items\.0\.title: .*Answer again/s,
    );
  });
});
