import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { Db } from '../../src/db/database.js';
import { readJobEvents } from '../../src/db/job-events.js';
import { jobEventId } from '../../src/jobs/job-event.js';
import type { Harness, UserClient } from './harness.js';
import { openEventStream, type EventStreamClient, type ServerSentEvent } from './sse.js';

/** The data of an event on a job's progress stream. */
export interface StreamedEvent {
  jobId: string;
  seq: number;
  part: number;
  type: string;
  status: string;
  output: { text: string; offset: number } | null;
}

export const eventData = (event: ServerSentEvent) => JSON.parse(event.data) as StreamedEvent;

/**
 * The answers a stream's `output` events spell, one string per answer (offset 0 starts one);
 * fails unless each piece starts where the last one ended.
 */
export function answersOf(events: ServerSentEvent[]): string[] {
  const answers: string[] = [];
  for (const event of events.filter((each) => each.event === 'output')) {
    const { text, offset } = eventData(event).output!;
    if (offset === 0) answers.push('');
    assert.equal(offset, answers.at(-1)!.length, 'each piece starts where the last one ended');
    answers[answers.length - 1] += text;
  }
  return answers;
}

/** What the shared streamed-output tests use of a provider's test stack. */
export interface StreamedOutputStack {
  h: Harness;
  ada: UserClient;
  /** A second API process over the same database, listening. */
  secondUrl: string;
  /** Pieces of answer the provider's fake has sent so far. */
  pieces: () => number;
  /** The last answer the fake streamed whole. */
  lastAnswer: () => string | undefined;
  /** Makes the fake write its next answers slowly enough to be read in flight. */
  slowly: () => void;
}

/** Opens `ada`'s progress stream of an AI job on the API at `base`, after `lastEventId` if given. */
export async function aiJobStream(
  ada: UserClient,
  base: string,
  id: string,
  lastEventId?: string,
): Promise<EventStreamClient> {
  return openEventStream(`${base}/api/ai/jobs/${id}/events`, {
    authorization: await ada.authorization(),
    ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }),
  });
}

/** The ids of a job's event log, in order. */
export async function loggedEventIds(db: Db, id: string): Promise<string[]> {
  const log = await readJobEvents(db, [{ jobId: id, afterSeq: -1 }], 1000);
  return log.map(({ event }) => jobEventId(event));
}

/**
 * The tests every streaming provider passes, registered in the caller's suite: the answer
 * arrives coalesced and in order before the job completes, and a stream resumed on another API
 * process (the first one stopping) loses and repeats nothing.
 */
export function itStreamsOutputResumably(stack: () => StreamedOutputStack): void {
  it('streams the answer in coalesced pieces, in order, before the job completes', async () => {
    const { h, ada, pieces, lastAnswer, slowly } = stack();
    slowly();
    const piecesBefore = pieces();
    const { id } = await ada.startJob('ai', {
      type: 'SUBGOAL_GENERATION',
      input: { goal: 'Learn the harp', maxItems: 3 },
    });
    const events = await (await aiJobStream(ada, await h.api.listen(), id)).rest();
    assert.equal(events.at(-1)?.event, 'end');
    const logged = events.slice(0, -1);
    assert.deepEqual(
      logged.map((event) => event.id),
      await loggedEventIds(h.db, id),
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
    assert.deepEqual(answersOf(logged), [lastAnswer()]);
    const sent = pieces() - piecesBefore;
    assert.ok(
      outputs.length >= 2 && outputs.length * 3 <= sent,
      `${sent} pieces from the model in ${outputs.length} events`,
    );
  });

  it('resumes after Last-Event-ID on another API, even when the first one stops, losing and repeating nothing', async () => {
    const { h, ada, secondUrl, lastAnswer, slowly } = stack();
    slowly();
    const stopping = await h.startApi({ env: { EVENT_STREAM_POLL_MS: '50' } });
    const { id } = await ada.startJob('ai', {
      type: 'TASK_GENERATION',
      input: { goal: 'Sail', subGoal: 'Learn knots', action: 'Practise', maxItems: 3 },
    });
    const first = await aiJobStream(ada, await stopping.listen(), id);
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

    const rest = await (await aiJobStream(ada, secondUrl, id, seen.at(-1)!.id!)).rest();
    assert.equal(rest.at(-1)?.event, 'end');
    const all = [...seen, ...rest.slice(0, -1)];
    assert.deepEqual(
      all.map((event) => event.id),
      await loggedEventIds(h.db, id),
    );
    assert.deepEqual(answersOf(all), [lastAnswer()]);

    // Resuming from the middle of the output gives exactly the pieces after it.
    const outputs = all.filter((event) => event.event === 'output');
    const middle = outputs[Math.floor(outputs.length / 2)]!;
    const after = await (await aiJobStream(ada, secondUrl, id, middle.id!)).rest();
    assert.deepEqual(
      after.slice(0, -1).map((event) => event.id),
      all.slice(all.indexOf(middle) + 1).map((event) => event.id),
    );
  });
}
