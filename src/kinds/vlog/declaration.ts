/**
 * A vlog from uploaded photos and clips: analysis, a generated or locally rendered video, its
 * delivery to media storage. Its types and policies, pure so the workflow may import them.
 */
import { ActivityCancellationType } from '@temporalio/common';
import type { TaskQueueNames } from '../../capacity/task-queues.js';
import type { JobRecord, MediaRef, ProviderRetrySettings } from '../../jobs/contracts.js';
import {
  FailureCode,
  lifecycleFailureCodes,
  nonRetryableFailureCodes,
  providerCallFailureCodes,
} from '../../jobs/failures.js';
import type { JobKindDeclaration } from '../declaration.js';

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
   * runs accepted before it existed): the queue of the step's domain.
   */
  mediaTaskQueue?: string;
  /** The queue map (`src/capacity/task-queues.ts`); unset (runs accepted before it): the job's own queue. */
  taskQueues?: TaskQueueNames;
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

export interface VlogResult {
  videoKey: string;
  thumbnailKey: string | null;
  durationSeconds: number | null;
  sizeBytes: number;
  mimeType: string;
}

export const vlogKind = {
  kind: 'vlog',
  workflowType: 'vlogJob',
  jobTypes: ['VLOG'],
  noun: 'vlog',
  retries: true,
  stages: [
    { status: 'analyzing', progress: 0 },
    { status: 'generating', progress: 25 },
    { status: 'transferring', progress: 75 },
  ],
  // The local provider's analysis and render run ffmpeg on the media queue.
  taskQueues: ['workflows', 'analysis', 'video-generation', 'media', 'transfer', 'storage'],
  // Every step heartbeats at least every 3 s, so a lost worker is noticed within 10 s and its
  // step runs again on another a second later: a job resumes within 15 s of a worker's death.
  activityPolicies: {
    analysis: {
      domain: 'analysis',
      startToCloseTimeout: '15m',
      heartbeatTimeout: '10s',
      retry: 'provider',
    },
    // A local render runs inside startVideoGeneration for as long as it takes, heartbeating; a
    // lost worker is still noticed within the heartbeat timeout.
    generation: {
      domain: 'video-generation',
      startToCloseTimeout: '30m',
      heartbeatTimeout: '10s',
      retry: 'provider',
    },
    // A look at a paid generation under way is never given up for a failure of the look itself
    // (the database or Vertex away for a while, which the provider backoff's few attempts did
    // not outlast): only the provider's verdict, a permanent failure or the attempt's deadline
    // end it, and a retry of the vlog re-attaches to a generation that may still be running.
    generationCheck: {
      domain: 'video-generation',
      startToCloseTimeout: '30m',
      heartbeatTimeout: '10s',
      retry: {
        initialInterval: '1s',
        backoffCoefficient: 2,
        maximumInterval: '30s',
        nonRetryableErrorTypes: nonRetryableFailureCodes,
      },
    },
    transfer: {
      domain: 'transfer',
      startToCloseTimeout: '60m',
      heartbeatTimeout: '10s',
      // A cancelled transfer aborts its own upload; cleanup must not run while it still writes.
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: {
        initialInterval: '1s',
        maximumInterval: '2m',
        maximumAttempts: 10,
        nonRetryableErrorTypes: nonRetryableFailureCodes,
      },
    },
    // Without a heartbeat timeout a worker lost during these steps is noticed only after 5 min.
    storage: {
      domain: 'storage',
      startToCloseTimeout: '5m',
      heartbeatTimeout: '10s',
      retry: { initialInterval: '1s', maximumInterval: '1m', maximumAttempts: 10 },
    },
  },
  failureCodes: [
    FailureCode.MEDIA_UNREADABLE,
    FailureCode.MEDIA_PROCESSING_TIMEOUT,
    FailureCode.MEDIA_PROCESSING_INTERRUPTED,
    FailureCode.CONTENT_FILTERED,
    ...providerCallFailureCodes,
    FailureCode.GENERATION_FAILED,
    FailureCode.TRANSFER_FAILED,
    FailureCode.VLOG_DEADLINE_EXCEEDED,
    ...lifecycleFailureCodes,
  ],
  summary: ({ input }) =>
    `Vlog "${input.title}": ${input.media.length} files, ${input.durationSeconds}s ${input.aspectRatio}`,
  publicFields: ({ input, result }) => {
    const made = result as VlogResult | null;
    return {
      input: {
        ...input,
        media: input.media.map(({ name, contentType, kind, size }) => ({
          name,
          contentType,
          kind,
          size,
        })),
      },
      result: made && {
        durationSeconds: made.durationSeconds,
        sizeBytes: made.sizeBytes,
        mimeType: made.mimeType,
      },
    };
  },
} as const satisfies JobKindDeclaration<'VLOG', VlogInput>;
