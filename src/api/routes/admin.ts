import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Db } from '../../db/database.js';
import { listFailureGroups } from '../../db/failure-groups.js';
import { formatFingerprint, parseFingerprint } from '../../jobs/failure-fingerprint.js';
import { ApiError } from '../errors.js';
import {
  deleteUserBudgetSchema,
  getUserBudgetSchema,
  listFailureGroupsSchema,
  redriveJobsSchema,
  setUserBudgetSchema,
} from '../schemas/admin.js';
import { deleteUserBudget, findUserBudget, setUserBudget } from '../../db/costs.js';
import { parseMoney } from '../../costs/money.js';
import { moneyView } from '../../costs/prices.js';
import type { BudgetDefaults } from '../services/budgets.js';
import type { Redrives } from '../services/redrives.js';

/** Example job ids a failure group shows. */
const groupExamples = 5;

/**
 * The operators' routes under `/admin`: failure groups of every user's jobs and their re-drive.
 * Only a token with the admin claim passes; every other route stays scoped to the caller.
 */
export function adminRoutes(
  db: Db,
  redrives: Redrives,
  budgets: BudgetDefaults,
  /** The registered kinds' names, which failure groups filter by. */
  kinds: readonly string[],
): FastifyPluginAsyncZod {
  const failureGroupsSchema = listFailureGroupsSchema(kinds);
  const redrivesSchema = redriveJobsSchema(kinds);
  async function budgetView(userId: string) {
    const own = await findUserBudget(db, userId);
    const limits = own ? { daily: own.daily_limit, monthly: own.monthly_limit } : budgets;
    const money = (value: string | null) => (value === null ? null : moneyView(parseMoney(value)));
    return {
      userId,
      daily: money(limits.daily),
      monthly: money(limits.monthly),
      source: own ? ('user' as const) : ('default' as const),
      updatedBy: own?.updated_by ?? null,
      updatedAt: own?.updated_at.toISOString() ?? null,
    };
  }

  return async (app) => {
    // On request, right after authentication: a caller who is no operator learns nothing of
    // these routes, not even what their query or body must be (validation and the body's
    // parsing come later).
    app.addHook('onRequest', async (request) => {
      if (!request.isAdmin) {
        throw new ApiError(
          'ADMIN_REQUIRED',
          'This route is for operators: the token lacks the admin claim',
        );
      }
    });

    app.get('/admin/failure-groups', { schema: failureGroupsSchema }, async (request) => {
      const { kind, code, from, to, limit } = request.query;
      const groups = await listFailureGroups(
        db,
        {
          kind,
          code,
          from: from ? new Date(from) : undefined,
          to: to ? new Date(to) : undefined,
        },
        { limit, examples: groupExamples },
      );
      return {
        groups: groups.map((group) => ({
          fingerprint: formatFingerprint(group),
          ...group,
          firstSeenAt: group.firstSeenAt.toISOString(),
          lastSeenAt: group.lastSeenAt.toISOString(),
        })),
      };
    });

    app.get('/admin/budgets/:userId', { schema: getUserBudgetSchema }, async (request) =>
      budgetView(request.params.userId),
    );

    app.put('/admin/budgets/:userId', { schema: setUserBudgetSchema }, async (request) => {
      await setUserBudget(db, {
        ownerId: request.params.userId,
        daily: request.body.daily,
        monthly: request.body.monthly,
        updatedBy: request.userId,
      });
      request.log.info(
        {
          budgetOf: request.params.userId,
          daily: request.body.daily,
          monthly: request.body.monthly,
        },
        'user budget set',
      );
      return budgetView(request.params.userId);
    });

    app.delete(
      '/admin/budgets/:userId',
      { schema: deleteUserBudgetSchema },
      async (request, reply) => {
        if (!(await deleteUserBudget(db, request.params.userId))) {
          throw new ApiError(
            'NOT_FOUND',
            `userId: ${request.params.userId} has no budget of their own; the configured ones apply`,
          );
        }
        request.log.info({ budgetOf: request.params.userId }, 'user budget removed');
        return reply.code(204).send(null);
      },
    );

    app.post('/admin/redrives', { schema: redrivesSchema }, async (request, reply) => {
      const { group, jobIds, limit, dryRun } = request.body;
      const outcome = await redrives.redrive(
        group === undefined ? { jobIds: jobIds! } : { group: parseFingerprint(group)!, limit },
        { dryRun, requestedBy: request.userId },
      );
      return reply.code(dryRun ? 200 : 202).send(outcome);
    });
  };
}
