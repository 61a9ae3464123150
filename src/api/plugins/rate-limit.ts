import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Db } from '../../db/database.js';
import { countRequestInWindow } from '../../db/rate-limit-windows.js';
import { ApiError } from '../errors.js';

export interface RateLimit {
  /** Requests one user may make per window. */
  limit: number;
  windowMs: number;
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
        requests = await countRequestInWindow(db, request.userId, new Date(windowStart));
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
