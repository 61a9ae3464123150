/**
 * The zod schemas of AI generation jobs: the single source of the API's validation, the
 * OpenAPI document, the JSON schema the model is constrained to, and the check of its answer.
 */
import { z } from 'zod';
import { concurrencyKeySchema, writtenText } from '../../api/schemas/common.js';
import { aiGenerationTypes, type AiGenerationType } from './declaration.js';

const shared = {
  context: writtenText(4_000)
    .optional()
    .describe('Anything the model should know: who the goal is for, constraints, deadlines'),
  maxItems: z.int().min(1).max(10).default(5).describe('Most items to generate'),
  language: z
    .string()
    .regex(/^[a-z]{2}(-[A-Z]{2})?$/, { error: 'must be a language tag such as en or pt-BR' })
    .default('en')
    .describe('Language of the generated items'),
};

const subGoalInputSchema = z
  .strictObject({ goal: writtenText(500).describe('The goal to break into sub-goals'), ...shared })
  .describe('SUBGOAL_GENERATION input');
const actionInputSchema = z
  .strictObject({
    goal: writtenText(500),
    subGoal: writtenText(500).describe('The sub-goal to turn into actions'),
    ...shared,
  })
  .describe('ACTION_GENERATION input');
const taskInputSchema = z
  .strictObject({
    goal: writtenText(500),
    subGoal: writtenText(500),
    action: writtenText(500).describe('The action to break into tasks'),
    ...shared,
  })
  .describe('TASK_GENERATION input');

/** The body of `POST /api/ai/jobs`: the type decides the input's schema. */
export const aiJobRequestSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({
      type: z.literal('SUBGOAL_GENERATION'),
      input: subGoalInputSchema,
      concurrencyKey: concurrencyKeySchema,
    }),
    z.strictObject({
      type: z.literal('ACTION_GENERATION'),
      input: actionInputSchema,
      concurrencyKey: concurrencyKeySchema,
    }),
    z.strictObject({
      type: z.literal('TASK_GENERATION'),
      input: taskInputSchema,
      concurrencyKey: concurrencyKeySchema,
    }),
  ],
  {
    // A body that is no object, or no `type` at all, is told so: not that its type is wrong.
    // The issue's input is the whole body: its `type` is the discriminator given, if any.
    error: (issue) =>
      issue.code !== 'invalid_union'
        ? 'expected an object'
        : (issue.input as { type?: unknown } | undefined)?.type === undefined
          ? 'required'
          : `must be one of ${aiGenerationTypes.join(', ')}`,
  },
);
export type AiJobRequest = z.infer<typeof aiJobRequestSchema>;
export type AiGenerationInput = AiJobRequest['input'];

const itemSchema = z.object({
  title: writtenText(200).describe('A short imperative title'),
  description: writtenText(1_000).describe('One or two sentences on what it involves'),
});
const taskItemSchema = itemSchema.extend({
  estimatedMinutes: z.int().min(1).max(480).describe('How long the task takes, in minutes'),
});

const itemSchemas = {
  SUBGOAL_GENERATION: itemSchema,
  ACTION_GENERATION: itemSchema,
  TASK_GENERATION: taskItemSchema,
} as const satisfies Record<AiGenerationType, z.ZodType>;

/**
 * The longest answer read from the model, in characters: ten items at their longest (12 000
 * characters) with room for indentation and escapes. A model that goes on past it is stopped
 * and asked again.
 */
export const maxAiAnswerChars = 32_768;

/**
 * What the model must answer to a request: its type's items, at most as many as it asks for.
 * The JSON schema the model is held to comes from this, so a server that turns the schema into
 * a grammar (llama.cpp) cannot write one item too many.
 */
export function aiAnswerSchema(request: AiJobRequest) {
  return z.object({
    items: z.array(itemSchemas[request.type]).min(1).max(request.input.maxItems),
  });
}

export type AiItem = z.infer<typeof itemSchema> & { estimatedMinutes?: number };

/** The model's answer as the job's items, or why it is unusable. */
export function readAiAnswer(
  request: AiJobRequest,
  json: unknown,
): { value: AiItem[] } | { problem: string } {
  const parsed = aiAnswerSchema(request).safeParse(json);
  if (!parsed.success) {
    return {
      problem: parsed.error.issues
        .map((issue) => `${issue.path.join('.')}: ${issue.message}`)
        .join('; '),
    };
  }
  return { value: parsed.data.items };
}
