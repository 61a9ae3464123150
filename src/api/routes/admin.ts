import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Db } from '../../db/database.js';
import { listFailureGroups } from '../../db/failure-groups.js';
import { formatFingerprint, parseFingerprint } from '../../jobs/failure-fingerprint.js';
import { ApiError } from '../errors.js';
import { listFailureGroupsSchema, redriveJobsSchema } from '../schemas/admin.js';
import type { Redrives } from '../services/redrives.js';

/** Example job ids a failure group shows. */
const groupExamples = 5;

/**
 * The operators' routes under `/admin`: failure groups of every user's jobs and their re-drive.
 * Only a token with the admin claim passes; every other route stays scoped to the caller.
 */
export function adminRoutes(db: Db, redrives: Redrives): FastifyPluginAsyncZod {
  return async (app) => {
    app.addHook('preHandler', async (request) => {
      if (!request.isAdmin) {
        throw new ApiError(
          'ADMIN_REQUIRED',
          'This route is for operators: the token lacks the admin claim',
        );
      }
    });

    app.get('/admin/failure-groups', { schema: listFailureGroupsSchema }, async (request) => {
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

    app.post('/admin/redrives', { schema: redriveJobsSchema }, async (request, reply) => {
      const { group, jobIds, limit, dryRun } = request.body;
      const outcome = await redrives.redrive(
        group === undefined ? { jobIds: jobIds! } : { group: parseFingerprint(group)!, limit },
        { dryRun, requestedBy: request.userId },
      );
      return reply.code(dryRun ? 200 : 202).send(outcome);
    });
  };
}
