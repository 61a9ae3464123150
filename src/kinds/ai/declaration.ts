import {
  aiGenerationTypes,
  aiItemNames,
  type AiGenerationType,
  type AiJobRequest,
} from '../../jobs/ai-generation.js';
import type { JobKindDeclaration } from '../declaration.js';

/**
 * An AI generation (sub-goals for a goal, actions for a sub-goal, tasks for an action): one
 * validated model call. Its workflow is `src/workflows/ai-generation.ts`, its activity
 * `src/activities/ai-generation.ts`, its routes `src/api/routes/ai-jobs.ts`.
 */
export const aiKind = {
  kind: 'ai',
  workflowType: 'aiGenerationJob',
  jobTypes: aiGenerationTypes,
  noun: 'AI job',
  stages: [{ status: 'processing', progress: 50 }],
  taskQueues: ['jobs'],
  summary: ({ type, input }) => `${aiItemNames[type]} for "${input.goal.slice(0, 80)}"`,
} as const satisfies JobKindDeclaration<AiGenerationType, AiJobRequest['input']>;
