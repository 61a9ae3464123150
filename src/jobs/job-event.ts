import type { JobError, JobStatus } from './model.js';

/** One state a job went through, as its progress stream sends it. */
export interface JobEvent {
  jobId: string;
  /** The job's projection sequence number: ever growing, the stream's event id. */
  seq: number;
  /** `status` when the status changed, `progress` when only progress or phase did. */
  type: 'status' | 'progress';
  status: JobStatus;
  progress: number;
  phase: string | null;
  attempt: number;
  error: JobError | null;
  at: string;
}

/** Where a reader of one job's log stands: it has every event up to `afterSeq`. */
export interface JobEventCursor {
  jobId: string;
  afterSeq: number;
}
