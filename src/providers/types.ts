import type { Readable } from 'node:stream';
import { z } from 'zod';
import { FailureCode } from '../jobs/failures.js';
import type { MediaRef } from '../jobs/contracts.js';
import type { VlogAnalysis } from '../kinds/vlog/declaration.js';
import type { RenderProgress } from '../media/tools.js';

const mediaIndex = z.number().int().min(0).describe('Index of the media item');

const mediaFactsSchema = z.object({
  mediaIndex,
  kind: z.enum(['image', 'video']),
  durationSeconds: z.number().positive().nullable(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  orientation: z.enum(['landscape', 'portrait', 'square']),
  hasAudio: z.boolean(),
  brightness: z.number().min(0).max(1),
  dominantColors: z
    .array(z.string().regex(/^#[0-9a-f]{6}$/))
    .max(5)
    .describe('Most common colours first, as #rrggbb'),
  motion: z.number().min(0).max(1).nullable(),
  sceneChangesSeconds: z.array(z.number().min(0)).max(100),
});

const vlogPlanSchema = z.object({
  titleSeconds: z.number().min(0).max(60).describe('How long the title card is shown'),
  items: z
    .array(
      z.object({
        mediaIndex,
        seconds: z.number().positive().max(60).describe('How long the item is on screen'),
        segments: z
          .array(
            z
              .object({ startSeconds: z.number().min(0), endSeconds: z.number().positive() })
              .refine((segment) => segment.endSeconds > segment.startSeconds, {
                error: 'endSeconds must be after startSeconds',
              }),
          )
          .max(10)
          .describe('The parts of a clip to keep, in order; empty for a photo'),
      }),
    )
    .min(1)
    .max(50)
    .describe('The media in the order they appear'),
});

/**
 * What a vlog's media analysis must produce, whichever provider made it; a model's JSON is
 * validated against it. `media` (measured facts) and `plan` (the cut) are optional: the local
 * analyzer measures and plans, Gemini describes and writes the prompt Veo renders from.
 */
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
  media: z.array(mediaFactsSchema).max(50).optional(),
  plan: vlogPlanSchema.optional(),
}) satisfies z.ZodType<VlogAnalysis>;

/** The provider label of an analyzer's or a video generator's name (`gemini:<model>`): `gemini`, `veo`, `local`. */
export const providerOf = (name: string) => name.split(':')[0]!;

/** The model of an analyzer's or a video generator's name (`gemini:<model>`): `gemini-2.5-flash`, `ffmpeg`. */
export const modelOf = (name: string) => name.slice(name.indexOf(':') + 1);

/**
 * The part of a streamed piece an answer of at most `maxChars` takes: up to one character past
 * the limit, which tells the reader the answer went on. A server may send a piece of any size
 * (one of megabytes), and each is stored and sent back to the model as it is. A NUL character
 * reads as U+FFFD: PostgreSQL stores no NUL in text, so the job's output events and its kept
 * answer were lost with one, and the answer must read the same whether asked or kept.
 */
export function answerPiece(
  piece: string | null | undefined,
  answered: string,
  maxChars: number,
): string | undefined {
  const taken = piece?.slice(0, Math.max(0, maxChars + 1 - answered.length));
  return taken ? taken.replaceAll('\0', '\ufffd') : undefined;
}

/** The characters a text generation sends: its instruction, its prompt, a repair round's turns. */
export function sentChars({ systemInstruction, prompt, repair }: TextGenerationRequest): number {
  return (
    systemInstruction.length +
    prompt.length +
    (repair ? repair.answer.length + repair.instruction.length : 0)
  );
}

/**
 * What went wrong with a call that got no error answer from the provider, in words that say
 * so: the HTTP client's own messages ("terminated", a JSON parser's complaint) named nothing a
 * reader could act on.
 */
export function transportFailure(error: unknown): string {
  if (error instanceof SyntaxError) {
    return `the answer was not the provider's JSON (a proxy's error page, say): ${quotedProviderMessage(error.message)}`;
  }
  const message = error instanceof Error ? error.message : String(error);
  if (message === 'terminated') return 'the connection closed before the answer ended';
  return quotedProviderMessage(message);
}

/** A provider's message is quoted in job errors and logs: at most this much of it. */
const maxProviderMessageChars = 500;

/** A provider's message as a job error or a log quotes it: cut past 500 characters. */
export function quotedProviderMessage(message: string): string {
  return message.length > maxProviderMessageChars
    ? `${message.slice(0, maxProviderMessageChars)}…`
    : message;
}

/** A provider's refusal or failure, classified: the activity turns it into an ApplicationFailure. */
export class ProviderError extends Error {
  constructor(
    readonly code: FailureCode,
    message: string,
    readonly retryable: boolean,
    /** The provider's own advice on when to try again (RetryInfo), in milliseconds. */
    readonly retryDelayMs?: number,
    /**
     * What the provider said, kept out of `message` (which becomes the job's error): a
     * server's 5xx body may name its hosts or worse. The worker logs it.
     */
    readonly providerSaid?: string,
  ) {
    super(message);
  }
}

/** A provider's 5xx, in the words a job's error may carry: its status, not its body. */
export function serverFailure(
  what: string,
  status: number,
  providerMessage: string,
  retryDelayMs: number | undefined,
): ProviderError {
  return new ProviderError(
    FailureCode.PROVIDER_UNAVAILABLE,
    `${what}: the provider answered ${status}, a failure of its own`,
    true,
    retryDelayMs,
    quotedProviderMessage(providerMessage),
  );
}

/**
 * A request that got no answer (it timed out, or its connection broke): the provider may have
 * taken it all the same.
 */
export class UnansweredRequestError extends ProviderError {
  constructor(message: string) {
    super(FailureCode.PROVIDER_UNAVAILABLE, message, true);
  }
}

/**
 * A refusal of a request longer than the model reads at once (PROVIDER_INPUT_TOO_LONG): what
 * to do about it first, then what the provider said, whose advice (llama.cpp's "try
 * increasing it") is for its operator, not for whoever sent the input.
 */
export function inputTooLongError(what: string, providerMessage: string): ProviderError {
  return new ProviderError(
    'PROVIDER_INPUT_TOO_LONG',
    `${what}: the input is longer than the model reads at once; shorten it (the provider said: ${providerMessage})`,
    false,
  );
}

/** Tokens a model call was billed for, as the provider reported them. */
export interface TokenUsage {
  inputTokens: number;
  /** The answer's tokens, thinking included (billed alike). */
  outputTokens: number;
}

export interface AnalysisBrief {
  title: string;
  prompt: string | null;
  style: string | null;
  /** Length of the vlog asked for: a plan shares it out among the media. */
  durationSeconds: number;
}

export interface AnalysisRequest {
  jobId: string;
  media: MediaRef[];
  brief: AnalysisBrief;
  openMedia(ref: MediaRef): Promise<Readable>;
  /** Called while long steps (uploads, file processing) are under way. */
  progress(detail: string): void;
  /** Receives the tokens the call was billed for, when the provider reports them. */
  onUsage?: (usage: TokenUsage) => void;
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
  /** Where the video is written: gs://bucket/prefix/ (Veo) or media:prefix/ (media storage). */
  outputUri: string;
  /** What a generator that composes the uploads itself needs; a prompt-driven one ignores them. */
  title: string;
  media: MediaRef[];
  analysis: VlogAnalysis | null;
}

export interface GenerationContext {
  signal: AbortSignal;
  openMedia(ref: MediaRef): Promise<Readable>;
  /** Called as a render advances (heartbeated, so it shows in the Web UI). */
  progress(progress: RenderProgress): void;
}

export type VideoGenerationStatus =
  | { state: 'running' }
  | { state: 'succeeded'; videoUri: string; mimeType: string }
  | { state: 'filtered'; reasons: string[] }
  | { state: 'failed'; message: string };

/**
 * A long-running video generation: started once, then checked until it ends. A remote one
 * (Veo) returns from `start` as soon as the provider accepted the request; a local one renders
 * inside `start`, and its `check` only confirms the output is there.
 */
export interface VideoGenerator {
  readonly name: string;
  /**
   * The provider works on, and bills, once `start` has sent the request (Veo): a start under way
   * when its worker shuts down is waited for rather than abandoned, so the operation it made is
   * recorded instead of submitted again by the retry. Unset: `start` does the work itself (a
   * local render), and a shutdown stops it.
   */
  readonly remote?: boolean;
  start(request: VideoGenerationRequest, context: GenerationContext): Promise<string>;
  /** One look at the generation; `signal` aborts the look (a cancelled or draining check). */
  check(operationName: string, context: { signal: AbortSignal }): Promise<VideoGenerationStatus>;
}

export interface TextGenerationRequest {
  /** What is being generated, for messages: "sub-goal generation". */
  what: string;
  systemInstruction: string;
  prompt: string;
  /** JSON Schema the answer must follow (derived from the zod schema that checks it). */
  responseJsonSchema: unknown;
  /**
   * The longest answer worth reading: a streaming provider stops reading (and the model) past
   * it; whatever is returned longer than this is rejected by the caller.
   */
  maxAnswerChars: number;
  /** Receives the answer's text piece by piece as a streaming provider reads it. */
  onText?: (piece: string) => void;
  /** Set after a rejected answer: it goes back to the model as its own turn, then the instruction. */
  repair?: { answer: string; instruction: string } | null;
  /**
   * Receives the tokens the call was billed for, when the provider reports them: once the
   * answer ended, or as far as it was read when reading stopped or failed.
   */
  onUsage?: (usage: TokenUsage) => void;
  signal: AbortSignal;
}

/** An LLM answering with JSON text (validated by the caller). */
export interface TextGenerator {
  readonly name: string;
  /** Who serves the model: `gemini`, `openai` (any compatible endpoint) or `embedded`. */
  readonly provider: string;
  readonly model: string;
  /** What a reader of its answers should know about the model (a tiny one answers poorly). */
  readonly notice: string | null;
  generateJson(request: TextGenerationRequest): Promise<string>;
}
