import { createHmac, timingSafeEqual } from 'node:crypto';
import { isValidUserId } from '../../auth.js';

/**
 * Signed, expiring links to one job's progress stream, for clients that cannot send an
 * Authorization header (a browser's EventSource). A link names the user and the job it was made
 * for and opens that stream only, until it expires; a stream it opened runs to its end.
 */
export interface StreamLinks {
  /** The `access` parameter for `userId`'s stream of `jobId`, and when it stops opening it. */
  sign(userId: string, jobId: string): { access: string; expiresAt: Date };
  /** The user a link was made for, or null unless it is an unexpired link to `jobId`'s stream. */
  verify(access: string, jobId: string): string | null;
}

export function createStreamLinks(
  secret: string,
  ttlSeconds: number,
  now: () => number = Date.now,
): StreamLinks {
  const signature = (userId: string, jobId: string, expires: number) =>
    createHmac('sha256', `event-stream-link:${secret}`)
      .update(`${userId}\n${jobId}\n${expires}`)
      .digest('base64url');
  return {
    sign(userId, jobId) {
      const expires = Math.floor(now() / 1000) + ttlSeconds;
      const user = Buffer.from(userId).toString('base64url');
      return {
        access: `${expires}.${user}.${signature(userId, jobId, expires)}`,
        expiresAt: new Date(expires * 1000),
      };
    },
    verify(access, jobId) {
      const match = /^(\d{1,12})\.([\w-]{1,200})\.([\w-]{43})$/.exec(access);
      if (!match) return null;
      const expires = Number(match[1]);
      const userId = Buffer.from(match[2]!, 'base64url').toString();
      if (expires * 1000 < now() || !isValidUserId(userId)) return null;
      const expected = Buffer.from(signature(userId, jobId, expires));
      const given = Buffer.from(match[3]!);
      return given.length === expected.length && timingSafeEqual(given, expected) ? userId : null;
    },
  };
}
