import assert from 'node:assert/strict';
import type { ServerSentEvent } from './sse.js';

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
