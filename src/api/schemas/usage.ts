import { z } from 'zod';
import { isValidUserId, userIdRule } from '../../auth.js';
import { decimalPattern } from '../../costs/money.js';
import { errorBodySchema } from '../errors.js';
import { dayText } from './common.js';
import { moneySchema } from './jobs.js';

const userIdSchema = z.string().refine(isValidUserId, { error: `must be ${userIdRule}` });

const daySchema = dayText();

/** Most days one usage answer covers. */
export const maxUsageDays = 366;

export const usageQuerySchema = z
  .strictObject({
    from: daySchema
      .optional()
      .describe('First UTC day (YYYY-MM-DD), inclusive; default: the first day of this month'),
    to: daySchema.optional().describe('Last UTC day (YYYY-MM-DD), inclusive; default: today'),
    userId: userIdSchema
      .optional()
      .describe(
        'Admins only: one user; without it an admin gets every user with spending or holds',
      ),
  })
  .refine((query) => !query.from || !query.to || query.from <= query.to, {
    path: ['to'],
    error: 'must not be before from',
  });

const budgetStandingSchema = z
  .object({
    daily: moneySchema.nullable().describe('The daily limit (UTC day); null: none'),
    monthly: moneySchema.nullable().describe('The monthly limit (UTC month); null: none'),
    source: z.enum(['user', 'default']).describe('`user`: set by an admin for this user'),
    spentToday: moneySchema,
    spentThisMonth: moneySchema,
    remainingToday: moneySchema
      .nullable()
      .describe('What a new job may still be estimated at today'),
    remainingThisMonth: moneySchema.nullable(),
  })
  .describe('BudgetStanding');

const userUsageSchema = z
  .object({
    userId: z.string(),
    total: moneySchema.describe('Spent in the range'),
    reserved: moneySchema.describe(
      'Held now by jobs in flight: the part of their estimates their calls have not charged yet',
    ),
    days: z
      .array(
        z.object({
          day: daySchema,
          total: moneySchema,
          byKind: z
            .array(
              z.object({
                kind: z
                  .string()
                  .describe(
                    '`text` (AI jobs), `analysis` (vlog media analysis) or `video` (generation)',
                  ),
                provider: z.string(),
                calls: z.number().int(),
                cost: moneySchema,
              }),
            )
            .describe('Spent that day, by kind of call and provider'),
        }),
      )
      .describe('Days with spending, oldest first'),
    budget: budgetStandingSchema,
  })
  .describe('UserUsage');

export const getUsageSchema = {
  operationId: 'getUsage',
  tags: ['usage'],
  summary: 'What you spent, by day and kind of call, what jobs in flight hold, and your budgets',
  querystring: usageQuerySchema,
  response: {
    200: z.object({
      from: daySchema,
      to: daySchema,
      users: z.array(userUsageSchema),
    }),
    400: errorBodySchema,
    401: errorBodySchema,
    403: errorBodySchema,
    429: errorBodySchema,
    503: errorBodySchema,
  },
};

export const budgetLimitSchema = z
  .string()
  .regex(decimalPattern, {
    error: 'must be a decimal amount such as 25 or 12.50 (at most 9 decimals)',
  })
  .nullable();

export { userIdSchema };
