import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { providerRetrySettings, type Config } from '../../config.js';
import type { Db } from '../../db/database.js';
import type { JobRow } from '../../db/schema.js';
import {
  aiGenerationTypes,
  aiItemNames,
  aiJobStatuses,
  type AiGenerationType,
  type AiJobRequest,
} from '../../jobs/ai-generation.js';
import { aiJobRequestSchema } from '../../jobs/ai-generation-schemas.js';
import type { AiJobInput, JobProgress } from '../../jobs/messages.js';
import { isTerminalStatus } from '../../jobs/model.js';
import { findOwnedJob, typicalDurationMs } from '../../jobs/repository.js';
import { missingAiProviderSettings } from '../../providers/index.js';
import { ApiError, errorBodySchema } from '../errors.js';
import { jobActionRoutes, type JobActions } from '../services/job-actions.js';
import type { JobEventFeed } from '../services/job-event-feed.js';
import { jobEventRoutes } from './job-event-stream.js';
import { requestFingerprint, type StartJob } from '../services/job-starter.js';
import { jobViewSchema, liveView, liveViewSchema, toJobView } from '../services/job-views.js';
import { commonErrors, idempotencyKeySchema, idParams } from '../schemas/common.js';
import { listJobsPage, listQuerySchema } from './jobs.js';

/** Used for estimates until jobs of a type have completed. */
const defaultDurationMs = 20_000;
/** How long a type's typical duration is reused before it is queried again. */
const estimateTtlMs = 30_000;

const aiItemViewSchema = z.object({
  title: z.string(),
  description: z.string(),
  estimatedMinutes: z.number().optional(),
});

const aiJobViewSchema = jobViewSchema
  .omit({ result: true })
  .extend({
    type: z.enum(aiGenerationTypes),
    status: z.enum(aiJobStatuses),
    result: z
      .object({ items: z.array(aiItemViewSchema), model: z.string() })
      .nullable()
      .describe('The generated items, once completed'),
    retryCount: z.number().int().describe('Retries so far (attempt - 1)'),
    estimatedCompletionAt: z.iso
      .datetime()
      .nullable()
      .describe('When a job in flight is expected to finish, from recent jobs of its type'),
    live: liveViewSchema,
  })
  .describe('AiJob');

type AiJobView = z.infer<typeof aiJobViewSchema>;

export interface AiJobRouteDependencies {
  config: Config;
  db: Db;
  startJob: StartJob;
  actions: JobActions;
  events: JobEventFeed;
}

/** AI generation jobs: sub-goals for a goal, actions for a sub-goal, tasks for an action. */
export function aiJobRoutes(deps: AiJobRouteDependencies): FastifyPluginAsyncZod {
  const { config, db, startJob, actions } = deps;

  // Estimates come from recent completions of the type; polled on every GET, the median is
  // recomputed at most every estimateTtlMs rather than queried per request.
  const typicalDurations = new Map<string, { at: number; ms: Promise<number> }>();
  function estimatedCompletion(row: JobRow): Promise<string | null> {
    if (isTerminalStatus(row.status)) return Promise.resolve(null);
    let cached = typicalDurations.get(row.type);
    if (!cached || Date.now() - cached.at > estimateTtlMs) {
      const ms = typicalDurationMs(db, row.type).then((median) => median ?? defaultDurationMs);
      cached = { at: Date.now(), ms };
      typicalDurations.set(row.type, cached);
      // A failed query is not cached: the next request asks again.
      ms.catch(() => typicalDurations.delete(row.type));
    }
    return cached.ms.then((ms) => new Date(row.created_at.getTime() + ms).toISOString());
  }

  async function toAiJobView(row: JobRow, live?: JobProgress | null): Promise<AiJobView> {
    const view = toJobView(row);
    return {
      ...view,
      links: { self: `/api/ai/jobs/${encodeURIComponent(row.id)}` },
      type: row.type as AiGenerationType,
      status: row.status as AiJobView['status'],
      result: row.status === 'completed' ? (view.result as AiJobView['result']) : null,
      retryCount: row.attempt - 1,
      estimatedCompletionAt: await estimatedCompletion(row),
      ...liveView(live),
    };
  }

  async function ownedAiJob(userId: string, id: string): Promise<JobRow> {
    const row = await findOwnedJob(db, userId, id);
    if (!row || row.kind !== 'ai') throw new ApiError('NOT_FOUND', `No AI job with id ${id}`);
    return row;
  }

  return async (app) => {
    app.post(
      '/ai/jobs',
      {
        schema: {
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
            409: errorBodySchema,
            413: errorBodySchema,
            415: errorBodySchema,
            422: errorBodySchema,
            503: errorBodySchema,
          },
        },
      },
      async (request, reply) => {
        const missing = missingAiProviderSettings(config);
        if (missing.length > 0) {
          throw new ApiError(
            'AI_PROVIDER_NOT_CONFIGURED',
            `AI jobs are unavailable: no language model is configured (set ${missing.join(', ')})`,
            { missing },
          );
        }
        const body: AiJobRequest = request.body;
        const idempotencyKey = request.headers['idempotency-key'] ?? null;
        const started = await startJob<AiJobRequest['input']>({
          kind: 'ai',
          type: body.type,
          workflowType: 'aiGenerationJob',
          workflowArgs: (job): [AiJobInput] => [
            {
              job,
              attempt: 1,
              seq: 0,
              settings: {
                timeoutMs: config.AI_JOB_TIMEOUT_MS,
                heartbeatTimeoutMs: config.AI_JOB_HEARTBEAT_TIMEOUT_MS,
                retryWindowMs: config.JOB_RETRY_WINDOW_MS,
                providerRetry: providerRetrySettings(config),
              },
            },
          ],
          ownerId: request.userId,
          input: body.input,
          idempotencyKey,
          requestFingerprint: idempotencyKey ? requestFingerprint(body) : null,
          summary: `${aiItemNames[body.type]} for "${body.input.goal.slice(0, 80)}"`,
          memo: { goal: body.input.goal },
        });
        const view = await toAiJobView(started.row);
        return reply
          .code(202)
          .header('location', view.links.self)
          .header('idempotent-replayed', String(started.replayed))
          .send(view);
      },
    );

    app.get(
      '/ai/jobs/:id',
      {
        schema: {
          tags: ['ai'],
          summary: "An AI job's status, progress and, when completed, its items",
          params: idParams,
          querystring: z.strictObject({
            live: z
              .enum(['true', 'false'])
              .default('false')
              .describe('Also ask the workflow for its live progress (for operators, debugging)'),
          }),
          response: { 200: aiJobViewSchema, ...commonErrors },
        },
      },
      async (request) => {
        request.log = request.log.child({ jobId: request.params.id });
        const row = await ownedAiJob(request.userId, request.params.id);
        const live =
          request.query.live === 'true' ? await actions.live(row, request.log) : undefined;
        return toAiJobView(row, live);
      },
    );

    app.get(
      '/ai/jobs',
      {
        schema: {
          tags: ['ai'],
          summary: "The caller's AI jobs, newest first",
          querystring: listQuerySchema.omit({ kind: true }).extend({
            type: z.enum(aiGenerationTypes).optional(),
            status: z.enum(aiJobStatuses).optional(),
          }),
          response: {
            200: z.object({ jobs: z.array(aiJobViewSchema), nextCursor: z.string().nullable() }),
            ...commonErrors,
          },
        },
      },
      async (request) => {
        const page = await listJobsPage(db, request.userId, { ...request.query, kind: 'ai' });
        return {
          jobs: await Promise.all(page.rows.map((row) => toAiJobView(row))),
          nextCursor: page.nextCursor,
        };
      },
    );

    await app.register(
      jobActionRoutes({
        path: '/ai/jobs',
        tag: 'ai',
        noun: 'AI job',
        findOwned: ownedAiJob,
        actions,
        docs: {
          cancel: {
            summary: 'Cancel a pending or processing AI job',
            description:
              'The running model call is abandoned and the job ends `cancelled` with the reason.',
          },
          retry: {
            summary: 'Retry a failed or timed-out AI job (at most 3 times)',
            description: 'The job keeps its id; its retry count goes up by one.',
          },
        },
      }),
    );
    await app.register(
      jobEventRoutes({
        path: '/ai/jobs',
        tag: 'ai',
        noun: 'AI job',
        findOwned: ownedAiJob,
        view: (row) => toAiJobView(row),
        feed: deps.events,
      }),
    );
  };
}
