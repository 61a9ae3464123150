/**
 * The contracts between layers: inputs and outputs of workflows, activities, signals, queries
 * and updates. Each is one object so fields can be added without breaking running histories.
 * Types only, shared by every layer; each job kind keeps its own workflow's input and result
 * in its declaration (`src/kinds/<kind>/declaration.ts`).
 */
import type { JobError, JobKind, JobStatus } from './model.js';
import type { LedgerEntry } from '../db/costs.js';

/** What identifies a job and what was asked of it; carried in every job workflow's input. */
export interface JobRecord<Input = unknown> {
  id: string;
  kind: JobKind;
  type: string;
  ownerId: string;
  input: Input;
  idempotencyKey: string | null;
  /** Hash of the request, to tell a replay of an idempotency key from a different request. */
  requestFingerprint: string | null;
  /** ISO timestamp with millisecond precision, decided by the API when it accepted the job. */
  createdAt: string;
  /**
   * Jobs of one owner with the same key run one at a time, in submission order (created_at,
   * then id). Absent from jobs accepted before keys existed: read as none.
   */
  concurrencyKey?: string | null;
  /** What the API estimated the job to cost, as decimal text; absent from jobs accepted before costs were kept. */
  estimatedCost?: string;
  /**
   * Set by the API on every job it starts: the job's runs take the projection's patched paths
   * (`src/workflows/job-tracker.ts`) without asking `patched()`, so their histories carry no
   * markers and no TemporalChangeVersion upserts of those two (four events a run). Absent from jobs
   * accepted before it, whose runs keep asking and so replay as they were recorded.
   */
  projectionPatchesApplied?: boolean;
}

/** The job's current state as the workflow knows it; each update carries all of it. */
export interface JobSnapshot {
  status: JobStatus;
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
  /**
   * The job's kind: an update that ends the job asks only this kind what its provider still
   * bills. Absent from runs that predate it, whose end asks every kind.
   */
  kind?: JobKind;
  seq: number;
  snapshot: JobSnapshot;
  /**
   * The workflow's history length when it projected this state: of two states projected at one
   * `seq`, the one from the longer history happened (the other came from a workflow task whose
   * completion the server refused). Absent from runs that predate it.
   */
  historyLength?: number;
}

/**
 * A run's first projection write: the job's row, written if it is missing (the API writes it
 * right after starting the workflow, but may have died first), and the state the run starts in.
 */
export interface JobStart {
  job: JobRecord;
  update: JobUpdate;
}

/**
 * The updates a run queued since its last projection write, applied in order in one write.
 * `register` is set on the run's first write, whose first update is the state the run starts
 * in: the job's row is written first if it is missing, as for JobStart.
 */
export interface JobUpdates {
  register?: JobRecord;
  updates: JobUpdate[];
}

/** Answer of the progress query: the live state, read from the workflow itself. */
export interface JobProgress extends JobSnapshot {
  jobId: string;
  seq: number;
}

/** An uploaded media file, by its key in media storage (claim check: never the bytes). */
export interface MediaRef {
  key: string;
  /** The client's file name, for messages. */
  name: string;
  contentType: string;
  kind: 'image' | 'video';
  size: number;
  sha256: string;
}

/** Backoff for transient provider failures (429, 5xx); a provider's RetryInfo delay wins. */
export interface ProviderRetrySettings {
  initialIntervalMs: number;
  maximumIntervalMs: number;
  maximumAttempts: number;
}

/** Input of `claimJobTurn`: the attempt asking whether it may run now. */
export interface ClaimJobTurnRequest {
  jobId: string;
  attempt: number;
}

export type JobTurn =
  | { granted: true }
  /** Jobs of the key that run or wait ahead of this one. */
  | { granted: false; ahead: number };

/** Input of `listJobsAwaitingTurn`. */
export interface JobsAwaitingTurnRequest {
  /** The job whose end frees the turn; its owner and key name the line. */
  jobId: string;
}

/**
 * Sent by a vlog whose generation ended (its provider lease freed) to the vlogs a free lease
 * would now admit: ask the governor again instead of waiting for the next recheck.
 */
export interface ProviderTurnNudge {
  /** The job whose lease was freed. */
  fromJobId: string;
}

/** Sent by a keyed job as it ends to the jobs waiting behind it: their line moved. */
export interface JobTurnNudge {
  /** The job that ended. */
  fromJobId: string;
}

export interface CancelJobRequest {
  reason: string | null;
}

export interface CancelJobResponse {
  /** The job's status when the cancel was accepted; it ends `cancelled` once its step stops. */
  status: JobStatus;
}

export interface RetryJobRequest {
  requestedBy: string;
}

export interface RetryJobResponse {
  attempt: number;
}

/** Input of `sweepExpiredMedia`, set by its schedule from the worker's configuration. */
export interface MediaSweepInput {
  /** The storage queue the sweep's activity runs on; unset (schedules set before it): the sweep's own. */
  taskQueue?: string;
  /** MEDIA_RETENTION_MS: time media is kept after its job ended. */
  retentionMs: number;
  /** JOB_RETRY_WINDOW_MS: a failed job's media is kept at least while it can be retried. */
  retryWindowMs: number;
  /** Jobs one `deleteExpiredMedia` call handles. */
  batchSize: number;
  /**
   * UPLOAD_ORPHAN_AGE_MS: an upload folder this old that no job uses (its API died mid-request)
   * is deleted. Unset (schedules set before it): the run does not look for them.
   */
  orphanUploadAgeMs?: number;
}

export interface MediaSweepResult {
  /** Jobs whose media this run deleted. */
  jobs: number;
  deletedObjects: number;
  /** False when the run stopped at its batch limit; the next scheduled run continues. */
  complete: boolean;
  /** Upload folders no job used that this run deleted; unset when it did not look for them. */
  orphanUploads?: number;
}

export interface DeleteOrphanUploadsInput {
  /** Upload folders recorded longer ago than this are checked. */
  olderThanMs: number;
  limit: number;
  /** Where the previous call of the run stopped (folders are checked in order of id). */
  afterBatchId: string | null;
}

export interface DeleteOrphanUploadsResult {
  checked: number;
  /** Folders deleted: no job used them and none could any more. */
  deletedBatches: number;
  /** The last folder checked, where the next call goes on; null when none was. */
  lastBatchId: string | null;
}

export interface DeleteExpiredMediaInput {
  retentionMs: number;
  retryWindowMs: number;
  limit: number;
}

export interface DeleteExpiredMediaResult {
  jobIds: string[];
  deletedObjects: number;
}

/** Input of `recordDeferredCharge`: a ledger charge the database did not take in time. */
export interface DeferredCharge {
  entry: LedgerEntry;
}

/** Input of `reconcileJobProjections`, set by its schedule from the worker's configuration. */
export interface JobReconcileInput {
  /** JOB_RECONCILE_STALE_MS: a job in flight is checked once its row has not changed for this long. */
  staleMs: number;
  /** Jobs one `reconcileJobBatch` call checks. */
  batchSize: number;
  /** `reconcileJobBatch` calls one run makes at most. Default 50. */
  maxBatchesPerRun?: number;
  /**
   * JOB_RETRY_WINDOW_MS: a job the reconciler ended (terminated, timed out) follows a reset of
   * its workflow for this long after. Unset (runs scheduled before it): not checked again.
   */
  reopenWindowMs?: number;
}

export interface JobReconcileResult {
  /** Jobs in flight checked against their workflows. */
  checked: number;
  /** Jobs ended because their workflow had closed (terminated, timed out, …). */
  ended: number;
  /** Jobs moved to the run a reset started. */
  followed: number;
  /** False when the run stopped at its batch limit, short of where it started. */
  complete: boolean;
  /**
   * Where the next scheduled run starts (after this job id); null: from the first. The schedule
   * hands it to the next run as its last completion result.
   */
  resumeAfterId: string | null;
}

export interface ReconcileJobBatchInput {
  staleMs: number;
  reopenWindowMs?: number;
  limit: number;
  /** The last job id of the previous batch; null for the first. */
  afterId: string | null;
  /** The last job id of the batch at most, where the run started when it went round. */
  throughId?: string;
}

export interface ReconcileJobBatchResult {
  checked: number;
  ended: number;
  followed: number;
  /** The last job id checked, where the next batch starts; null when none was left. */
  lastId: string | null;
}

/** One file of an upload, as stored: what `inspectStoredMedia` reads. */
export interface StoredMediaFile {
  key: string;
  kind: 'image' | 'video';
}

/** Input of `inspectUploadedMedia`, started by the API for one upload once it is stored. */
export interface MediaInspectionInput {
  /** The upload inspection queue, where workers with ffprobe run the inspection. */
  taskQueue: string;
  /** The upload's files, in the order they were received. */
  files: StoredMediaFile[];
}

export interface InspectStoredMediaInput {
  files: StoredMediaFile[];
}

/** What ffprobe read from one file; sizes as displayed. */
export type MediaFileInspection =
  | { readable: true; width: number; height: number; durationSeconds: number | null }
  /**
   * ffprobe could not read it: its analysis will report it. `timedOut`: not within the time a
   * header takes to read, so nothing is known of it (the API refuses it; the files after it are
   * not read).
   */
  | { readable: false; reason: string; timedOut?: true };

export type MediaInspectionResult =
  /** One entry per file, in the order of the input. */
  | { inspected: true; files: MediaFileInspection[] }
  /** The worker that took the inspection has no ffmpeg or ffprobe (its identity names it). */
  | { inspected: false; reason: string };
