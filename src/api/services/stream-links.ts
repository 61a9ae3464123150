import { createHmac, timingSafeEqual } from 'node:crypto';
import { isValidUserId } from '../../auth.js';

/** One progress stream: the route of a kind's jobs (`/api/vlogs/:id/events`) for one job. */
export interface LinkedStream {
  /** The kind whose stream route it is, as its declaration names it. */
  kind: string;
  jobId: string;
}

/**
 * Signed, expiring links to one job's progress stream, for clients that cannot send an
 * Authorization header (a browser's EventSource). A link names the user, the kind's stream
 * route and the job it was made for and opens that stream only, until it expires; a stream it
 * opened runs to its end.
 */
export interface StreamLinks {
  /** The `access` parameter for `userId`'s `stream`, and when it stops opening it. */
  sign(userId: string, stream: LinkedStream): { access: string; expiresAt: Date };
  /** The user a link was made for, or null unless it is an unexpired link to `stream`. */
  verify(access: string, stream: LinkedStream): string | null;
}

export function createStreamLinks(
  secret: string,
  ttlSeconds: number,
  now: () => number = Date.now,
): StreamLinks {
  const signature = (userId: string, { kind, jobId }: LinkedStream, expires: number) =>
    createHmac('sha256', `event-stream-link:${secret}`)
      .update(`${userId}\n${kind}\n${jobId}\n${expires}`)
      .digest('base64url');
  return {
    sign(userId, stream) {
      const expires = Math.floor(now() / 1000) + ttlSeconds;
      const user = Buffer.from(userId).toString('base64url');
      return {
        access: `${expires}.${user}.${signature(userId, stream, expires)}`,
        expiresAt: new Date(expires * 1000),
      };
    },
    verify(access, stream) {
      const match = /^(\d{1,12})\.([\w-]{1,200})\.([\w-]{43})$/.exec(access);
      if (!match) return null;
      const expires = Number(match[1]);
      const userId = Buffer.from(match[2]!, 'base64url').toString();
      // One spelling per link: the decoder drops spare bits and takes bytes that are no UTF-8.
      if (Buffer.from(userId).toString('base64url') !== match[2]) return null;
      if (expires * 1000 < now() || !isValidUserId(userId)) return null;
      const expected = Buffer.from(signature(userId, stream, expires));
      const given = Buffer.from(match[3]!);
      return given.length === expected.length && timingSafeEqual(given, expected) ? userId : null;
    },
  };
}
