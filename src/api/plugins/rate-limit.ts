import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Db } from '../../db/database.js';
import { countRequestInWindow, dropWindowsBefore } from '../../db/rate-limit-windows.js';
import { ApiError } from '../errors.js';

export interface RateLimit {
  /** Requests one user may make per window. */
  limit: number;
  windowMs: number;
}

export interface RateLimits {
  db: Db;
  /** GET and HEAD: counted in this process's memory, so a status poll writes nothing. */
  reads: RateLimit;
  /** Every other method (starts, uploads, cancels, retries): counted in the database. */
  submissions: RateLimit;
}

/**
 * Fixed-window request counts of one process. Only the current window is kept: when it ends
 * every count restarts, so memory holds at most the users seen in one window.
 */
function windowCounter() {
  let current = -1;
  let counts = new Map<string, number>();
  return (ownerId: string, windowStart: number): number => {
    if (windowStart !== current) {
      current = windowStart;
      counts = new Map();
    }
    const requests = (counts.get(ownerId) ?? 0) + 1;
    counts.set(ownerId, requests);
    return requests;
  };
}

/**
 * Limits each authenticated user per window on every route of `scope` (429 TOO_MANY_REQUESTS
 * with Retry-After), and tells clients where they stand with the RateLimit-* headers.
 * Submissions share one count across API processes through the database; reads, the bulk of
 * the traffic (clients polling their jobs), are counted per process in memory, so a read costs
 * no database write. Registered after authentication, which sets the user.
 */
export const rateLimit = fp(
  async (scope: FastifyInstance, { db, reads, submissions }: RateLimits) => {
    const countRead = windowCounter();
    /** The start of the window in which this process last dropped ended windows' counts. */
    let droppedInWindow = 0;
    scope.addHook('onRequest', async (request, reply) => {
      const isRead = request.method === 'GET' || request.method === 'HEAD';
      const { limit, windowMs } = isRead ? reads : submissions;
      const now = Date.now();
      const windowStart = now - (now % windowMs);
      let requests: number;
      if (isRead) {
        requests = countRead(request.userId, windowStart);
      } else {
        // Once a window per process, at its first submission, the counts of the windows before
        // the last one go: the last one may still be counted by a process whose clock is behind.
        if (windowStart > droppedInWindow) {
          droppedInWindow = windowStart;
          await dropWindowsBefore(db, new Date(windowStart - windowMs)).catch((error: unknown) =>
            request.log.warn({ err: error }, 'ended rate limit windows not dropped'),
          );
        }
        try {
          requests = await countRequestInWindow(db, request.userId, new Date(windowStart));
        } catch (error) {
          // Without the database the limit cannot be counted; the routes answer for themselves.
          request.log.warn({ err: error }, 'rate limit not counted');
          return;
        }
      }
      const resetSeconds = Math.ceil((windowStart + windowMs - now) / 1000);
      void reply.headers({
        'ratelimit-limit': String(limit),
        'ratelimit-remaining': String(Math.max(0, limit - requests)),
        'ratelimit-reset': String(resetSeconds),
      });
      if (requests > limit) {
        const what = isRead ? 'reads' : 'submissions';
        throw new ApiError(
          'TOO_MANY_REQUESTS',
          `Too many ${what}: at most ${limit} per ${windowMs / 1000} s; retry in ${resetSeconds} s`,
          { limit, windowMs },
          { 'retry-after': String(resetSeconds) },
        );
      }
    });
  },
  { name: 'rate-limit', dependencies: ['bearer-auth'] },
);
