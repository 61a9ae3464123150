import { z } from 'zod';
import type { Config } from '../../../config.js';
import { jobRunSettings } from '../../registration.js';
import type { Db } from '../../../db/database.js';
import type { JobRow } from '../../../db/schema.js';
import { findOwnedJob, typicalDurationMs } from '../../../db/jobs.js';
import type { JobProgress } from '../../../jobs/contracts.js';
import { isTerminalStatus } from '../../../jobs/model.js';
import { aiJobsUnavailable, costedModels } from '../../../providers/index.js';
import { estimateAiJob } from '../../../costs/estimates.js';
import { PriceBook } from '../../../costs/prices.js';
import { aiPrompt } from '../activities.js';
import { aiAnswerSchema, maxAiAnswerChars } from '../generation-schemas.js';
import { ApiError, jobNotFound } from '../../../api/errors.js';
import type { ListQuery } from '../../../api/schemas/jobs.js';
import { listJobsPage } from '../../../api/services/job-list.js';
import { requestFingerprint, type StartJob } from '../../../api/services/job-starter.js';
import { liveView, toJobView } from '../../../api/services/job-views.js';
import {
  aiKind,
  type AiGenerationType,
  type AiJobInput,
  type AiJobRequest,
} from '../declaration.js';
import type { AiJobView } from './schemas.js';

/** Used for estimates until jobs of a type have completed. */
const defaultDurationMs = 20_000;
/** How long a type's typical duration is reused before it is queried again. */
const estimateTtlMs = 30_000;

export interface AiJobServiceDependencies {
  config: Config;
  db: Db;
  startJob: StartJob;
}

/** AI generation jobs: sub-goals for a goal, actions for a sub-goal, tasks for an action. */
export function createAiJobService({ config, db, startJob }: AiJobServiceDependencies) {
  const prices = new PriceBook(config.COST_PRICES);
  const model = costedModels(config).ai;

  /** One answer of the longest length read, to the prompt and schema the job sends. */
  function estimatedCost(body: AiJobRequest): bigint {
    if (!model) return 0n;
    const { systemInstruction, prompt } = aiPrompt(body);
    const schema = JSON.stringify(z.toJSONSchema(aiAnswerSchema(body)));
    return estimateAiJob(prices, model, {
      promptChars: systemInstruction.length + prompt.length + schema.length,
      maxAnswerChars: maxAiAnswerChars,
    });
  }

  // Estimates come from recent completions of the type; polled on every GET, the median is
  // recomputed at most every estimateTtlMs rather than queried per request.
  const typicalDurations = new Map<string, { at: number; ms: Promise<number> }>();
  function estimatedCompletion(row: JobRow): Promise<string | null> {
    // A job queued behind its key starts once the jobs ahead of it end, which a typical run
    // does not tell: its place in line is in its phase.
    if (isTerminalStatus(row.status) || row.status === 'queued') return Promise.resolve(null);
    let cached = typicalDurations.get(row.type);
    if (!cached || Date.now() - cached.at > estimateTtlMs) {
      const ms = typicalDurationMs(db, row.type).then((median) => median ?? defaultDurationMs);
      cached = { at: Date.now(), ms };
      typicalDurations.set(row.type, cached);
      // A failed query is not cached: the next request asks again.
      ms.catch(() => typicalDurations.delete(row.type));
    }
    // From the start of the attempt under way, or while it waits, from when it was accepted or
    // retried: neither a wait in line nor a failed first attempt counts towards its run.
    const from = row.started_at ?? row.status_changed_at ?? row.created_at;
    return cached.ms.then((ms) => new Date(from.getTime() + ms).toISOString());
  }

  /** The caller's AI job, or a 404 (another user's job is not theirs to know of). */
  async function findOwned(userId: string, id: string): Promise<JobRow> {
    const row = await findOwnedJob(db, userId, id);
    if (!row || row.kind !== aiKind.kind) throw jobNotFound('AI job', id);
    return row;
  }

  async function view(row: JobRow, live?: JobProgress | null): Promise<AiJobView> {
    const job = toJobView(row);
    return {
      ...job,
      links: { self: `/api/ai/jobs/${encodeURIComponent(row.id)}` },
      type: row.type as AiGenerationType,
      status: row.status as AiJobView['status'],
      result: row.status === 'completed' ? (job.result as AiJobView['result']) : null,
      retryCount: row.attempt - 1,
      estimatedCompletionAt: await estimatedCompletion(row),
      ...liveView(live),
    };
  }

  return {
    async start(
      ownerId: string,
      body: AiJobRequest,
      idempotencyKey: string | null,
    ): Promise<{ view: AiJobView; replayed: boolean }> {
      const unavailable = aiJobsUnavailable(config);
      if (unavailable) throw new ApiError('AI_PROVIDER_NOT_CONFIGURED', unavailable);
      const started = await startJob<AiJobRequest['input']>({
        kind: aiKind,
        type: body.type,
        workflowArgs: (job): [AiJobInput] => [
          {
            job,
            attempt: 1,
            seq: 0,
            settings: {
              timeoutMs: config.AI_JOB_TIMEOUT_MS,
              heartbeatTimeoutMs: config.AI_JOB_HEARTBEAT_TIMEOUT_MS,
              retryWindowMs: config.JOB_RETRY_WINDOW_MS,
              ...jobRunSettings(config),
            },
          },
        ],
        ownerId,
        input: body.input,
        concurrencyKey: body.concurrencyKey ?? null,
        idempotencyKey,
        requestFingerprint: idempotencyKey ? requestFingerprint(body) : null,
        estimatedCost: estimatedCost(body),
        memo: { goal: body.input.goal },
      });
      return { view: await view(started.row), replayed: started.replayed };
    },

    view,

    findOwned,

    async list(userId: string, query: Omit<ListQuery, 'kind'>) {
      const page = await listJobsPage(db, userId, { ...query, kind: aiKind.kind });
      return {
        jobs: await Promise.all(page.rows.map((row) => view(row))),
        nextCursor: page.nextCursor,
      };
    },
  };
}

export type AiJobService = ReturnType<typeof createAiJobService>;
