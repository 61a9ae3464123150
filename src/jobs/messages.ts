/**
 * Inputs and outputs of workflows, activities, signals and queries: each is one object so
 * fields can be added without breaking running histories. Types only, shared by every layer.
 */
import type { JobError, JobKind } from './model.js';

/** What identifies a job and what was asked of it; carried in every job workflow's input. */
export interface JobRecord<Input = unknown> {
  id: string;
  kind: JobKind;
  type: string;
  ownerId: string;
  input: Input;
  idempotencyKey: string | null;
  /** ISO timestamp with millisecond precision, decided by the API when it accepted the job. */
  createdAt: string;
}

/** The job's current state as the workflow knows it; each update carries all of it. */
export interface JobSnapshot {
  status: string;
  progress: number;
  phase: string | null;
  attempt: number;
  runId: string;
  startedAt: string | null;
  completedAt: string | null;
  result: unknown;
  error: JobError | null;
}

/** Input of the projection activity. Updates with a sequence number not above the stored one are ignored. */
export interface JobUpdate {
  jobId: string;
  seq: number;
  snapshot: JobSnapshot;
}

/** Answer of the progress query: the live state, read from the workflow itself. */
export interface JobProgress extends JobSnapshot {
  jobId: string;
  seq: number;
}

export interface ProbeInput {
  /** Number of progress steps to record. */
  steps: number;
  /** Durable timer between steps, in milliseconds. */
  stepDelayMs: number;
}

export interface ProbeJobInput {
  job: JobRecord<ProbeInput>;
}

export interface ProbeJobResult {
  stepsCompleted: number;
}
