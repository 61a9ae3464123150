import { proxyActivities, sleep } from '@temporalio/workflow';
import { FailureCode } from '../../jobs/failures.js';
import { isThrottled, throttlePhase } from '../../jobs/provider-throttle.js';
import { activityOptions, runRetryableJob } from '../../workflows/job-lifecycle.js';
import type { AiActivities } from './activities.js';
import {
  aiItemNames,
  aiKind,
  type AiJobInput,
  type AiJobRequest,
  type AiJobResult,
} from './declaration.js';

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
    ...activityOptions(
      aiKind.activityPolicies.generation,
      settings.providerRetry,
      settings.taskQueues,
    ),
    startToCloseTimeout: settings.timeoutMs,
    heartbeatTimeout: settings.heartbeatTimeoutMs,
  };
  const generation = proxyActivities<AiActivities>(options);
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
    // Held back by the provider-quota governor (a 429), the call is made again after the wait
    // the provider named, without using up an activity attempt.
    body: async (tracker, deadline) => {
      for (let waited = false; ; waited = true) {
        if (waited) await tracker.update({ phase: `generating ${items}` });
        const answer = await generation.generateAiItems.executeWithOptions(
          {
            ...options,
            summary: `${items} for "${request.input.goal.slice(0, 80)}"`,
            scheduleToCloseTimeout: deadline.paidCallTimeoutMs,
          },
          [{ jobId: job.id, request }],
        );
        if (!isThrottled(answer)) return answer;
        await tracker.update({ phase: throttlePhase('text generation', answer) });
        await sleep(answer.retryAfterMs);
      }
    },
    nextAttempt: (next) => ({ ...input, ...next }),
  });
}
