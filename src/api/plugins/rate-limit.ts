import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { sql } from 'kysely';
import type { Db } from '../../db/database.js';
import { ApiError } from '../errors.js';

export interface RateLimit {
  /** Requests one user may make per window. */
  limit: number;
  windowMs: number;
}

/**
 * Counts one request of `ownerId` in the current fixed window, in the database so every API
 * process shares the count. The first request of a window drops the user's older windows.
 */
async function countRequest(db: Db, ownerId: string, windowStart: Date): Promise<number> {
  const { requests } = await db
    .insertInto('rate_limit_windows')
    .values({ owner_id: ownerId, window_start: windowStart, requests: 1 })
    .onConflict((oc) =>
      oc
        .columns(['owner_id', 'window_start'])
        .doUpdateSet({ requests: sql<number>`rate_limit_windows.requests + 1` }),
    )
    .returning('requests')
    .executeTakeFirstOrThrow();
  if (requests === 1) {
    await db
      .deleteFrom('rate_limit_windows')
      .where('owner_id', '=', ownerId)
      .where('window_start', '<', windowStart)
      .execute();
  }
  return requests;
}

/**
 * Limits each authenticated user to `limit` requests per window on every route of `scope`
 * (429 TOO_MANY_REQUESTS with Retry-After), and tells clients where they stand with the
 * RateLimit-* headers. Registered after authentication, which sets the user.
 */
export const rateLimit = fp(
  async (scope: FastifyInstance, { db, limit, windowMs }: RateLimit & { db: Db }) => {
    scope.addHook('onRequest', async (request, reply) => {
      const now = Date.now();
      const windowStart = now - (now % windowMs);
      let requests: number;
      try {
        requests = await countRequest(db, request.userId, new Date(windowStart));
      } catch (error) {
        // Without the database the limit cannot be counted; the routes answer for themselves.
        request.log.warn({ err: error }, 'rate limit not counted');
        return;
      }
      const resetSeconds = Math.ceil((windowStart + windowMs - now) / 1000);
      void reply.headers({
        'ratelimit-limit': String(limit),
        'ratelimit-remaining': String(Math.max(0, limit - requests)),
        'ratelimit-reset': String(resetSeconds),
      });
      if (requests > limit) {
        throw new ApiError(
          'TOO_MANY_REQUESTS',
          `Too many requests: at most ${limit} per ${windowMs / 1000} s; retry in ${resetSeconds} s`,
          { limit, windowMs },
          { 'retry-after': String(resetSeconds) },
        );
      }
    });
  },
  { name: 'rate-limit', dependencies: ['bearer-auth'] },
);
