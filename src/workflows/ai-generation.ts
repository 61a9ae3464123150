import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { aiItemNames, type AiJobRequest, type AiJobResult } from '../jobs/ai-generation.js';
import { FailureCode } from '../jobs/failures.js';
import type { AiJobInput } from '../jobs/contracts.js';
import { aiKind } from '../kinds/ai/declaration.js';
import { providerRetryPolicy, runRetryableJob } from './job-lifecycle.js';

/**
 * One AI generation (sub-goals for a goal, actions for a sub-goal, tasks for an action): the
 * LLM call is one heartbeating activity whose answer is validated before it is stored. The
 * job times out as a whole (`timeout`), and shares cancel and retry with every job kind.
 */
export async function aiGenerationJob(input: AiJobInput): Promise<AiJobResult> {
  const { job, settings } = input;
  const request = { type: job.type, input: job.input } as AiJobRequest;
  const items = aiItemNames[request.type];
  const options = {
    startToCloseTimeout: settings.timeoutMs,
    heartbeatTimeout: settings.heartbeatTimeoutMs,
    retry: providerRetryPolicy(settings.providerRetry),
  };
  const generation = proxyActivities<Activities>(options);
  const [processing] = aiKind.stages;
  return runRetryableJob({
    input,
    noun: aiKind.noun,
    start: {
      status: processing.status,
      change: { progress: processing.progress, phase: `generating ${items}` },
    },
    deadline: {
      ms: settings.timeoutMs,
      status: 'timeout',
      error: {
        code: FailureCode.JOB_TIMEOUT,
        message: `The AI job did not finish within ${settings.timeoutMs / 1000} s`,
      },
    },
    retryWindowMs: settings.retryWindowMs,
    body: () =>
      generation.generateAiItems.executeWithOptions(
        { ...options, summary: `${items} for "${request.input.goal.slice(0, 80)}"` },
        [{ jobId: job.id, request }],
      ),
    nextAttempt: (next) => ({ ...input, ...next }),
  });
}
