/**
 * The contracts between layers: inputs and outputs of workflows, activities, signals, queries
 * and updates. Each is one object so fields can be added without breaking running histories.
 * Types only, shared by every layer; a kind that has its home in `src/kinds` keeps its own
 * contracts in its declaration (`src/kinds/<kind>/declaration.ts`).
 */
import type { AiJobRequest } from './ai-generation.js';
import type { JobError, JobKind, JobStatus } from './model.js';

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
  seq: number;
  snapshot: JobSnapshot;
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

export interface VlogInput {
  title: string;
  prompt: string | null;
  style: string | null;
  aspectRatio: '16:9' | '9:16';
  durationSeconds: number;
  media: MediaRef[];
}

export interface VlogAnalysis {
  summary: string;
  mood: string;
  subjects: string[];
  scenes: { mediaIndex: number; description: string }[];
  videoPrompt: string;
  /** Facts measured from each media item (the local analyzer; a model does not measure). */
  media?: MediaFacts[];
  /** How the uploads are cut into the vlog (a generator that composes from them follows it). */
  plan?: VlogPlan;
}

/** What was measured in one photo or clip, from its container and from sampled frames. */
export interface MediaFacts {
  mediaIndex: number;
  kind: 'image' | 'video';
  /** Seconds of a clip; null for a photo. */
  durationSeconds: number | null;
  width: number;
  height: number;
  orientation: 'landscape' | 'portrait' | 'square';
  hasAudio: boolean;
  /** Mean luma of the sampled frames, 0 (black) to 1 (white). */
  brightness: number;
  /** The most common colours of the sampled frames, most common first, as `#rrggbb`. */
  dominantColors: string[];
  /** Mean change between consecutive sampled frames, 0 to 1; null for a photo. */
  motion: number | null;
  /** Where the picture changes abruptly (cuts), in seconds from the start of the clip. */
  sceneChangesSeconds: number[];
}

/** The vlog's cut: a title card, then the media in `items` order. Seconds add up to the vlog's. */
export interface VlogPlan {
  titleSeconds: number;
  items: {
    mediaIndex: number;
    /** How long the item is on screen. */
    seconds: number;
    /** The parts of a clip that are kept, in order (empty for a photo). */
    segments: { startSeconds: number; endSeconds: number }[];
  }[];
}

/** A generated video the provider finished, before delivery. */
export interface GeneratedVideo {
  sourceUri: string;
  mimeType: string;
}

/** What a vlog keeps across retries (continue-as-new): finished steps are never redone. */
export interface VlogProgressCarried {
  analysis: VlogAnalysis | null;
  /** The latest generation submitted and what became of it. */
  generation: {
    operationName: string;
    attempt: number;
    state: 'running' | 'succeeded' | 'failed';
    video: GeneratedVideo | null;
  } | null;
}

/** Operational settings a vlog run takes from the configuration when it is accepted. */
export interface VlogSettings {
  deadlineMs: number;
  pollIntervalMs: number;
  retryWindowMs: number;
  providerRetry: ProviderRetrySettings;
  /**
   * Task queue of the steps that run ffmpeg on the worker (analysis and render of the local
   * provider), so that the backlog waits in Temporal rather than in a worker; unset (Google, or
   * runs accepted before it existed): the job's own queue.
   */
  mediaTaskQueue?: string;
}

/** Backoff for transient provider failures (429, 5xx); a provider's RetryInfo delay wins. */
export interface ProviderRetrySettings {
  initialIntervalMs: number;
  maximumIntervalMs: number;
  maximumAttempts: number;
}

export interface VlogJobInput {
  job: JobRecord<VlogInput>;
  settings: VlogSettings;
  /** 1 for the first run, +1 for each retry. */
  attempt: number;
  /** Projection sequence number reached by the previous run. */
  seq: number;
  carried: VlogProgressCarried;
}

/** Operational settings an AI job takes from the configuration when it is accepted. */
export interface AiJobSettings {
  /** Time an attempt may take before the job ends `timeout`. */
  timeoutMs: number;
  /** The generation activity is declared lost (and retried) after this long without a heartbeat. */
  heartbeatTimeoutMs: number;
  retryWindowMs: number;
  providerRetry: ProviderRetrySettings;
}

export interface AiJobInput {
  /** `job.type` is the generation type and `job.input` its input. */
  job: JobRecord<AiJobRequest['input']>;
  settings: AiJobSettings;
  attempt: number;
  seq: number;
}

export interface VlogResult {
  videoKey: string;
  thumbnailKey: string | null;
  durationSeconds: number | null;
  sizeBytes: number;
  mimeType: string;
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
  /** MEDIA_RETENTION_MS: time media is kept after its job ended. */
  retentionMs: number;
  /** JOB_RETRY_WINDOW_MS: a failed job's media is kept at least while it can be retried. */
  retryWindowMs: number;
  /** Jobs one `deleteExpiredMedia` call handles. */
  batchSize: number;
}

export interface MediaSweepResult {
  /** Jobs whose media this run deleted. */
  jobs: number;
  deletedObjects: number;
  /** False when the run stopped at its batch limit; the next scheduled run continues. */
  complete: boolean;
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

/** One file of an upload, as stored: what `inspectStoredMedia` reads. */
export interface StoredMediaFile {
  key: string;
  kind: 'image' | 'video';
}

/** Input of `inspectUploadedMedia`, started by the API for one upload once it is stored. */
export interface MediaInspectionInput {
  /** The media task queue, where workers with ffprobe run the inspection. */
  mediaTaskQueue: string;
  /** The upload's files, in the order they were received. */
  files: StoredMediaFile[];
}

export interface InspectStoredMediaInput {
  files: StoredMediaFile[];
}

/** What ffprobe read from one file; sizes as displayed. */
export type MediaFileInspection =
  | { readable: true; width: number; height: number; durationSeconds: number | null }
  /** ffprobe could not read it (or not in time): its analysis will report it. */
  | { readable: false; reason: string };

export type MediaInspectionResult =
  /** One entry per file, in the order of the input. */
  | { inspected: true; files: MediaFileInspection[] }
  /** The worker that took the inspection has no ffmpeg or ffprobe (its identity names it). */
  | { inspected: false; reason: string };
