import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { readJobEvents } from '../../src/db/job-events.js';
import { jobEventId } from '../../src/jobs/job-event.js';
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
import { openEventStream, type ServerSentEvent } from '../support/sse.js';
import { answersOf, eventData } from '../support/streamed-output.js';

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

  const stream = async (base: string, id: string, lastEventId?: string) =>
    openEventStream(`${base}/api/ai/jobs/${id}/events`, {
      authorization: await ada.authorization(),
      ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }),
    });

  async function loggedIds(id: string): Promise<string[]> {
    const log = await readJobEvents(h.db, [{ jobId: id, afterSeq: -1 }], 1000);
    return log.map(({ event }) => jobEventId(event));
  }

  const slowly = () => {
    fake.scenario.pieceChars = 6;
    fake.scenario.pieceDelayMs = 40;
  };

  it('streams the answer in coalesced pieces, in order, before the job completes', async () => {
    slowly();
    const pieces = fake.calls.streamedPieces;
    const { id } = await ada.startJob('ai', {
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Learn the harp', maxItems: 3 },
    });
    const events = await (await stream(await h.api.listen(), id)).rest();
    assert.equal(events.at(-1)?.event, 'end');
    const logged = events.slice(0, -1);
    assert.deepEqual(
      logged.map((event) => event.id),
      await loggedIds(id),
      'every logged event, once, in order',
    );

    const outputs = logged.filter((event) => event.event === 'output');
    assert.match(outputs[0]!.id!, /^\d+-1$/);
    assert.ok(
      outputs.every((event) => eventData(event).status === 'processing'),
      'pieces come while the job processes',
    );
    const completed = logged.findIndex((event) => eventData(event).status === 'completed');
    assert.ok(completed > logged.indexOf(outputs.at(-1)!), 'the last piece comes before completed');
    assert.deepEqual(answersOf(logged), [fake.streamedAnswers.at(-1)]);
    const sent = fake.calls.streamedPieces - pieces;
    assert.ok(
      outputs.length >= 2 && outputs.length * 3 <= sent,
      `${sent} pieces from the model in ${outputs.length} events`,
    );
  });

  it('resumes after Last-Event-ID on another API, even when the first one stops, losing and repeating nothing', async () => {
    slowly();
    const stopping = await h.startApi({ env: { EVENT_STREAM_POLL_MS: '50' } });
    const { id } = await ada.startJob('ai', {
      type: 'TASK_GENERATION',
      input: { goal: 'Sail', subGoal: 'Learn knots', action: 'Practise', maxItems: 3 },
    });
    const first = await stream(await stopping.listen(), id);
    const seen: ServerSentEvent[] = [];
    while (seen.filter((event) => event.event === 'output').length < 2) {
      seen.push(await first.next());
    }
    const closed = stopping.app.close();
    seen.push(...(await first.rest(10_000)));
    await closed;
    assert.ok(
      seen.every((event) => event.event !== 'end'),
      'the job had not ended',
    );

    const rest = await (await stream(secondUrl, id, seen.at(-1)!.id!)).rest();
    assert.equal(rest.at(-1)?.event, 'end');
    const all = [...seen, ...rest.slice(0, -1)];
    assert.deepEqual(
      all.map((event) => event.id),
      await loggedIds(id),
    );
    assert.deepEqual(answersOf(all), [fake.streamedAnswers.at(-1)]);

    // Resuming from the middle of the output gives exactly the pieces after it.
    const outputs = all.filter((event) => event.event === 'output');
    const middle = outputs[Math.floor(outputs.length / 2)]!;
    const after = await (await stream(secondUrl, id, middle.id!)).rest();
    assert.deepEqual(
      after.slice(0, -1).map((event) => event.id),
      all.slice(all.indexOf(middle) + 1).map((event) => event.id),
    );
  });

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
