import type { Readable } from 'node:stream';
import { z } from 'zod';
import type { FailureCode } from '../jobs/failures.js';
import type { MediaRef, VlogAnalysis } from '../jobs/messages.js';

/** What a vlog's media analysis must produce; the model's JSON is validated against it. */
export const vlogAnalysisSchema = z.object({
  summary: z
    .string()
    .min(1)
    .max(2_000)
    .describe('What the footage shows, in two or three sentences'),
  mood: z.string().min(1).max(200).describe('The overall mood, a few words'),
  subjects: z
    .array(z.string().min(1).max(200))
    .max(50)
    .describe('People, places and things that recur'),
  scenes: z
    .array(
      z.object({
        mediaIndex: z
          .number()
          .int()
          .min(0)
          .describe('Index of the media item the scene comes from'),
        description: z.string().min(1).max(1_000),
      }),
    )
    .min(1)
    .max(100),
  videoPrompt: z
    .string()
    .min(10)
    .max(4_000)
    .describe('A prompt for a video model to render the vlog'),
}) satisfies z.ZodType<VlogAnalysis>;

/** A provider's refusal or failure, classified: the activity turns it into an ApplicationFailure. */
export class ProviderError extends Error {
  constructor(
    readonly code: FailureCode,
    message: string,
    readonly retryable: boolean,
    /** The provider's own advice on when to try again (RetryInfo), in milliseconds. */
    readonly retryDelayMs?: number,
  ) {
    super(message);
  }
}

export interface AnalysisBrief {
  title: string;
  prompt: string | null;
  style: string | null;
}

export interface AnalysisRequest {
  jobId: string;
  media: MediaRef[];
  brief: AnalysisBrief;
  openMedia(ref: MediaRef): Promise<Readable>;
  /** Called while long steps (uploads, file processing) are under way. */
  progress(detail: string): void;
  signal: AbortSignal;
}

/** Looks at a vlog's media and answers with the model's raw text (JSON, validated by the caller). */
export interface MediaAnalyzer {
  readonly name: string;
  analyze(request: AnalysisRequest): Promise<string>;
}

export interface VideoGenerationRequest {
  prompt: string;
  aspectRatio: '16:9' | '9:16';
  durationSeconds: number;
  /** gs://bucket/prefix/ the generated video is written under. */
  outputUri: string;
}

export type VideoGenerationStatus =
  | { state: 'running' }
  | { state: 'succeeded'; videoUri: string; mimeType: string }
  | { state: 'filtered'; reasons: string[] }
  | { state: 'failed'; message: string };

/** A paid, long-running video generation: started once, then checked until it ends. */
export interface VideoGenerator {
  readonly name: string;
  start(request: VideoGenerationRequest, signal?: AbortSignal): Promise<string>;
  check(operationName: string): Promise<VideoGenerationStatus>;
}

export interface TextGenerationRequest {
  /** What is being generated, for messages: "sub-goal generation". */
  what: string;
  systemInstruction: string;
  prompt: string;
  /** JSON Schema the answer must follow (derived from the zod schema that checks it). */
  responseJsonSchema: unknown;
  signal: AbortSignal;
}

/** An LLM answering with JSON text (validated by the caller). */
export interface TextGenerator {
  readonly name: string;
  readonly model: string;
  generateJson(request: TextGenerationRequest): Promise<string>;
}
