import { GenerateVideosOperation, type GoogleGenAI } from '@google/genai';
import { classifyGoogleError } from './google-errors.js';
import type {
  GenerationContext,
  VideoGenerationRequest,
  VideoGenerationStatus,
  VideoGenerator,
} from './types.js';

/** Settles as `work` does, or rejects with the signal's reason as soon as it aborts. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Veo on Vertex AI: a long-running operation that writes the video to Cloud Storage. */
export class VeoVideoGenerator implements VideoGenerator {
  readonly name: string;

  constructor(
    private readonly ai: GoogleGenAI,
    private readonly model: string,
  ) {
    this.name = `veo:${model}`;
  }

  async start(request: VideoGenerationRequest, { signal }: GenerationContext): Promise<string> {
    const operation = await this.ai.models
      .generateVideos({
        model: this.model,
        source: { prompt: request.prompt },
        config: {
          outputGcsUri: request.outputUri,
          numberOfVideos: 1,
          durationSeconds: request.durationSeconds,
          aspectRatio: request.aspectRatio,
          abortSignal: signal,
        },
      })
      .catch((error: unknown) => {
        throw classifyGoogleError(error, 'Starting the Veo generation');
      });
    if (!operation.name)
      throw classifyGoogleError(
        new Error('Veo returned no operation name'),
        'Starting the Veo generation',
      );
    return operation.name;
  }

  async check(
    operationName: string,
    { signal }: { signal: AbortSignal },
  ): Promise<VideoGenerationStatus> {
    // Re-attaching from a stored name needs a real operation instance, not a plain object.
    const operation = new GenerateVideosOperation();
    operation.name = operationName;
    // @google/genai 2.x drops `abortSignal` on Vertex's status call: the look is given up on
    // the abort instead, its request left to end by itself (a draining worker must not wait).
    const current = await untilAborted(
      this.ai.operations
        .getVideosOperation({ operation, config: { abortSignal: signal } })
        .catch((error: unknown) => {
          throw classifyGoogleError(error, 'Checking the Veo generation');
        }),
      signal,
    );
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
