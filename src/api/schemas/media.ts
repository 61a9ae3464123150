import type { Readable } from 'node:stream';
import { z } from 'zod';
import { maxStorageKeyLength } from '../../storage/object-storage.js';
import { decimalText } from '../../decimal-text.js';
import { errorBodySchema } from '../errors.js';

/** A stored object's bytes, streamed as they are. */
const binary = z.custom<Readable | string>().meta({ type: 'string', format: 'binary' });

export const mediaObjectSchema = {
  operationId: 'getMedia',
  tags: ['media'],
  // The link's signature is the credential, not a token.
  security: [],
  summary: 'A stored video or image, by a signed link from a vlog',
  params: z.object({ '*': z.string().min(1).max(maxStorageKeyLength) }),
  querystring: z.strictObject({
    expires: decimalText(z.number().int(), { exact: true }),
    signature: z.string().max(128),
  }),
  response: {
    200: { description: 'The whole object', content: { '*/*': { schema: binary } } },
    206: {
      description: 'The byte range asked for with `Range: bytes=start-end`',
      content: { '*/*': { schema: binary } },
    },
    400: errorBodySchema,
    403: errorBodySchema,
    404: errorBodySchema,
    410: errorBodySchema,
    416: errorBodySchema.describe(
      'RANGE_NOT_SATISFIABLE: the range is outside the object; Content-Range gives its size',
    ),
  },
};
