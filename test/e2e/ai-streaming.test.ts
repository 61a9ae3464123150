import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { createActivityDependencies } from '../../src/worker/dependencies.js';
import { FakeOpenAi } from '../fakes/fake-openai.js';
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

// A model's answer reaches the job's progress stream while it is written, coalesced, resumable
// like every other event; the fake streams its answer slowly enough to be read in flight.
describe("an AI job's streamed output", () => {
  let fake: FakeOpenAi;
  let h: Harness;
  let second: TestApi;
  let secondUrl: string;
  let ada: UserClient;

  before(async () => {
    fake = new FakeOpenAi();
    await fake.start();
    const env = {
      AUTH_JWT_SECRET: testJwtSecret,
      DATA_DIR: path.join(os.tmpdir(), `vlogflow-ai-stream-${randomUUID()}`),
      OPENAI_BASE_URL: fake.baseUrl,
      OPENAI_MODEL: 'streamer',
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
    pieces: () => fake.calls.pieces,
    lastAnswer: () => fake.answered.at(-1),
    slowly,
  }));

  it('asks again with a repair prompt after an invalid answer, streaming the new answer from offset 0', async () => {
    const invalid = '{"items": [{"title": "", "description": "no title"}]}';
    fake.scenario.answers.push({ kind: 'text', text: invalid });
    const requests = fake.requests.length;
    const { id } = await ada.startJob('ai', {
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Grow tomatoes', maxItems: 2 },
    });
    const events = await (await stream(secondUrl, id)).rest();
    const done = JSON.parse(events.at(-1)!.data) as AiJobView;
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.deepEqual(answersOf(events), [invalid, fake.answered.at(-1)]);

    const [, repaired] = fake.requests.slice(requests).map((request) => request.body.messages);
    assert.deepEqual(
      repaired?.map((message) => message.role),
      ['system', 'user', 'assistant', 'user'],
    );
    assert.equal(repaired?.[2]?.content, invalid, 'its own answer, as its own turn');
    assert.match(repaired?.[3]?.content ?? '', /rejected: items\.0\.title: .*Answer again/s);
  });

  it('fails INVALID_PROVIDER_OUTPUT after three rejected answers, without retrying', async () => {
    const calls = fake.calls.chatCompletions;
    for (let round = 0; round < 3; round += 1)
      fake.scenario.answers.push({ kind: 'text', text: '{"items": []}' });
    const { id } = await ada.startJob('ai', {
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Paint a fence' },
    });
    const failed = await ada.awaitJob<AiJobView>('ai', id, (view) => view.status === 'failed');
    assert.equal(failed.error?.code, 'INVALID_PROVIDER_OUTPUT');
    assert.match(failed.error?.message ?? '', /after 3 answers: items: /);
    assert.equal(fake.calls.chatCompletions, calls + 3);
  });
});
