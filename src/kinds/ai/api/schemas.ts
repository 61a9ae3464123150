import { z } from 'zod';
import type { JobStatus } from '../../../jobs/model.js';
import { aiGenerationTypes } from '../declaration.js';
import { aiJobRequestSchema } from '../generation-schemas.js';
import { errorBodySchema } from '../../../api/errors.js';
import {
  commonErrors,
  idempotencyKeySchema,
  idParams,
  liveQuerySchema,
} from '../../../api/schemas/common.js';
import { jobViewSchema, listQuerySchema, liveViewSchema } from '../../../api/schemas/jobs.js';

export const aiJobStatuses = [
  'pending',
  'queued',
  'processing',
  'completed',
  'failed',
  'timeout',
  'cancelled',
] as const satisfies readonly JobStatus[];

const aiItemViewSchema = z.object({
  title: z.string(),
  description: z.string(),
  estimatedMinutes: z.number().optional(),
});

export const aiJobViewSchema = jobViewSchema
  .omit({ result: true })
  .extend({
    type: z.enum(aiGenerationTypes),
    status: z.enum(aiJobStatuses),
    result: z
      .object({
        items: z.array(aiItemViewSchema),
        model: z.string(),
        provider: z
          .string()
          .optional()
          .describe(
            'Who served the model: gemini, openai (an OpenAI-compatible endpoint), embedded',
          ),
        notice: z
          .string()
          .nullable()
          .optional()
          .describe('What to know about the model: the embedded one is tiny and answers poorly'),
      })
      .nullable()
      .describe('The generated items, once completed'),
    retryCount: z.number().int().describe('Retries so far (attempt - 1)'),
    estimatedCompletionAt: z.iso
      .datetime()
      .nullable()
      .describe(
        'When a job in flight is expected to finish: its start (or acceptance) plus the median run time of recent jobs of its type; null once ended, and while queued behind its concurrency key',
      ),
    live: liveViewSchema,
  })
  .describe('AiJob');

export type AiJobView = z.infer<typeof aiJobViewSchema>;

export const startAiJobSchema = {
  operationId: 'startAiJob',
  tags: ['ai'],
  summary: 'Start an AI generation job',
  description:
    'SUBGOAL_GENERATION breaks a goal into sub-goals, ACTION_GENERATION a sub-goal into actions, ' +
    'TASK_GENERATION an action into tasks. Answers 202 at once; poll the job or its links. ' +
    'Send an Idempotency-Key to make the request safe to repeat.',
  headers: z.object({ 'idempotency-key': idempotencyKeySchema }).passthrough(),
  body: aiJobRequestSchema,
  response: {
    202: aiJobViewSchema,
    ...commonErrors,
    /** BUDGET_EXCEEDED: the estimate is more than what is left of a budget. */
    402: errorBodySchema,
    409: errorBodySchema,
    413: errorBodySchema,
    415: errorBodySchema,
    422: errorBodySchema,
    503: errorBodySchema,
  },
};

export const getAiJobSchema = {
  operationId: 'getAiJob',
  tags: ['ai'],
  summary: "An AI job's status, progress and, when completed, its items",
  params: idParams,
  querystring: liveQuerySchema(
    'Also ask the workflow for its live progress (for operators, debugging)',
  ),
  response: { 200: aiJobViewSchema, ...commonErrors },
};

export const listAiJobsSchema = {
  operationId: 'listAiJobs',
  tags: ['ai'],
  summary: "The caller's AI jobs, newest first",
  querystring: listQuerySchema({
    type: z.enum(aiGenerationTypes).optional(),
    status: z.enum(aiJobStatuses).optional(),
  }),
  response: {
    200: z.object({ jobs: z.array(aiJobViewSchema), nextCursor: z.string().nullable() }),
    ...commonErrors,
  },
};

export const aiJobActionDocs = {
  cancel: {
    operationId: 'cancelAiJob',
    summary: 'Cancel a pending or processing AI job',
    description:
      'The running model call is abandoned and the job ends `cancelled` with the reason.',
  },
  retry: {
    operationId: 'retryAiJob',
    summary: 'Retry a failed or timed-out AI job (at most 3 times)',
    description: 'The job keeps its id; its retry count goes up by one.',
  },
};
