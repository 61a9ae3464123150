import { z } from 'zod';
import type { JobKindDeclaration } from '../../kinds/declaration.js';
import { taskQueueDomains } from '../../capacity/task-queues.js';
import { isStageStatus, jobStatuses, type JobStatus } from '../../jobs/model.js';
import { decimalText } from '../../decimal-text.js';
import { errorBodySchema } from '../errors.js';
import { enumOf, instantText } from './common.js';

/** An amount of money: a decimal string, never a float. */
export const moneySchema = z
  .object({
    currency: z.string().describe('ISO 4217 code; USD'),
    amount: z
      .string()
      .regex(/^-?\d+\.\d{2,9}$/)
      .describe('Decimal amount, at least 2 and at most 9 decimals'),
  })
  .describe('Money');

export const waitingForWorkerSchema = z
  .object({
    queue: z
      .enum(taskQueueDomains)
      .describe('The domain of the queue map no worker serves (docs/operations.md)'),
    taskQueue: z.string().describe("Its task queue's name in Temporal"),
    message: z.string(),
  })
  .describe('WaitingForWorker');

export const jobViewSchema = z
  .object({
    id: z.string(),
    kind: z.string(),
    type: z.string(),
    status: z.string(),
    progress: z.number().int().min(0).max(100),
    phase: z.string().nullable(),
    attempt: z.number().int(),
    input: z.unknown(),
    result: z.unknown(),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
    workflowId: z.string().describe('Find the job in the Temporal Web UI by this id'),
    concurrencyKey: z
      .string()
      .nullable()
      .describe(
        'The key the job was submitted with: it runs after the earlier unfinished jobs of yours with the same key, showing `queued` and "queued: N ahead" meanwhile',
      ),
    createdAt: z.iso.datetime(),
    startedAt: z.iso.datetime().nullable(),
    completedAt: z.iso.datetime().nullable(),
    updatedAt: z.iso.datetime(),
    estimatedCost: moneySchema
      .nullable()
      .describe(
        'What the job was estimated to cost when it was accepted; null for jobs accepted before costs were kept',
      ),
    actualCost: moneySchema.describe(
      'What its provider calls have cost so far (every attempt); final once the job has ended',
    ),
    links: z.object({ self: z.string() }),
    waitingForWorker: waitingForWorkerSchema
      .optional()
      .describe(
        'Present while the job cannot move because no worker polls the queue its next task waits in (an API started without its worker, or workers that leave a domain out): the status and phase stay those of its step until a worker comes. Known from Temporal within seconds; a worker that stopped counts as polling for 90 s',
      ),
  })
  .describe('Job');

export type JobView = z.infer<typeof jobViewSchema>;

export const liveViewSchema = z
  .object({
    status: z.string(),
    progress: z.number(),
    phase: z.string().nullable(),
    seq: z.number(),
  })
  .nullable()
  .optional()
  .describe(
    "With ?live=true: the workflow's own answer, bypassing the database; null once the job " +
      'has ended (its row is final) or when the workflow does not answer within 3 s',
  );

export type LiveView = z.infer<typeof liveViewSchema>;

/** The creation range and the page of every job list. */
const listPageShape = {
  createdFrom: instantText().optional().describe('Inclusive lower bound on createdAt'),
  createdTo: instantText()
    .optional()
    .describe('Exclusive upper bound on createdAt; later than createdFrom'),
  limit: decimalText(z.number().int().min(1).max(100), { exact: true }).default(20),
  cursor: z.string().max(512).optional().describe('nextCursor of the previous page'),
};

/**
 * The query of a job list: the route's filters, each of what exists (`kind`, `type`,
 * `status` enums), and the page. An unknown property is refused, and so is a creation range
 * that holds no instant (createdTo not later than createdFrom).
 */
export function listQuerySchema<Filters extends Record<string, z.ZodOptional>>(filters: Filters) {
  return z.strictObject({ ...filters, ...listPageShape }).superRefine((query, context) => {
    // The range's own fields, typed apart from the route's filters.
    const { createdFrom, createdTo } = query as Pick<ListQuery, 'createdFrom' | 'createdTo'>;
    if (createdFrom && createdTo && Date.parse(createdTo) <= Date.parse(createdFrom)) {
      context.addIssue({
        code: 'custom',
        path: ['createdTo'],
        message: 'must be later than createdFrom',
      });
    }
  });
}

/** What a list route's query gives the list: its filters and page. */
export interface ListQuery {
  kind?: string | undefined;
  type?: string | undefined;
  status?: JobStatus | undefined;
  createdFrom?: string | undefined;
  createdTo?: string | undefined;
  limit: number;
  cursor?: string | undefined;
}

const errors = { 400: errorBodySchema, 401: errorBodySchema, 404: errorBodySchema };

export const getJobSchema = {
  operationId: 'getJob',
  tags: ['jobs'],
  summary: "A job's status, progress and result",
  params: z.object({ id: z.string().min(1).max(128) }),
  response: { 200: jobViewSchema, ...errors },
};

/** A kind as the job list's filters read it: its name, job types and stages. */
export type ListedKind = Pick<JobKindDeclaration, 'kind' | 'jobTypes' | 'stages' | 'publicFields'>;

/** Every status a job of the kind can be in: waiting, one of its stages, or ended. */
function statusesOfKind({ stages }: ListedKind): JobStatus[] {
  const staged = new Set<JobStatus>(stages.map((stage) => stage.status));
  return jobStatuses.filter((status) => !isStageStatus(status) || staged.has(status));
}

/**
 * `GET /api/jobs`, whose kind and type filters are those the registered kinds declare. With a
 * `kind`, the `type` and `status` are of that kind, and with a `type` the `status` is of the
 * type's kind: a filter no job can match is refused, naming it, as the kind's own list refuses
 * it, rather than answered with an empty list.
 */
export function listJobsSchema(kinds: readonly ListedKind[]) {
  return {
    operationId: 'listJobs',
    tags: ['jobs'],
    summary: "The caller's jobs, newest first",
    querystring: listQuerySchema({
      kind: enumOf(kinds.map(({ kind }) => kind)).optional(),
      type: enumOf(kinds.flatMap(({ jobTypes }) => jobTypes)).optional(),
      status: z.enum(jobStatuses).optional(),
    }).superRefine(({ kind, type, status }, context) => {
      // A type names its kind as well as a kind does: a status no job of it can be in is as
      // sure to match nothing.
      const declared =
        kind === undefined
          ? kinds.find((listed) => (listed.jobTypes as readonly string[]).includes(type ?? ''))
          : kinds.find((listed) => listed.kind === kind);
      if (!declared) return;
      const types: readonly string[] = declared.jobTypes;
      if (type !== undefined && !types.includes(type)) {
        context.addIssue({
          code: 'custom',
          path: ['type'],
          message: `must be a job type of kind ${declared.kind}: ${types.join(', ')}`,
        });
      }
      const statuses = statusesOfKind(declared);
      if (status !== undefined && !statuses.includes(status)) {
        context.addIssue({
          code: 'custom',
          path: ['status'],
          message: `must be a status of kind ${declared.kind}: ${statuses.join(', ')}`,
        });
      }
    }),
    response: {
      200: z.object({ jobs: z.array(jobViewSchema), nextCursor: z.string().nullable() }),
      ...errors,
    },
  };
}
