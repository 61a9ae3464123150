/** Where a progress stream's events stand in the job's log, by their ids (`7`, `7-2`, `7-end`). */
import { endEventId, jobEventId, type StreamResumePoint } from '../../jobs/job-event.js';

export { parseJobEventId as parsePosition } from '../../jobs/job-event.js';
export type StreamPosition = StreamResumePoint;

/** Whether `next` comes after `last` in the log (an `end` after its state's output). */
export function isAfter(next: StreamPosition, last: StreamPosition | null): boolean {
  if (!last) return true;
  if (next.seq !== last.seq) return next.seq > last.seq;
  if (next.ended !== last.ended) return next.ended;
  return next.part > last.part;
}

/** The id of the event at `position`, which a stream resumes after. */
export function positionId(position: StreamPosition): string {
  return position.ended ? endEventId(position.seq) : jobEventId(position);
}
