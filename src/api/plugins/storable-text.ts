// PostgreSQL cannot store a NUL character in text or jsonb, and jsonb refuses an unpaired UTF-16
// surrogate (`"\ud800"` is valid JSON and a valid JS string). Requests carrying either are
// refused at the boundary, naming the field, instead of failing later as a database error.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { validationFailed, type ApiError } from '../errors.js';

const unstorable = /\0|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export const unstorableTextMessage = 'must not contain NUL characters or unpaired surrogates';

/** True when `text` can be stored as PostgreSQL text or inside jsonb. */
export function isStorableText(text: string): boolean {
  return !unstorable.test(text);
}

/** Longest field path built while walking a body; deeper keys (nested JSON) add nothing to it. */
const maxFieldLength = 200;

/**
 * The path of the first string in `value` (keys included) that cannot be stored, or null.
 * Walks with its own stack: a body may nest as deep as the body limit allows.
 */
export function findUnstorableText(value: unknown, root: string): string | null {
  const pending: { value: unknown; path: string }[] = [{ value, path: root }];
  for (let next = pending.pop(); next; next = pending.pop()) {
    if (typeof next.value === 'string') {
      if (!isStorableText(next.value)) return next.path;
    } else if (typeof next.value === 'object' && next.value !== null) {
      for (const [key, child] of Object.entries(next.value)) {
        const path = next.path.length < maxFieldLength ? `${next.path}.${key}` : next.path;
        if (!isStorableText(key)) return path;
        pending.push({ value: child, path });
      }
    }
  }
  return null;
}

export function unstorableTextError(field: string): ApiError {
  return validationFailed([{ field, message: unstorableTextMessage }]);
}

/** Refuses, on every route of the scope, path, query and JSON body text that cannot be stored. */
export const refuseUnstorableText = fp(
  async (scope: FastifyInstance) => {
    scope.addHook('preValidation', async (request) => {
      const parts = { params: request.params, querystring: request.query, body: request.body };
      for (const [root, value] of Object.entries(parts)) {
        const field = findUnstorableText(value, root);
        if (field) throw unstorableTextError(field);
      }
    });
  },
  { name: 'storable-text' },
);
