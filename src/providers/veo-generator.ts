import { ApiError, GenerateVideosOperation, type GoogleGenAI } from '@google/genai';
import { classifyGoogleError } from './google-errors.js';
import { withTimeLimit } from './time-limit.js';
import {
  UnansweredRequestError,
  type GenerationContext,
  type VideoGenerationRequest,
  type VideoGenerationStatus,
  type VideoGenerator,
} from './types.js';

/** Why a connection never opened (fetch's cause): no request went out on it. */
const connectionNeverOpened = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Whether a failed request was never sent: its connection, or a cause of it, never opened. */
function neverSent(error: unknown): boolean {
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    const { code } = cause as { code?: unknown };
    if (typeof code === 'string' && connectionNeverOpened.has(code)) return true;
  }
  return false;
}

/** Veo on Vertex AI: a long-running operation that writes the video to Cloud Storage. */
export class VeoVideoGenerator implements VideoGenerator {
  readonly name: string;
  readonly remote = true;

  constructor(
    private readonly ai: GoogleGenAI,
    private readonly model: string,
    /** One request's time limit (PROVIDER_REQUEST_TIMEOUT_MS). */
    private readonly requestTimeoutMs: number,
  ) {
    this.name = `veo:${model}`;
  }

  async start(request: VideoGenerationRequest, context: GenerationContext): Promise<string> {
    const what = 'Starting the Veo generation';
    const operation = await withTimeLimit(context.signal, this.requestTimeoutMs, what, (signal) =>
      this.ai.models.generateVideos({
        model: this.model,
        source: { prompt: request.prompt },
        config: {
          outputGcsUri: request.outputUri,
          numberOfVideos: 1,
          durationSeconds: request.durationSeconds,
          aspectRatio: request.aspectRatio,
          abortSignal: signal,
        },
      }),
    ).catch((error: unknown) => {
      const classified = classifyGoogleError(error, what);
      // An error Google answered, or a connection that never opened, means it took nothing; any
      // other failure (a timeout, a connection broken mid-request) left the request's fate open.
      throw error instanceof ApiError || context.signal.aborted || neverSent(error)
        ? classified
        : new UnansweredRequestError(classified.message);
    });
    if (!operation.name)
      throw classifyGoogleError(new Error('Veo returned no operation name'), what);
    return operation.name;
  }

  async check(
    operationName: string,
    context: { signal: AbortSignal },
  ): Promise<VideoGenerationStatus> {
    // Re-attaching from a stored name needs a real operation instance, not a plain object.
    const operation = new GenerateVideosOperation();
    operation.name = operationName;
    // @google/genai 2.x drops `abortSignal` on Vertex's status call: withTimeLimit gives the look
    // up on the abort instead, its request left to end by itself (a draining worker must not wait).
    const what = 'Checking the Veo generation';
    const current = await withTimeLimit(context.signal, this.requestTimeoutMs, what, (signal) =>
      this.ai.operations.getVideosOperation({ operation, config: { abortSignal: signal } }),
    ).catch((error: unknown) => {
      throw classifyGoogleError(error, what);
    });
    if (!current.done) return { state: 'running' };
    if (current.error) {
      const message: unknown = current.error['message'];
      return {
        state: 'failed',
        message: typeof message === 'string' ? message : JSON.stringify(current.error),
      };
    }
    const video = current.response?.generatedVideos?.[0]?.video;
    if (video?.uri)
      return { state: 'succeeded', videoUri: video.uri, mimeType: video.mimeType ?? 'video/mp4' };
    const reasons = current.response?.raiMediaFilteredReasons ?? [];
    return { state: 'filtered', reasons: reasons.length > 0 ? reasons : ['no video was returned'] };
  }
}
