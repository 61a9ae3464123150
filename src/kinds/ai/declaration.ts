/**
 * An AI generation (sub-goals for a goal, actions for a sub-goal, tasks for an action): one
 * validated model call. Its types, names and policies, pure so the workflow may import them;
 * the zod schemas of its request and of the model's answer are in `generation-schemas.ts`.
 */
import type { TaskQueueNames } from '../../capacity/task-queues.js';
import type { JobRecord, ProviderRetrySettings } from '../../jobs/contracts.js';
import {
  FailureCode,
  lifecycleFailureCodes,
  providerCallFailureCodes,
} from '../../jobs/failures.js';
import type { JobKindDeclaration } from '../declaration.js';
import type { AiItem, AiJobRequest } from './generation-schemas.js';

export type { AiItem, AiJobRequest, AiGenerationInput } from './generation-schemas.js';

export const aiGenerationTypes = [
  'SUBGOAL_GENERATION',
  'ACTION_GENERATION',
  'TASK_GENERATION',
] as const;
export type AiGenerationType = (typeof aiGenerationTypes)[number];

/** What each type generates, for prompts, summaries and messages. */
export const aiItemNames: Record<AiGenerationType, string> = {
  SUBGOAL_GENERATION: 'sub-goals',
  ACTION_GENERATION: 'actions',
  TASK_GENERATION: 'tasks',
};

/** A completed AI job's result, as stored and served. */
export interface AiJobResult {
  items: AiItem[];
  /** The model that generated the items. */
  model: string;
  /** Who served it: `gemini`, `openai` (an OpenAI-compatible endpoint) or `embedded` (unset in older results). */
  provider?: string;
  /** What a reader should know about the model (the embedded one is tiny); null for others. */
  notice?: string | null;
}

/** Operational settings an AI job takes from the configuration when it is accepted. */
export interface AiJobSettings {
  /** Time an attempt may take before the job ends `timeout`. */
  timeoutMs: number;
  /** The generation activity is declared lost (and retried) after this long without a heartbeat. */
  heartbeatTimeoutMs: number;
  retryWindowMs: number;
  providerRetry: ProviderRetrySettings;
  /** The queue map (`src/capacity/task-queues.ts`); unset (runs accepted before it): the job's own queue. */
  taskQueues?: TaskQueueNames;
}

export interface AiJobInput {
  /** `job.type` is the generation type and `job.input` its input. */
  job: JobRecord<AiJobRequest['input']>;
  settings: AiJobSettings;
  attempt: number;
  seq: number;
}

export const aiKind = {
  kind: 'ai',
  workflowType: 'aiGenerationJob',
  jobTypes: aiGenerationTypes,
  noun: 'AI job',
  retries: true,
  stages: [{ status: 'processing', progress: 50 }],
  taskQueues: ['workflows', 'text-generation'],
  // Its timeouts are the job's own (AI_JOB_TIMEOUT_MS, AI_JOB_HEARTBEAT_TIMEOUT_MS), carried
  // in its settings.
  activityPolicies: { generation: { domain: 'text-generation', retry: 'provider' } },
  failureCodes: [...providerCallFailureCodes, FailureCode.JOB_TIMEOUT, ...lifecycleFailureCodes],
  summary: ({ type, input }) => `${aiItemNames[type]} for "${input.goal.slice(0, 80)}"`,
} as const satisfies JobKindDeclaration<AiGenerationType, AiJobRequest['input']>;
