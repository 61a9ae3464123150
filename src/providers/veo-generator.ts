import { GenerateVideosOperation, type GoogleGenAI } from '@google/genai';
import { classifyGoogleError } from './google-errors.js';
import type {
  GenerationContext,
  VideoGenerationRequest,
  VideoGenerationStatus,
  VideoGenerator,
} from './types.js';

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

  async check(operationName: string): Promise<VideoGenerationStatus> {
    // Re-attaching from a stored name needs a real operation instance, not a plain object.
    const operation = new GenerateVideosOperation();
    operation.name = operationName;
    const current = await this.ai.operations
      .getVideosOperation({ operation })
      .catch((error: unknown) => {
        throw classifyGoogleError(error, 'Checking the Veo generation');
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
