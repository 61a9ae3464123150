import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { verifyMediaLink, type LocalMediaStorage } from '../../storage/local-storage.js';
import { storageKeyProblem } from '../../storage/object-storage.js';
import { ApiError } from '../errors.js';
import { mediaObjectSchema } from '../schemas/media.js';

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
        const range = /^bytes=(\d*)-(\d*)$/.exec(request.headers.range ?? '');
        reply
          .header('accept-ranges', 'bytes')
          .header('content-type', object.contentType ?? 'application/octet-stream');
        if (range && (range[1] || range[2])) {
          const start = range[1] ? Number(range[1]) : Math.max(0, object.size - Number(range[2]));
          const end =
            range[1] && range[2] ? Math.min(Number(range[2]), object.size - 1) : object.size - 1;
          if (start > end || start >= object.size) {
            return reply.code(416).header('content-range', `bytes */${object.size}`).send('');
          }
          return reply
            .code(206)
            .header('content-range', `bytes ${start}-${end}/${object.size}`)
            .header('content-length', end - start + 1)
            .send(await storage.getStream(key, { start, end }));
        }
        return reply.header('content-length', object.size).send(await storage.getStream(key));
      },
    );
  };
}
