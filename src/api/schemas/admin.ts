import { z } from 'zod';
import { decimalText } from '../../decimal-text.js';
import { errorBodySchema } from '../errors.js';
import { fingerprintPattern } from '../../jobs/failure-fingerprint.js';
import { enumOf, instantText } from './common.js';
import { moneySchema } from './jobs.js';
import { budgetLimitSchema, userIdSchema } from './usage.js';

/** A failure group's fingerprint, whose kind is one of the registered `kinds`. */
function fingerprintSchema(kinds: readonly string[]) {
  return z
    .string()
    .max(300)
    .regex(fingerprintPattern, {
      abort: true,
      error:
        'must be a failure group fingerprint, kind:stage:code:provider (e.g. vlog:transferring:TRANSFER_FAILED:-)',
    })
    .refine((fingerprint) => kinds.includes(fingerprint.split(':')[0]!), {
      error: `must begin with a kind that exists: ${kinds.join(', ')}`,
    });
}

/** Errors every admin route can answer: a non-admin caller gets 403 ADMIN_REQUIRED. */
const adminErrors = {
  400: errorBodySchema,
  401: errorBodySchema,
  403: errorBodySchema,
  429: errorBodySchema,
  503: errorBodySchema,
};

/** The failure groups' filters; `kind` is one of the registered kinds. */
export function failureGroupsQuerySchema(kinds: readonly string[]) {
  return z
    .strictObject({
      kind: enumOf(kinds).optional().describe('Only jobs of this kind'),
      code: z
        .string()
        .regex(/^[A-Z][A-Z0-9_]{0,63}$/, { error: 'must be an error code such as TRANSFER_FAILED' })
        .optional()
        .describe('Only jobs that failed with this error code'),
      from: instantText().optional().describe('Inclusive lower bound on when the jobs failed'),
      to: instantText().optional().describe('Exclusive upper bound on when the jobs failed'),
      limit: decimalText(z.number().int().min(1).max(200), { exact: true })
        .default(50)
        .describe('Most groups answered'),
    })
    .refine((query) => !query.from || !query.to || Date.parse(query.from) < Date.parse(query.to), {
      path: ['to'],
      error: 'must be later than from',
    });
}

export type FailureGroupsQuery = z.infer<ReturnType<typeof failureGroupsQuerySchema>>;

const failureGroupSchema = z
  .object({
    fingerprint: z.string().describe('kind:stage:code:provider; re-drive the group by it'),
    kind: z.string(),
    stage: z.string().nullable().describe('The status the jobs were in when they failed'),
    code: z.string(),
    provider: z
      .string()
      .nullable()
      .describe('The provider whose call ended the jobs; null when none did or it is not known'),
    count: z.number().int(),
    firstSeenAt: z.iso.datetime(),
    lastSeenAt: z.iso.datetime(),
    exampleJobIds: z.array(z.string()).describe('The latest jobs of the group, newest first'),
  })
  .describe('FailureGroup');

/** `GET /api/admin/failure-groups`, filtering by the registered `kinds`. */
export function listFailureGroupsSchema(kinds: readonly string[]) {
  return {
    tags: ['admin'],
    operationId: 'listFailureGroups',
    summary: 'Failed and timed-out jobs of every user, grouped by failure fingerprint',
    description:
      'Admin only (the token claim AUTH_ADMIN_CLAIM = AUTH_ADMIN_CLAIM_VALUE). Groups by kind, stage, error code and provider, largest first.',
    querystring: failureGroupsQuerySchema(kinds),
    response: {
      200: z.object({ groups: z.array(failureGroupSchema) }),
      ...adminErrors,
    },
  };
}

/** The body of a re-drive; a group's fingerprint names one of the registered `kinds`. */
export function redriveBodySchema(kinds: readonly string[]) {
  return z
    .strictObject({
      group: fingerprintSchema(kinds)
        .optional()
        .describe('Re-drive the jobs of this failure group'),
      jobIds: z
        .array(z.string().min(1).max(128))
        .min(1)
        .max(100)
        .optional()
        .describe('Re-drive these jobs'),
      limit: z
        // Only a wrong type is told so: a number out of range is told its bound.
        .number({
          error: (issue) => (issue.code === 'invalid_type' ? 'expected a whole number' : undefined),
        })
        .int()
        .min(1)
        .max(100)
        .optional()
        .meta({ default: 100 })
        .describe('With group: most jobs taken, those failed longest ago first'),
      dryRun: z.boolean().default(false).describe('Answer what would run and change nothing'),
    })
    .refine((body) => (body.group === undefined) !== (body.jobIds === undefined), {
      path: ['group'],
      error: 'give either group or jobIds, not both and not neither',
    })
    .refine((body) => body.limit === undefined || body.group !== undefined, {
      path: ['limit'],
      error: 'applies only with group: jobIds names every job to re-drive',
    })
    .transform((body) => ({ ...body, limit: body.limit ?? 100 }));
}

const redriveSchema = z.object({
  jobId: z.string(),
  kind: z.string(),
  ownerId: z.string(),
  fromStage: z.string().nullable().describe('The stage it failed in, where it resumes'),
  attempt: z.number().int().describe('The attempt it runs as'),
  via: z
    .enum(['retry-update', 'new-run'])
    .describe(
      '`retry-update`: its failed run was still open and took a retry; `new-run`: a new run of its closed workflow',
    ),
  previousRunId: z.string().describe('The failed run it follows'),
});

export const redriveOutcomeSchema = z.object({
  dryRun: z.boolean(),
  redriven: z.array(redriveSchema).describe('Re-driven, or with dryRun what would be'),
  skipped: z
    .array(z.object({ jobId: z.string(), code: z.string(), message: z.string() }))
    .describe('Jobs left as they are, each with an error code saying why'),
});

/** `POST /api/admin/redrives`, its groups of the registered `kinds`. */
export function redriveJobsSchema(kinds: readonly string[]) {
  return {
    tags: ['admin'],
    operationId: 'redriveJobs',
    summary: 'Re-drive failed jobs: a failure group or a list of ids',
    description:
      'Admin only. Each job resumes from the stage it failed in, reusing what earlier stages stored; 200 for a dry run, 202 otherwise.',
    body: redriveBodySchema(kinds),
    response: {
      200: redriveOutcomeSchema,
      202: redriveOutcomeSchema,
      ...adminErrors,
    },
  };
}

const userBudgetSchema = z
  .object({
    userId: z.string(),
    daily: moneySchema.nullable().describe('Limit per UTC day; null: none'),
    monthly: moneySchema.nullable().describe('Limit per UTC month; null: none'),
    source: z.enum(['user', 'default']).describe('`default`: the configured budgets apply'),
    updatedBy: z.string().nullable(),
    updatedAt: z.iso.datetime().nullable(),
  })
  .describe('UserBudget');

const budgetParams = z.strictObject({ userId: userIdSchema });

export const getUserBudgetSchema = {
  operationId: 'getUserBudget',
  tags: ['admin'],
  summary: "A user's budgets: their own, or the configured defaults",
  params: budgetParams,
  response: { 200: userBudgetSchema, ...adminErrors },
};

export const setUserBudgetSchema = {
  operationId: 'setUserBudget',
  tags: ['admin'],
  summary: "Sets a user's own daily and monthly budgets (USD; null: no limit)",
  params: budgetParams,
  body: z.strictObject({
    daily: budgetLimitSchema.describe('Decimal USD per UTC day; null: no limit'),
    monthly: budgetLimitSchema.describe('Decimal USD per UTC month; null: no limit'),
  }),
  response: { 200: userBudgetSchema, ...adminErrors },
};

export const deleteUserBudgetSchema = {
  operationId: 'deleteUserBudget',
  tags: ['admin'],
  summary: 'Gives a user the configured budgets again',
  params: budgetParams,
  response: { 204: z.null(), ...adminErrors, 404: errorBodySchema },
};
