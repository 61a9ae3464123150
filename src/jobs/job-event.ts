import type { JobError, JobStatus } from './model.js';

/** One entry of a job's event log, as its progress stream sends it. */
export interface JobEvent {
  jobId: string;
  /** The job's projection sequence number: ever growing. */
  seq: number;
  /** 0 for a state; 1, 2… for the pieces of output streamed after state `seq`. */
  part: number;
  /**
   * `status` when the status changed, `progress` when only progress or phase did, `output` for
   * a piece of the model's answer as it streams.
   */
  type: 'status' | 'progress' | 'output';
  /** The job's state (for `output`, its state when the piece was written). */
  status: JobStatus;
  progress: number;
  phase: string | null;
  attempt: number;
  error: JobError | null;
  /** `output` only: the piece, and where it starts in its answer (0 starts a new answer). */
  output: JobOutput | null;
  at: string;
}

/** A piece of a model's answer, as it streams: data, never markup or instructions. */
export interface JobOutput {
  text: string;
  /** Characters of the same answer before this piece; 0 starts a new answer (a repair, a retry). */
  offset: number;
}

/** The stream's event id: `seq` for a state, `seq-part` for output, in log order. */
export interface JobEventPosition {
  seq: number;
  part: number;
}

/** Where a reader of one job's log stands: it has every event up to this position. */
export interface JobEventCursor {
  jobId: string;
  afterSeq: number;
  /** Default 0: every piece of output after state `afterSeq` is still to come. */
  afterPart?: number;
}

/** The id a stream gives an event: `7` for a state, `7-2` for output. */
export function jobEventId({ seq, part }: JobEventPosition): string {
  return part === 0 ? String(seq) : `${seq}-${part}`;
}

/** The id of the `end` event sent after state `seq`, the job's last. */
export function endEventId(seq: number): string {
  return `${seq}-end`;
}

/** Where a client's `Last-Event-ID` puts it: after an event, and whether that was the `end`. */
export interface StreamResumePoint extends JobEventPosition {
  ended: boolean;
}

/**
 * The position a stream's event id names, written as jobEventId and endEventId write it (no
 * leading zero, no part 0); null for anything else.
 */
export function parseJobEventId(id: string): StreamResumePoint | null {
  const match = /^(0|[1-9]\d{0,8})(?:-([1-9]\d{0,8}|end))?$/.exec(id);
  if (!match) return null;
  const ended = match[2] === 'end';
  return { seq: Number(match[1]), part: ended ? 0 : Number(match[2] ?? 0), ended };
}
