/**
 * AI generation jobs: the types, their names and the prompt. Pure data and functions only, so
 * workflow code may import it; the zod schemas live in `ai-generation-schemas.ts`.
 */
import type { AiItem, AiJobRequest } from './ai-generation-schemas.js';
import type { JobStatus } from './model.js';

export type { AiItem, AiJobRequest, AiGenerationInput } from './ai-generation-schemas.js';

export const aiGenerationTypes = [
  'SUBGOAL_GENERATION',
  'ACTION_GENERATION',
  'TASK_GENERATION',
] as const;
export type AiGenerationType = (typeof aiGenerationTypes)[number];

export const aiJobStatuses = [
  'pending',
  'processing',
  'completed',
  'failed',
  'timeout',
  'cancelled',
] as const satisfies readonly JobStatus[];

/** A completed AI job's result, as stored and served. */
export interface AiJobResult {
  items: AiItem[];
  /** The model that generated the items. */
  model: string;
}

/** What each type generates, for prompts, summaries and messages. */
export const aiItemNames: Record<AiGenerationType, string> = {
  SUBGOAL_GENERATION: 'sub-goals',
  ACTION_GENERATION: 'actions',
  TASK_GENERATION: 'tasks',
};

/** The instruction and the request text the model gets for a job. */
export function aiPrompt(request: AiJobRequest): { systemInstruction: string; prompt: string } {
  const { input } = request;
  const items = aiItemNames[request.type];
  const lines = [`Goal: ${input.goal}`];
  if ('subGoal' in input) lines.push(`Sub-goal: ${input.subGoal}`);
  if ('action' in input) lines.push(`Action: ${input.action}`);
  if (input.context) lines.push(`Context: ${input.context}`);
  lines.push(`Write at most ${input.maxItems} ${items}, in the language "${input.language}".`);
  return {
    systemInstruction: [
      'You help people reach their goals by breaking them down: a goal into sub-goals, a sub-goal',
      'into actions, an action into concrete tasks. Items are specific, ordered, and do not overlap.',
      'Answer with JSON only, following the schema.',
    ].join(' '),
    prompt: lines.join('\n'),
  };
}
