import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { verifyMediaLink, type LocalMediaStorage } from '../../storage/local-storage.js';
import { storageKeyProblem } from '../../storage/object-storage.js';
import { ApiError } from '../errors.js';
import { mediaObjectSchema } from '../schemas/media.js';

/**
 * The single byte range a Range header asks for within `size` bytes, or null for the whole
 * object (no header, or one this route does not read, such as several ranges). A range that
 * does not overlap the object is refused: 416 with the error envelope and the object's size in
 * Content-Range (RFC 9110, 15.5.17).
 */
function requestedRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | null {
  const range = /^bytes=(\d*)-(\d*)$/.exec(header ?? '');
  if (!range || !(range[1] || range[2])) return null;
  const start = range[1] ? Number(range[1]) : Math.max(0, size - Number(range[2]));
  const end = range[1] && range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
  if (start > end || start >= size) {
    throw new ApiError(
      'RANGE_NOT_SATISFIABLE',
      `The range ${header} is not within the media's ${size} bytes`,
      { size },
      { 'content-range': `bytes */${size}` },
    );
  }
  return { start, end };
}

/**
 * Serves objects of the local storage backend through signed, expiring links (what presigned
 * URLs are on S3), with single byte ranges so video players can seek. The content type is the
 * one stored with the object (what the upload's bytes were detected as), never guessed from
 * the name; every answer says `nosniff` (app.ts) so browsers do not guess either.
 */
export function mediaRoutes(
  storage: LocalMediaStorage,
  secret: string,
  /** When the media sweep deleted the object at a key, or null if it did not. */
  sweptAt: (key: string) => Promise<Date | null>,
): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/media/*',
      {
        schema: mediaObjectSchema,
        // A path that is no storage key is refused as such, before its link is read: a key's
        // shape is public, and even a link signed in error never names one.
        preValidation: async (request) => {
          const problem = storageKeyProblem(request.params['*']);
          if (problem) throw new ApiError('MEDIA_KEY_INVALID', `The media path ${problem}`);
        },
      },
      async (request, reply) => {
        const key = request.params['*'];
        if (!verifyMediaLink(secret, key, request.query.expires, request.query.signature)) {
          throw new ApiError('MEDIA_LINK_INVALID', 'The link is invalid or has expired');
        }
        const object = await storage.head(key);
        if (!object) {
          const deletedAt = await sweptAt(key);
          if (deletedAt) {
            throw new ApiError(
              'MEDIA_EXPIRED',
              `The media was deleted on ${deletedAt.toISOString()}, at the end of its retention period`,
              { deletedAt: deletedAt.toISOString() },
            );
          }
          throw new ApiError('NOT_FOUND', 'No such media');
        }
        // An If-Range names the copy a client holds (RFC 9110, 13.1.5); these answers carry no
        // validator it could have, so it never matches: the whole object, not a part of another.
        const range = request.headers['if-range']
          ? null
          : requestedRange(request.headers.range, object.size);
        reply
          .header('accept-ranges', 'bytes')
          .header('content-type', object.contentType ?? 'application/octet-stream');
        if (!range) {
          return reply.header('content-length', object.size).send(await storage.getStream(key));
        }
        return reply
          .code(206)
          .header('content-range', `bytes ${range.start}-${range.end}/${object.size}`)
          .header('content-length', range.end - range.start + 1)
          .send(await storage.getStream(key, range));
      },
    );
  };
}
