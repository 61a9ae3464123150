// The vlog's first stage: a model looks at the uploads and describes what the video shows.
import { Context } from '@temporalio/activity';
import type { MediaRef } from '../../../jobs/contracts.js';
import type { VlogAnalysis } from '../declaration.js';
import {
  modelOf,
  providerOf,
  vlogAnalysisSchema,
  type AnalysisBrief,
} from '../../../providers/types.js';
import { reportHeartbeat } from '../../../activities/heartbeat.js';
import { callUnderCooldown } from '../../../activities/provider-quota.js';
import type { ProviderThrottle } from '../../../jobs/provider-throttle.js';
import {
  askUntilValid,
  readJsonAnswer,
  required,
  type Reading,
} from '../../../activities/provider-calls.js';
import { chargedModelCall } from '../../../activities/cost-ledger.js';
import type { VlogActivityDependencies } from './dependencies.js';

export interface AnalyzeMediaInput {
  jobId: string;
  media: MediaRef[];
  brief: AnalysisBrief;
}

/** A model's answer as a valid analysis of this many media, or why it is unusable. */
function readAnalysis(json: unknown, mediaCount: number): Reading<VlogAnalysis> {
  const parsed = vlogAnalysisSchema.safeParse(json);
  if (!parsed.success) {
    return {
      problem: parsed.error.issues
        .map((issue) => `${issue.path.join('.')}: ${issue.message}`)
        .join('; '),
    };
  }
  const indexes = [
    ...parsed.data.scenes.map((scene) => ({ what: 'a scene', index: scene.mediaIndex })),
    ...(parsed.data.plan?.items ?? []).map((item) => ({
      what: 'a plan item',
      index: item.mediaIndex,
    })),
    ...(parsed.data.media ?? []).map((facts) => ({ what: 'media facts', index: facts.mediaIndex })),
  ];
  const outOfRange = indexes.find(({ index }) => index >= mediaCount);
  return outOfRange
    ? {
        problem: `${outOfRange.what} refers to media ${outOfRange.index}, but there are ${mediaCount}`,
      }
    : { value: parsed.data };
}

export function createAnalyzeActivities({
  db,
  mediaStorage,
  providers,
  chargeHandoff,
}: Pick<VlogActivityDependencies, 'db' | 'mediaStorage' | 'providers' | 'chargeHandoff'>) {
  return {
    /**
     * Gemini looks at the media; its JSON is validated, and the model is asked again if it is
     * off. Under the provider-quota governor's cool-down: a 429 (this job's or anyone's) is a
     * throttle the workflow waits out, never a failed attempt. An analysis an earlier attempt of
     * this activity was charged for (its result lost before it reached Temporal) is used again,
     * not asked for (chargedModelCall).
     */
    async analyzeMedia(input: AnalyzeMediaInput): Promise<VlogAnalysis | ProviderThrottle> {
      const analyzer = required(providers.analyzer, 'Media analysis');
      const { quotas } = providers;
      const context = Context.current();
      const analyze = () =>
        askUntilValid({
          jobId: input.jobId,
          what: 'media analysis',
          provider: providerOf(analyzer.name),
          ask: (round) =>
            chargedModelCall(
              { db, prices: providers.prices, handoff: chargeHandoff },
              {
                jobId: input.jobId,
                kind: 'analysis',
                provider: providerOf(analyzer.name),
                model: modelOf(analyzer.name),
                round,
              },
              (onUsage) =>
                analyzer.analyze({
                  jobId: input.jobId,
                  media: input.media,
                  brief: input.brief,
                  openMedia: (ref) => mediaStorage.getStream(ref.key),
                  progress: (detail) => reportHeartbeat({ detail, round }),
                  onUsage,
                  signal: context.cancellationSignal,
                }),
            ),
          read: (text) => readJsonAnswer(text, (json) => readAnalysis(json, input.media.length)),
        });
      return quotas.analysisProvider === null
        ? analyze()
        : callUnderCooldown(
            { db, quotas, provider: quotas.analysisProvider, jobId: input.jobId },
            analyze,
          );
    },
  };
}
