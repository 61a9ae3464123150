// The vlog's paid stage: the video generation is submitted once per attempt, then looked at
// until it is done.
import { setTimeout as delay } from 'node:timers/promises';
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type { Db } from '../../../db/database.js';
import { findProviderOperation, recordProviderOperation } from '../../../db/provider-operations.js';
import { FailureCode } from '../../../jobs/failures.js';
import type { MediaRef } from '../../../jobs/contracts.js';
import type { GeneratedVideo, VlogAnalysis } from '../declaration.js';
import { whileHeartbeating } from '../../../activities/heartbeat.js';
import { required, toFailure } from '../../../activities/provider-calls.js';
import type { VlogActivityDependencies } from './dependencies.js';

export interface StartVideoGenerationInput {
  jobId: string;
  attempt: number;
  prompt: string;
  aspectRatio: '16:9' | '9:16';
  durationSeconds: number;
  /** What a generator that composes the uploads itself (local) renders from. */
  title: string;
  media: MediaRef[];
  analysis: VlogAnalysis | null;
}

export interface StartedGeneration {
  operationName: string;
  outputUri: string;
}

export type GenerationCheck = { done: false } | { done: true; video: GeneratedVideo };

/** The idempotency key of a paid generation: one per vlog and attempt, never random. */
export function generationKey(jobId: string, attempt: number): string {
  return `${jobId}:video-generation:${attempt}`;
}

export function createGenerateActivities({
  db,
  mediaStorage,
  providers,
}: Pick<VlogActivityDependencies, 'db' | 'mediaStorage' | 'providers'>) {
  return {
    /**
     * Submits the paid generation at most once per vlog attempt. The operation name is written
     * to the database the moment the provider accepts it (and heartbeated), so a retried
     * activity or a crashed worker re-attaches to it instead of submitting again.
     *
     * A local generator renders inside this call, heartbeating ffmpeg's progress (so a cancel
     * lands and stops ffmpeg); its operation is recorded only once the video is stored, so a
     * retry after a lost worker renders again from scratch.
     */
    async startVideoGeneration(input: StartVideoGenerationInput): Promise<StartedGeneration> {
      const generator = required(providers.videoGenerator, 'Video generation');
      const outputBase = required(providers.generationOutputUri, 'VEO_OUTPUT_GCS_URI');
      const outputUri = `${outputBase}${input.jobId}/attempt-${input.attempt}/`;
      const key = generationKey(input.jobId, input.attempt);
      const context = Context.current();

      const recorded =
        (context.info.heartbeatDetails as { operationName?: string } | undefined)?.operationName ??
        (await findProviderOperation(db, key));
      if (recorded) {
        log.info('re-attaching to the submitted generation', {
          jobId: input.jobId,
          operationName: recorded,
        });
        await recordOperation(db, key, input.jobId, recorded, context);
        return { operationName: recorded, outputUri };
      }

      let operationName: string;
      try {
        operationName = await whileHeartbeating((beat) =>
          generator.start(
            {
              prompt: input.prompt,
              aspectRatio: input.aspectRatio,
              durationSeconds: input.durationSeconds,
              outputUri,
              title: input.title,
              media: input.media,
              analysis: input.analysis,
            },
            {
              signal: context.cancellationSignal,
              openMedia: (ref) => mediaStorage.getStream(ref.key),
              progress: (progress) => beat({ render: progress }),
            },
          ),
        );
      } catch (error) {
        throw toFailure(error, context);
      }
      context.heartbeat({ operationName });
      await recordOperation(db, key, input.jobId, operationName, context);
      log.info('video generation submitted', {
        jobId: input.jobId,
        operationName,
        provider: generator.name,
      });
      return { operationName, outputUri };
    },

    /** One look at the generation; the workflow waits between looks on a durable timer. */
    async checkVideoGeneration(input: {
      jobId: string;
      operationName: string;
    }): Promise<GenerationCheck> {
      const generator = required(providers.videoGenerator, 'Video generation');
      let status;
      try {
        status = await generator.check(input.operationName);
      } catch (error) {
        throw toFailure(error, Context.current());
      }
      switch (status.state) {
        case 'running':
          return { done: false };
        case 'succeeded':
          return { done: true, video: { sourceUri: status.videoUri, mimeType: status.mimeType } };
        case 'filtered':
          throw ApplicationFailure.nonRetryable(
            `The generated video was removed by the provider's safety filters: ${status.reasons.join('; ')}`,
            FailureCode.CONTENT_FILTERED,
          );
        case 'failed':
          throw ApplicationFailure.nonRetryable(
            `The video generation failed: ${status.message}`,
            FailureCode.GENERATION_FAILED,
          );
      }
    },
  };
}

async function recordOperation(
  db: Db,
  key: string,
  jobId: string,
  operationName: string,
  context: Context,
) {
  // The provider already took the request: keep trying to write it down rather than fail and
  // let a retry pay for a second generation.
  for (let attempt = 1; ; attempt += 1) {
    try {
      await recordProviderOperation(db, { idempotencyKey: key, jobId, operationName });
      return;
    } catch (error) {
      log.warn('could not record the generation yet', {
        jobId,
        operationName,
        attempt,
        error: String(error),
      });
      context.heartbeat({ operationName });
      await delay(Math.min(30_000, 500 * 2 ** attempt), undefined, {
        signal: context.cancellationSignal,
      });
    }
  }
}
